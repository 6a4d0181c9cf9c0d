"""`fedseed personalize` as a user runs it: outputs, client recipe, bad input."""

from __future__ import annotations

import json

import pytest
from support import HANG_GUARD

from fedseed.recipe import canonical_dict, load_builtin, parse_recipe, recipe_digest

SHORT = ["--set", "budget.max_steps=30", "--set", "budget.eval_every=10"]


def test_personalize_writes_weights_and_a_child_recipe(fedseed, tmp_path):
    out = tmp_path / "out"

    run = fedseed("personalize", "digits-mlp", "--data", "digits", "--out", str(out), *SHORT)

    assert run.code == 0, run.err
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "recipe.json"]
    raw = (out / "recipe.json").read_bytes()
    child = parse_recipe(raw)
    assert recipe_digest(child) in run.out
    assert child.lineage.parents == [recipe_digest(load_builtin("digits-mlp"))]
    assert child.lineage.method == "personalize"
    assert child.budget.max_steps == 30 and child.search_space is None
    assert child.evidence.steps == 30 and len(child.evidence.curve) == 3
    assert child.evidence.final.test_metric is not None
    assert b"net.1.weight" in raw  # per-tensor stats name tensors...
    assert len(raw) < 4096  # ...but carry no weights


def test_text_bert_tiny_client_recipe_stays_under_16_kb(fedseed, tmp_path):
    out = tmp_path / "out"

    run = fedseed("personalize", "text-bert-tiny", "--data", "toy-text", "--out", str(out),
                  *SHORT)

    assert run.code == 0, run.err
    raw = (out / "recipe.json").read_bytes()
    child = parse_recipe(raw)
    from fedseed.assemble import assemble

    tensors = len(list(assemble(load_builtin("text-bert-tiny")).parameters()))
    assert len(child.evidence.optimizer_stats) == tensors  # one entry per tensor
    assert len(raw) < 16 * 1024


def test_personalize_reads_a_users_text_file(fedseed, tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(json.dumps({"msg": f"{'good' if i % 2 else 'bad'} day {i}",
                                          "y": i % 2}) for i in range(40)))
    out = tmp_path / "out"

    run = fedseed("personalize", "text-bert-tiny", "--data", str(data), "--text-column", "msg",
                  "--label-column", "y", "--out", str(out), "-q", *SHORT)

    assert run.code == 0, run.err
    assert parse_recipe((out / "recipe.json").read_bytes()).evidence.num_examples.train == 28


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_plain_file_is_personalised_without_datasets_pandas_pyarrow_or_scipy(tmp_path,
                                                                                 suffix):
    # What the 512 MiB edge bound rests on (docs/results/overhead.md): these imports
    # cost about 190 MiB resident. Memory itself is the benchmark's to measure.
    import subprocess
    import sys

    rows = [(f"{'good' if i % 2 else 'bad'} day {i}", i % 2) for i in range(40)]
    data = tmp_path / f"mine{suffix}"
    if suffix == ".csv":
        data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    else:
        data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    code = ("import json, sys\nfrom fedseed.cli import main\ncode = main(sys.argv[1:])\n"
            "heavy = ('datasets', 'pandas', 'pyarrow', 'scipy.optimize')\n"
            "print(json.dumps([code, [m for m in heavy if m in sys.modules]]))")
    done = subprocess.run([sys.executable, "-c", code, "personalize", "text-bert-tiny",
                           "--data", str(data), "--out", str(tmp_path / "out"), "-q", *SHORT],
                          capture_output=True, text=True, timeout=HANG_GUARD, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, []]


def test_existing_non_empty_out_needs_force(fedseed, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    refused = fedseed("personalize", "digits-mlp", "--data", "digits", "--out", str(out), *SHORT)
    forced = fedseed("personalize", "digits-mlp", "--data", "digits", "--out", str(out),
                     "--force", *SHORT)

    assert refused.code == 2 and "not empty" in refused.err
    assert forced.code == 0, forced.err
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "recipe.json"]


def _recipe_file(tmp_path, mutate):
    data = canonical_dict(load_builtin("digits-mlp"))
    mutate(data)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return str(path)


def _set(section, field, value):
    def mutate(data):
        data[section] = {**data[section], field: value}
    return mutate


BAD_RECIPES = {
    "negative lr": (_set("optimizer", "lr", -0.1), "optimizer.lr"),
    "batch_size 0": (_set("budget", "batch_size", 0), "budget.batch_size"),
    "max_steps above bound": (_set("budget", "max_steps", 10**7), "budget.max_steps"),
    "unknown field": (_set("budget", "epochs", 3), "budget.epochs: unknown field"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_bad_recipe_exits_2_with_one_line_and_no_output(fedseed, tmp_path, case):
    mutate, expected = BAD_RECIPES[case]
    out = tmp_path / "out"

    run = fedseed("personalize", _recipe_file(tmp_path, mutate), "--data", "digits",
                  "--out", str(out))

    assert run.code == 2
    assert expected in run.err and "r.json" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert not out.exists()


def test_malformed_json_recipe_exits_2(fedseed, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"schema": "fedseed.recipe/v1",')

    run = fedseed("personalize", str(path), "--data", "digits", "--out", str(tmp_path / "o"))

    assert run.code == 2
    assert "broken.json: malformed JSON at line 1" in run.err
    assert not (tmp_path / "o").exists()


def _csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


BAD_DATA = {
    "missing file": ("digits-mlp", lambda t: str(t / "absent.csv"), {},
                     "absent.csv: data file does not exist"),
    "missing label column": ("text-bert-tiny", lambda t: _csv(t, "text\nhi\nyo\nok\n"), {},
                             "no label column 'label'"),
    "missing text column": ("text-bert-tiny", lambda t: _csv(t, "txt,label\nhi,1\n"),
                            {"--text-column": "body"}, "no text column 'body'"),
    "label outside num_labels": ("text-bert-tiny",
                                 lambda t: _csv(t, "text,label\na,0\nb,1\nc,5\n"), {},
                                 "value 5 at row 2, outside 0..1"),
    "empty dataset": ("text-bert-tiny", lambda t: _csv(t, "text,label\n"), {}, "empty"),
    "text in a tabular recipe": ("digits-mlp", lambda t: _csv(t, "text,label\nhello,1\n"), {},
                                 "column 'text' holds text values"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_exits_2_with_one_line_and_no_output(fedseed, tmp_path, case):
    recipe, make_path, options, expected = BAD_DATA[case]
    out = tmp_path / "out"
    extra = [x for k, v in options.items() for x in (k, v)]

    run = fedseed("personalize", recipe, "--data", make_path(tmp_path), "--out", str(out),
                  *extra)

    assert run.code == 2, run.err
    assert expected in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))  # no temporary folder left behind


def test_bad_override_exits_2(fedseed, tmp_path):
    run = fedseed("personalize", "digits-mlp", "--data", "digits", "--out",
                  str(tmp_path / "o"), "--set", "budget.batch_size=0")

    assert run.code == 2 and "budget.batch_size" in run.err
    assert not (tmp_path / "o").exists()


def test_unknown_recipe_name_lists_the_builtins(fedseed, tmp_path):
    run = fedseed("personalize", "digits-cnn", "--data", "digits", "--out", str(tmp_path / "o"))

    assert run.code == 2
    assert "digits-mlp" in run.err and "neither a file nor a built-in" in run.err


def test_sigterm_leaves_no_output_and_no_temporary_folder(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedseed", "personalize", "digits-mlp", "--data", "digits",
         "--out", str(out), "-q", "--set", "budget.max_steps=100000",
         "--set", "budget.eval_every=50000"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not list(tmp_path.glob(".out.*")) and time.monotonic() < deadline:
            time.sleep(0.2)  # wait until training has started writing
        assert list(tmp_path.glob(".out.*")), "personalize never started"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert code == 128 + signal.SIGTERM
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))
