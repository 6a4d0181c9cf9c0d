"""The CLI as a user runs it: help, recipe commands, fast start."""

from __future__ import annotations

import json
import subprocess
import sys

from fedseed.recipe import canonical_bytes, load_builtin, recipe_digest

HEAVY = ("torch", "transformers", "datasets", "flwr", "sklearn")


def _imported_after(argv: list[str]) -> list[str]:
    code = (
        "import sys\n"
        "from fedseed.cli import main\n"
        f"code = main({argv!r})\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("HEAVY:")
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def test_help_and_validate_import_no_heavy_library(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(canonical_bytes(load_builtin("digits-mlp")))

    assert _imported_after(["--help"]) == []
    assert _imported_after(["recipe", "validate", str(path)]) == []
    assert _imported_after(["recipe", "list"]) == []


def test_show_prints_parameter_count_size_and_digest(fedseed):
    run = fedseed("recipe", "show", "text-bert-tiny")

    assert run.code == 0, run.err
    assert "512,514" in run.out
    assert "1,361 bytes" in run.out
    assert recipe_digest(load_builtin("text-bert-tiny")) in run.out


def test_show_reads_files_too(fedseed, tmp_path):
    path = tmp_path / "mine.json"
    path.write_bytes(canonical_bytes(load_builtin("image-cnn-small")))

    run = fedseed("recipe", "show", str(path))

    assert run.code == 0 and "13,706" in run.out


def test_validate_prints_digest_and_rejects_bad_files(fedseed, tmp_path):
    good = tmp_path / "good.json"
    good.write_bytes(canonical_bytes(load_builtin("digits-mlp")))
    bad = tmp_path / "bad.json"
    bad.write_text(good.read_text().replace('"batch_size":32', '"batch_size":0'))

    ok = fedseed("recipe", "validate", str(good))
    refused = fedseed("recipe", "validate", str(bad))
    missing = fedseed("recipe", "validate", str(tmp_path / "none.json"))

    assert ok.code == 0 and recipe_digest(load_builtin("digits-mlp")) in ok.out
    assert refused.code == 2 and "budget.batch_size" in refused.err
    assert missing.code == 2 and "none.json: no such file" in missing.err


def test_schema_is_json_schema(fedseed):
    run = fedseed("recipe", "schema")

    schema = json.loads(run.out)
    assert run.code == 0
    assert schema["title"] == "Recipe"
    assert "architecture" in schema["required"]


def test_list_names_every_builtin(fedseed):
    run = fedseed("recipe", "list")

    assert run.code == 0
    for name in ("digits-mlp", "image-cnn-small", "text-bert-tiny", "charlm-gpt2-tiny"):
        assert name in run.out


def test_usage_errors_exit_2(fedseed):
    assert fedseed("assemble").code == 2
    assert fedseed("no-such-command").code == 2
