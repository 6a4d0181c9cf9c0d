"""Keeping a device process's resident memory down: what the process imports and how
its allocator hands memory back.

Both are measured by ``fedseed bench overhead`` (docs/results/overhead.md), which
personalises text-bert-tiny from a CSV file under the 512 MiB edge bound.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

#: Blocks at least this large come from ``mmap`` and go back to the system on free.
MMAP_THRESHOLD = 256 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def return_freed_memory() -> bool:
    """Stop glibc's malloc from keeping freed tensor memory in its heap.

    By default glibc raises its mmap threshold to the size of each large block freed,
    up to 32 MiB, and its trim threshold to twice that, so after the first steps every
    activation tensor is carved from the heap, which fragments (batch widths vary) and
    seldom shrinks: training text-bert-tiny kept about 70 MiB more resident than it
    used. A fixed threshold of 256 KiB makes those blocks ``mmap``-ed and unmapped on
    free. The price is page faults on every step: about a quarter more CPU time per
    text-bert-tiny step on the 2-core VM of docs/results/overhead.md (128 KiB saved
    no more memory and cost twice that). Returns whether it took effect: not on other
    C libraries, nor when the user set malloc's own knobs (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``GLIBC_TUNABLES``), which win.
    """
    if sys.platform != "linux" or any(name in os.environ for name in (
            "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (ValueError, OSError, AttributeError):  # no glibc, no confstr name, no mallopt
        return False


@contextlib.contextmanager
def deferred_import(name: str) -> Iterator[bool]:
    """While the block runs, ``from <name> import f`` gives a stand-in for ``f`` that
    imports the real module the first time it is called; yields whether it did so.

    For an optional dependency that a library imports at import time for code fedseed
    never runs: transformers' model base imports its object-detection losses, and they
    import ``scipy.optimize`` (about 40 MiB resident) for ``linear_sum_assignment``.
    The stand-in is a module only for the block; afterwards ``import <name>`` is the
    real module again, and the stand-ins keep working by calling through to it.

    Nothing is deferred when the module is already imported, cannot be found, or
    other Python threads are running (one of them could import the module for real
    while the stand-in is in place).
    """
    if name in sys.modules or threading.active_count() > 1 or not _findable(name):
        yield False
        return
    stand_in = _DeferredModule(name)
    sys.modules[name] = stand_in
    try:
        yield True
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]


def _findable(name: str) -> bool:
    # The top-level package only: finding a submodule would import its package.
    try:
        return importlib.util.find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


class _DeferredModule(types.ModuleType):
    """A stand-in module whose every public attribute is a call-through function."""

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        if attribute.startswith("__"):  # not a package, no __all__: import machinery asks
            raise AttributeError(attribute)
        module = self.__name__

        def call_through(*args: Any, **kwargs: Any) -> Any:
            if isinstance(sys.modules.get(module), _DeferredModule):
                del sys.modules[module]  # called inside the block: import it for real now
            return getattr(importlib.import_module(module), attribute)(*args, **kwargs)

        call_through.__name__ = call_through.__qualname__ = attribute
        call_through.__doc__ = f"{module}.{attribute}, imported when first called."
        return call_through
