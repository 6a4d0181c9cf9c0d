"""What building a model imports, and the allocator setting of `fedseed personalize`.
Each case runs in a fresh interpreter: what a process has imported is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import HANG_GUARD


def _python(code: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=HANG_GUARD, env={**os.environ, **(env or {})}, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_transformers_model_is_built_without_scipy_optimize_which_loads_when_called():
    result = _python("""
import json, sys
import numpy as np
from fedseed.assemble import assemble
from fedseed.recipe import load_builtin
assemble(load_builtin("text-bert-tiny"))
before = "scipy.optimize" in sys.modules
from transformers.loss.loss_for_object_detection import linear_sum_assignment
rows, cols = linear_sum_assignment(np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]]))
import scipy.optimize
print(json.dumps({"before": before, "rows": rows.tolist(), "cols": cols.tolist(),
                  "real": hasattr(scipy.optimize, "minimize")}))
""")

    assert result == {"before": False, "rows": [0, 1, 2], "cols": [1, 0, 2], "real": True}


def test_nothing_is_deferred_while_another_thread_runs():
    result = _python("""
import json, sys, threading
from fedseed._internal.memory import deferred_import
stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()
with deferred_import("scipy.optimize") as deferred:
    inside = sys.modules.get("scipy.optimize")
stop.set()
worker.join()
print(json.dumps({"deferred": deferred, "stand_in": inside is not None}))
""")

    assert result == {"deferred": False, "stand_in": False}


def test_the_stand_in_is_gone_after_the_block():
    result = _python("""
import json, sys
from fedseed._internal.memory import deferred_import
with deferred_import("scipy.optimize") as deferred:
    inside = type(sys.modules["scipy.optimize"]).__name__
print(json.dumps({"deferred": deferred, "inside": inside,
                  "after": "scipy.optimize" in sys.modules}))
""")

    assert result == {"deferred": True, "inside": "_DeferredModule", "after": False}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_goes_back_to_the_system_unless_the_user_tuned_malloc():
    code = """
import json
from fedseed._internal.memory import return_freed_memory
print(json.dumps(return_freed_memory()))
"""
    try:
        glibc = bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        glibc = False

    assert _python(code) is glibc
    assert _python(code, {"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
