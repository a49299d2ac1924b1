"""A pool of killable worker processes for the symbolic checks.

Why processes: a big-integer power runs in C holding the GIL, so neither ``signal.alarm`` (main
thread only) nor a watchdog thread can stop it. A worker process can be killed. Each worker caps
its address space (``RLIMIT_AS``) and the CPU time of each request (``RLIMIT_CPU``, a little above
the wall-clock timeout); the parent gives every request a wall-clock deadline and kills and
replaces a worker that overruns it.

Workers are plain subprocesses fed newline-delimited JSON (never pickle), so the pool works the
same from the main thread, a worker thread, and a daemonic child process (which may not use
``multiprocessing``). One pool per process, created lazily (:func:`warm_up` starts it early);
calls from several threads are serialised.

What the pool promises under faults:

- **No call leaks into the next.** Every request carries the call's id and the worker echoes it; an
  answer for another call is dropped. However a call ends (an exception, Ctrl-C), its busy workers
  are killed and replaced before it returns.
- **A worker that dies is replaced**: during start-up (up to :data:`STARTUP_RETRIES` times in a row,
  then :class:`WorkerStartupError` says why: its exit status and its last error output), while
  idle, or mid-request (the request is retried once on a fresh worker; a second death gives the
  verdict ``"crashed"``, which callers treat as not equivalent and never cache).
- **No descriptor limit**: waiting uses :mod:`selectors` (epoll / poll), not ``select.select``.
- **No orphans**: a worker exits when its parent dies (a parent-death signal where the pool was
  started from the main thread on Linux, a watchdog thread everywhere) and a request stuck in C
  code is ended by its own CPU-time limit even when no parent is left to kill it.
- **Stray output is ignored**: a line that is not the protocol's (a ``sitecustomize`` that prints)
  is skipped, and the worker moves its own stdout aside once it runs.
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass

from .verdicts import EQUAL, GOLD_UNPARSEABLE, NOT_EQUAL, TIMEOUT

#: A worker died on this request twice: not equivalent, and not cached.
CRASHED = "crashed"

DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_WORKERS = 2
STARTUP_TIMEOUT = 120.0
#: Start-up failures in a row after which the pool gives up with the cause.
STARTUP_RETRIES = 3
_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")


class WorkerStartupError(RuntimeError):
    """Verification workers could not start (math-verify missing or broken, or killed at start-up)."""


def _exit_cause(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Worker:
    def __init__(self, memory_mb: int):
        self.errors = tempfile.TemporaryFile()
        in_main_thread = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            [sys.executable, _WORKER_SCRIPT, str(memory_mb), str(os.getpid()), "1" if in_main_thread else "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            start_new_session=True,  # its own process group: killing it kills anything it started
            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        )
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = b""
        self.ready = False
        self.task: int | None = None
        self.request_id: int | None = None
        self.deadline = time.monotonic() + STARTUP_TIMEOUT

    def send(self, task: int, request_id: int, request: dict, timeout: float) -> None:
        self.task, self.request_id = task, request_id
        self.deadline = time.monotonic() + timeout
        message = {**request, "id": request_id, "cpu": math.ceil(timeout) + 1}
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def read_messages(self) -> list[dict] | None:
        """The complete protocol messages that arrived; None when the worker has closed its output (died)."""
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        messages = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not ours: stray output
            if isinstance(message, dict):
                messages.append(message)
        return messages

    def error_output(self) -> str:
        try:
            self.errors.seek(0)
            text = self.errors.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return text.splitlines()[-1] if text else ""

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.errors):
            try:
                stream.close()
            except OSError:
                pass


@dataclass
class PoolStats:
    requests: int = 0
    timeouts: int = 0
    worker_restarts: int = 0
    crashes: int = 0  #: requests whose worker died on them (each retried once)


class VerifierPool:
    """Runs :func:`grpo_ext.verify.symbolic.judge` on (prediction, gold) pairs in killable workers.

    Args:
        num_workers: worker processes (each pair runs in one).
        timeout: wall-clock seconds one pair may take; an overrun kills the worker and the pair's
            verdict is ``"timeout"`` (treated as not equivalent).
        memory_mb: address-space cap of each worker; a pair that exceeds it is not equivalent.
    """

    def __init__(self, num_workers: int = DEFAULT_WORKERS, timeout: float = DEFAULT_TIMEOUT,
                 memory_mb: int = DEFAULT_MEMORY_MB):
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.num_workers, self.timeout, self.memory_mb = num_workers, timeout, memory_mb
        self.pid = os.getpid()
        self.stats = PoolStats()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)
        self._startup_failures = 0

    def start(self, wait: bool = False) -> None:
        """Start the workers now; without ``wait`` their imports run while the caller works."""
        with self._lock:
            self._top_up()
            if wait:
                self._run_locked([], None, None, None, until_ready=True)

    def _top_up(self) -> None:
        while len(self._workers) < self.num_workers:
            self._workers.append(_Worker(self.memory_mb))

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        fresh = _Worker(self.memory_mb)
        self._workers[self._workers.index(worker)] = fresh
        self.stats.worker_restarts += 1
        return fresh

    def _startup_failed(self, worker: _Worker, why: str) -> _Worker:
        self._startup_failures += 1
        cause = f"{why}; its last error output: {worker.error_output() or '(none)'}"
        if self._startup_failures >= STARTUP_RETRIES:
            worker.kill()
            self._workers.remove(worker)
            self._startup_failures = 0
            raise WorkerStartupError(
                f"{STARTUP_RETRIES} verification workers in a row failed to start ({cause}); run "
                f"'{sys.executable} {_WORKER_SCRIPT}' to see the whole error (is math-verify installed and importable?)"
            )
        return self._replace(worker)

    def run(self, pairs: list[tuple[str, str]]) -> list[str]:
        """Verdicts for ``pairs`` of (prediction, gold), in order."""
        requests = [{"pred": pred, "gold": gold} for pred, gold in pairs]
        return self._dispatch(requests, _verdict, failed=CRASHED, overrun=TIMEOUT)

    def close_symbolically(self, pairs: list[tuple[str, str]]) -> list[str]:
        """DeepSeek's symbolic step for ``pairs`` (:func:`grpo_ext.verify.symbolic.close_symbolically`):
        ``"equal"`` or ``"not_equal"``; ``"timeout"`` / ``"crashed"`` where the check did not finish."""
        return self._dispatch([{"ds": [a, b]} for a, b in pairs], _verdict, failed=CRASHED, overrun=TIMEOUT)

    def extract(self, texts: list[str]) -> list[str | None]:
        """math-verify's answer extraction over each whole text, in order; None where it finds none,
        fails, or overruns the timeout."""
        return self._dispatch([{"extract": text} for text in texts], _answer, failed=None, overrun=None)

    def _dispatch(self, requests: list[dict], read, failed, overrun) -> list:
        if not requests:
            return []
        with self._lock:
            self._top_up()
            return self._run_locked(requests, read, failed, overrun)

    def _run_locked(self, requests: list[dict], read, failed, overrun, until_ready: bool = False) -> list:
        """Results of ``requests``: ``read(message)`` of each answer, ``failed`` where workers died on it
        twice, ``overrun`` where it passed the deadline (the worker is killed and replaced). With
        ``until_ready``, also until every worker has started."""
        call = next(self._ids)
        results: list = [failed] * len(requests)
        deaths = [0] * len(requests)
        pending = deque(range(len(requests)))
        self.stats.requests += len(requests)
        selector = selectors.DefaultSelector()
        try:
            while (pending or any(w.task is not None for w in self._workers)
                   or (until_ready and not all(w.ready for w in self._workers))):
                for w in list(self._workers):
                    if w.ready and w.task is None and pending:
                        i = pending.popleft()
                        try:
                            w.send(i, call * 1_000_000 + i, requests[i], self.timeout)
                        except (BrokenPipeError, OSError):
                            pending.appendleft(i)
                            w.task = None
                            self._replace(w)
                self._watch(selector)
                now = time.monotonic()
                wait = min(60.0, max(0.0, min(w.deadline for w in self._workers) - now))
                readable = {key.data for key, _ in selector.select(wait)}
                for w in readable:
                    if w not in self._workers:
                        continue
                    messages = w.read_messages()
                    if messages is None:  # died: out of memory in C, or killed from outside
                        self._died(w, results, deaths, pending, failed)
                        continue
                    for message in messages:
                        if message.get("ready"):
                            w.ready, w.deadline = True, float("inf")
                            self._startup_failures = 0
                        elif w.task is not None and message.get("id") == w.request_id:
                            results[w.task] = read(message)
                            w.task, w.request_id, w.deadline = None, None, float("inf")
                now = time.monotonic()
                for w in list(self._workers):
                    if w.deadline <= now and w not in readable:
                        if w.task is not None:
                            results[w.task] = overrun
                            self.stats.timeouts += 1
                            w.task = None
                            self._replace(w)
                        elif not w.ready:
                            self._startup_failed(w, f"a worker did not start within {STARTUP_TIMEOUT:.0f} s")
        finally:
            selector.close()
            for w in list(self._workers):  # whatever ended the call, no busy worker outlives it
                if w.task is not None:
                    w.task = None
                    self._replace(w)
        return results

    def _watch(self, selector: selectors.BaseSelector) -> None:
        """Register the current workers' output with ``selector`` (and forget replaced ones)."""
        current = {w.fd: w for w in self._workers}
        for fd, key in list(selector.get_map().items()):
            if current.get(fd) is not key.data:
                selector.unregister(fd)
        for fd, w in current.items():
            if fd not in selector.get_map():
                selector.register(fd, selectors.EVENT_READ, w)

    def _died(self, w: _Worker, results: list, deaths: list[int], pending: deque, failed) -> None:
        code = w.proc.wait()
        if not w.ready:
            self._startup_failed(w, f"a worker exited during start-up ({_exit_cause(code)})")
            return
        if w.task is not None:
            task = w.task
            deaths[task] += 1
            self.stats.crashes += 1
            if deaths[task] < 2:
                pending.appendleft(task)  # once more, on a fresh worker
            else:
                results[task] = failed
            w.task = None
        self._replace(w)

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.kill()
            self._workers = []


def _verdict(message: dict) -> str:
    """A worker's verdict; out of memory counts as a crash (not equal, never cached), a parser error as not equal."""
    verdict = message.get("v")
    if verdict == "memory":
        return CRASHED
    return verdict if verdict in (EQUAL, NOT_EQUAL, GOLD_UNPARSEABLE) else NOT_EQUAL


def _answer(message: dict) -> str | None:
    answer = message.get("a")
    return answer if isinstance(answer, str) and answer.strip() else None


_pool: VerifierPool | None = None
_pool_lock = threading.Lock()
_settings = {"num_workers": DEFAULT_WORKERS, "timeout": DEFAULT_TIMEOUT, "memory_mb": DEFAULT_MEMORY_MB}


def configure(num_workers: int | None = None, timeout: float | None = None, memory_mb: int | None = None) -> None:
    """Set the shared pool's size, per-pair timeout (seconds) and per-worker memory cap (MiB)."""
    global _pool
    for key, value in (("num_workers", num_workers), ("timeout", timeout), ("memory_mb", memory_mb)):
        if value is not None:
            _settings[key] = value
    VerifierPool(**_settings)  # validate before replacing the running pool
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.close()
        _pool = None


def get_pool() -> VerifierPool:
    """The process's shared pool (a child process gets its own, never its parent's workers)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = VerifierPool(**_settings)
        return _pool


def warm_up(wait: bool = False) -> None:
    """Start the shared pool's workers now, in the background: a trainer or an evaluation calls this
    when it is built, so that the first reward call does not wait for the workers' imports. With
    ``wait``, return once they are ready."""
    get_pool().start(wait=wait)


@atexit.register
def _shutdown() -> None:
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()
