"""Peak resident memory of ``fedseed personalize`` on a device, and where it goes.

The peak is that of the real command, as a user runs it:
``fedseed personalize RECIPE --data FILE.csv --out OUT`` (the console script, the
recipe's own budget, torch's default threads), from a CSV file written the way a
user would bring it. It is the kernel's high-water mark (``ru_maxrss`` from
``wait4``, which covers the process and every child it reaped), taken by a small
launcher process: a process image starts with the ``ru_maxrss`` of the image that
exec'd it, so the benchmark itself (torch loaded) must not be the parent. The
launcher also sums the resident sets of the command and its live descendants every
10 ms, so that children running at the same time would count together.

Where the memory goes comes from a second, instrumented process that does the same
steps one at a time and reads its own high-water mark (``VmHWM``) after each.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fedseed.data import load_examples
from fedseed.recipe import load_builtin

#: The edge bound for personalising text-bert-tiny (MiB).
TARGET_MIB = 512

_LAUNCHER = r"""
import json, os, sys, threading
argv = sys.argv[1:]
quiet = os.open(os.devnull, os.O_WRONLY)
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, quiet, 1)])
page = os.sysconf("SC_PAGE_SIZE")
state = {"peak": 0, "children": set()}
done = threading.Event()

def tree(root):
    todo, found = [root], []
    while todo:
        proc = todo.pop()
        found.append(proc)
        try:
            for task in os.listdir(f"/proc/{proc}/task"):
                with open(f"/proc/{proc}/task/{task}/children") as handle:
                    todo += [int(c) for c in handle.read().split()]
        except OSError:
            pass
    return found

def resident(proc):
    try:
        with open(f"/proc/{proc}/statm") as handle:
            return int(handle.read().split()[1]) * page
    except (OSError, IndexError, ValueError):
        return 0

def sample():
    while not done.wait(0.01):
        procs = tree(pid)
        state["children"].update(procs[1:])
        state["peak"] = max(state["peak"], sum(resident(p) for p in procs))

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
_, status, usage = os.wait4(pid, 0)
done.set()
sampler.join()
print(json.dumps({"exit_code": os.waitstatus_to_exitcode(status),
                  "ru_maxrss_kib": usage.ru_maxrss, "sampled_peak_kib": state["peak"] // 1024,
                  "children": len(state["children"])}))
"""

# The same steps as the command, one at a time, with VmHWM after each.
_STAGES = r"""
import json, pathlib, sys, tempfile
def status(key):
    text = pathlib.Path("/proc/self/status").read_text()
    return int(next(l.split()[1] for l in text.splitlines() if l.startswith(key + ":")))
stages = {"python": status("VmHWM")}
from fedseed._internal.memory import return_freed_memory
return_freed_memory()
import torch
stages["torch"] = status("VmHWM")
import fedseed.cli
stages["fedseed CLI"] = status("VmHWM")
from fedseed.assemble import assemble
from fedseed.data import load_examples
from fedseed.personalize import personalize
from fedseed.recipe import load_builtin
recipe = load_builtin(sys.argv[1])
load_examples(sys.argv[2], recipe)
stages["data read"] = status("VmHWM")
assemble(recipe)
stages["model assembled"] = status("VmHWM")
out = pathlib.Path(tempfile.mkdtemp()) / "out"
assignment = json.loads(sys.argv[3]) or None
personalize(recipe, sys.argv[2], out, assignment=assignment)
stages["trained and saved"] = status("VmHWM")
heavy = ("datasets", "pandas", "pyarrow", "scipy.optimize", "sklearn")
print(json.dumps({"stages": stages, "anon": status("RssAnon"), "file": status("RssFile"),
                  "imported": [m for m in heavy if m in sys.modules],
                  "threads": torch.get_num_threads()}))
"""


def measure_peak_rss(name: str, data: str, steps: int | None = None) -> dict[str, Any]:
    """Peak resident memory (MiB) of ``fedseed personalize name`` on ``data`` as a CSV.

    ``steps`` shortens the recipe's budget (for the smoke test); the published numbers
    use the recipe's own.
    """
    recipe = load_builtin(name)
    assignment: dict[str, int] = {}
    if steps is not None:
        assignment = {"budget.max_steps": steps,
                      "budget.eval_every": min(steps, recipe.budget.eval_every)}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(load_examples(data, recipe), Path(tmp))
        command = [*_fedseed(), "personalize", name, "--data", str(path),
                   "--out", str(Path(tmp) / "out")]
        command += [arg for key, value in assignment.items() for arg in ("--set", f"{key}={value}")]
        launched = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *command],
                                  capture_output=True, text=True, check=True)
        peak = json.loads(launched.stdout.strip().splitlines()[-1])
        if peak["exit_code"] != 0:
            raise RuntimeError(f"{' '.join(command)} exited {peak['exit_code']}: "
                               f"{launched.stderr.strip()[-500:]}")
        staged = subprocess.run([sys.executable, "-c", _STAGES, name, str(path),
                                 json.dumps(assignment)],
                                capture_output=True, text=True, check=True)
    inside = json.loads(staged.stdout.strip().splitlines()[-1])
    shown = ["fedseed", *command[command.index("personalize"):]]
    shown[shown.index("--data") + 1] = f"{examples_name(data)}.csv"
    shown[shown.index("--out") + 1] = "OUT"
    return {
        "recipe": name, "data_file": path.suffix, "command": " ".join(shown),
        "peak_rss_mib": round(max(peak["ru_maxrss_kib"], peak["sampled_peak_kib"]) / 1024, 1),
        "ru_maxrss_mib": round(peak["ru_maxrss_kib"] / 1024, 1),
        "sampled_peak_mib": round(peak["sampled_peak_kib"] / 1024, 1),
        "children": peak["children"], "torch_threads": inside["threads"],
        "stages_mib": {k: round(v / 1024, 1) for k, v in inside["stages"].items()},
        "resident_at_end_mib": {"anonymous": round(inside["anon"] / 1024, 1),
                                "file_backed": round(inside["file"] / 1024, 1)},
        "heavy_imports": inside["imported"],
    }


def examples_name(data: str) -> str:
    """The file stem :func:`write_csv` uses for ``data``."""
    return Path(data).stem


def write_csv(examples: Any, folder: Path) -> Path:
    """Write examples as the CSV a user would bring, so loading is measured too."""
    import csv

    path = folder / f"{examples_name(examples.source)}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if examples.texts is not None:
            writer.writerow(["text", "label"])
            writer.writerows(zip(examples.texts, examples.labels.tolist(), strict=True))
        else:
            width = examples.features.shape[1]
            writer.writerow([f"f{i}" for i in range(width)] + ["label"])
            for row, label in zip(examples.features.tolist(), examples.labels.tolist(),
                                  strict=True):
                writer.writerow([*row, label])
    return path


def _fedseed() -> list[str]:
    """The ``fedseed`` console script of this environment (``python -m fedseed`` if
    there is none)."""
    script = Path(sys.executable).with_name("fedseed")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fedseed"]
