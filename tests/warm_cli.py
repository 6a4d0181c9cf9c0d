"""A warm parent for the CLI processes the tests start.

Every ``fedseed`` command a test runs is a real process of its own: its own argv,
environment, working folder, standard streams and exit status, and ``python -m fedseed``
as its entry point. What differs from a cold ``python -m fedseed`` is only that the
process is forked from a parent that has already imported the heavy third-party
libraries (torch, scikit-learn, transformers), which a cold start spends 3 to 9 seconds
on; across the suite that is minutes of a 2-core machine. fedseed itself is not
imported by the parent, so each command imports it afresh, with its own settings.

What a cold start does (which modules a command imports, how fast ``--help`` is) is
tested with real cold processes (``run_fedseed(..., cold=True)`` and the tests that
start ``python -m fedseed`` themselves).

The parent stays single-threaded at the Python level and never runs a torch operation,
so forking it is safe: it serves one fork per request from a select loop.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

#: The parent: import the heavy libraries once, then fork one child per request.
#: A request is one JSON line {args, cwd, env, stdout, stderr}; the parent answers
#: "pid\n" at once and "status\n" when the child has ended.
PARENT = r"""
import json, os, select, socket, sys

import numpy, torch, sklearn.datasets, safetensors.torch  # noqa: F401
import transformers, transformers.modeling_utils  # noqa: F401

import gc
gc.freeze()  # the imported libraries' objects: never scanned, so never copied, by a child

listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
print("ready", flush=True)
waiting = {}  # pid -> connection


def child(request):
    listener.close()
    for conn in waiting.values():
        conn.close()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    import atexit, runpy, threading, traceback
    sys.argv = ["fedseed", *request["args"]]
    code = 0
    try:
        runpy.run_module("fedseed", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    # What the interpreter's exit does (join threads, atexit handlers, flush), without
    # tearing down torch and transformers module by module, which takes seconds.
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve():
    while True:
        ready, _, _ = select.select([listener], [], [], 0.05)
        if ready:
            conn, _ = listener.accept()
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            request = json.loads(data)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                return request
            conn.sendall(f"{pid}\n".encode())
            waiting[pid] = conn
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid, None)
            if conn is not None:
                code = os.waitstatus_to_exitcode(status)
                try:
                    conn.sendall(f"{code}\n".encode())
                except OSError:
                    pass
                conn.close()


request = serve()
child(request)
"""


class WarmParent:
    """The parent process and its socket; started on first use, stopped at exit."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="fedseed-warm-"))
        self.socket = str(self.folder / "parent.sock")
        env = {**os.environ, "HF_HOME": str(self.folder / "hf")}
        self.log = self.folder / "parent.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "-c", PARENT, self.socket],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=log, env=env, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the warm CLI parent did not start: {self.log.read_text()[-2000:]}")
        self.runs = itertools.count(1)  # next() is atomic: threads may run commands at once

    def run(self, args: list[str], cwd: Path | None, env: dict[str, str], timeout: float
            ) -> tuple[int, str, str]:
        """Run ``python -m fedseed *args`` forked from the parent; (status, out, err)."""
        number = next(self.runs)
        out, err = (self.folder / f"{number}.{name}" for name in ("out", "err"))
        request = {"args": args, "cwd": str(cwd or Path.cwd()), "env": env,
                   "stdout": str(out), "stderr": str(err)}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self.socket)
            conn.sendall((json.dumps(request) + "\n").encode())
            # One buffered reader for both lines: the status may arrive in the same
            # packet as the pid, so waiting on the raw socket could miss it.
            conn.settimeout(timeout)
            reader = conn.makefile("r")
            pid = int(reader.readline())
            try:
                line = reader.readline()
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(["fedseed", *args], timeout) from None
        if not line:
            raise RuntimeError(f"the warm CLI parent died: {self.log.read_text()[-2000:]}")
        try:
            return int(line), out.read_text(), err.read_text()
        finally:
            out.unlink(missing_ok=True)
            err.unlink(missing_ok=True)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_parent: WarmParent | None = None


def warm_parent() -> WarmParent:
    """The session's warm parent, started on first use."""
    global _parent
    if _parent is None or _parent.process.poll() is not None:
        _parent = WarmParent()
        atexit.register(_parent.stop)
    return _parent
