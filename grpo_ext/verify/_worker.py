"""Sandbox worker: runs :mod:`grpo_ext.verify.symbolic` on one JSON request per line of stdin.

Started by :class:`grpo_ext.verify.sandbox.VerifierPool` as ``python .../grpo_ext/verify/_worker.py
MEMORY_MB PARENT_PID DEATH_SIGNAL``: run as a script, so that it imports math-verify, :mod:`guard`
and :mod:`symbolic` only, never the ``grpo_ext`` package (which pulls in torch). Before it says it
is ready it imports and runs every path once (:func:`symbolic.warm_up`; once ready, it parses the
common answer shapes while idle, :func:`symbolic.warm_up_shapes`), caps its address space,
moves its stdout aside (the protocol gets its own descriptor, so a stray ``print`` cannot corrupt
it) and arranges to die with its parent: a parent-death signal (Linux, when the pool was started
from the parent's main thread) and a watchdog thread that exits once the parent is gone. Each
request ``{"id", "pred", "gold", "cpu"}`` is answered ``{"id", "v": verdict}``; ``{"id",
"extract": text, "cpu"}`` with ``{"id", "a": answer or null}``; ``{"id", "ds": [a, b], "cpu"}`` (DeepSeek's
symbolic step) with ``{"id", "v": verdict}``. ``cpu`` caps the request's CPU
seconds (``RLIMIT_CPU``), which ends a request stuck in C code even when no parent is left to kill
the worker.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time

if __package__:
    from .symbolic import close_symbolically, extract, judge, warm_up, warm_up_shapes
else:  # run as a script: this file's folder is on sys.path
    from symbolic import close_symbolically, extract, judge, warm_up, warm_up_shapes


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _limit_cpu(seconds: int) -> None:
    """Let the coming request use ``seconds`` more CPU seconds than used so far (then SIGXCPU ends it)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used.ru_utime + used.ru_stime) + max(1, seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _die_with_parent(parent: int, death_signal: bool) -> None:
    if death_signal and sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # gone before the signal was set
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def handle(request: dict) -> dict:
    """One request: ``{"pred", "gold"}`` -> ``{"v": verdict}``; ``{"extract": text}`` -> ``{"a": answer}``;
    ``{"ds": [a, b]}`` (DeepSeek's symbolic step) -> ``{"v": verdict}``."""
    if "extract" in request:
        return {"a": extract(request["extract"])}
    if "ds" in request:
        a, b = request["ds"]
        return {"v": close_symbolically(str(a), str(b))}
    return {"v": judge(request["pred"], request["gold"])}


class _Lines:
    """Lines of a descriptor, read without blocking when asked (``timeout=0``)."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def readline(self, timeout: float | None) -> bytes | None:
        """The next line; ``b""`` at end of input; None when none arrived within ``timeout``."""
        import select

        while b"\n" not in self.buffer:
            if timeout is not None:
                poller = select.poll()
                poller.register(self.fd, select.POLLIN | select.POLLHUP)
                if not poller.poll(int(timeout * 1000)):
                    return None
            data = os.read(self.fd, 1 << 16)
            if not data:
                return b""
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # math-verify warns once about its disabled timeout: we own the timeout
    args = sys.argv[1:]
    memory_mb = int(args[0]) if args else 0
    parent = int(args[1]) if len(args) > 1 else os.getppid()
    _die_with_parent(parent, len(args) > 2 and args[2] == "1")
    warm_up()  # import and run every path before capping memory and announcing readiness
    _limit_memory(memory_mb)
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a stray print goes nowhere, not into the protocol
    sys.stdout = open(os.devnull, "w")
    out.write('{"ready": true}\n')
    out.flush()
    lines, shapes = _Lines(0), warm_up_shapes()
    while True:
        line = lines.readline(0 if shapes is not None else None)
        if line is None:  # idle: warm the parser on one more common shape
            if next(shapes, StopIteration) is StopIteration:
                shapes = None
            continue
        if not line:
            break
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if not isinstance(request, dict):
            continue
        answer: dict
        try:
            _limit_cpu(int(request.get("cpu", 0)) or 3600)
            answer = handle(request)
        except MemoryError:
            answer = {"v": "memory", "a": None}
        except Exception:  # a parser crash on hostile input means "no verdict / no answer", never a dead pool
            answer = {"v": "error", "a": None}
        out.write(json.dumps({**answer, "id": request.get("id")}) + "\n")
        out.flush()
        if answer.get("v") == "memory":  # near its cap, with full caches: a fresh worker takes its place
            os._exit(3)


if __name__ == "__main__":
    main()
