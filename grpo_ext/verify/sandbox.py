"""A pool of killable worker processes for the symbolic checks.

Why processes: a big-integer power runs in C holding the GIL, so neither ``signal.alarm`` (main
thread only) nor a watchdog thread can stop it. A worker process can be killed. Each worker caps
its address space (``RLIMIT_AS``); the parent gives every request a wall-clock deadline and kills
and replaces a worker that overruns it.

Workers are plain subprocesses fed newline-delimited JSON (never pickle), so the pool works the
same from the main thread, a worker thread, and a daemonic child process (which may not use
``multiprocessing``). One pool per process, created lazily; calls from several threads are
serialised.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

#: Verdicts a request can end with.
EQUAL, NOT_EQUAL, GOLD_UNPARSEABLE, TIMEOUT = "equal", "not_equal", "gold_unparseable", "timeout"

DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_WORKERS = 2
STARTUP_TIMEOUT = 120.0
_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")


class WorkerStartupError(RuntimeError):
    """A verification worker could not start (math-verify missing or broken)."""


class _Worker:
    def __init__(self, memory_mb: int):
        self.proc = subprocess.Popen(
            [sys.executable, _WORKER_SCRIPT, str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killing it kills anything it started
            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        )
        self.ready = False
        self.task: int | None = None
        self.deadline = time.monotonic() + STARTUP_TIMEOUT

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, task: int, request: dict, timeout: float) -> None:
        self.task = task
        self.deadline = time.monotonic() + timeout
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


@dataclass
class PoolStats:
    requests: int = 0
    timeouts: int = 0
    worker_restarts: int = 0


class VerifierPool:
    """Runs :func:`grpo_ext.verify._worker.judge` on (prediction, gold) pairs in killable workers.

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

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        fresh = _Worker(self.memory_mb)
        self._workers[self._workers.index(worker)] = fresh
        self.stats.worker_restarts += 1
        return fresh

    def run(self, pairs: list[tuple[str, str]]) -> list[str]:
        """Verdicts for ``pairs`` of (prediction, gold), in order."""
        requests = [{"pred": pred, "gold": gold} for pred, gold in pairs]
        return self._dispatch(requests, _verdict, failed=NOT_EQUAL, overrun=TIMEOUT)

    def extract(self, texts: list[str]) -> list[str | None]:
        """math-verify's answer extraction over each whole text, in order; None where it finds none,
        fails, or overruns the timeout."""
        return self._dispatch([{"extract": text} for text in texts], _answer, failed=None, overrun=None)

    def _dispatch(self, requests: list[dict], read, failed, overrun) -> list:
        if not requests:
            return []
        with self._lock:
            while len(self._workers) < self.num_workers:
                self._workers.append(_Worker(self.memory_mb))
            return self._run_locked(requests, read, failed, overrun)

    def _run_locked(self, requests: list[dict], read, failed, overrun) -> list:
        """Results of ``requests``: ``read(message)`` of each answer, ``failed`` where a worker died on it,
        ``overrun`` where it passed the deadline (the worker is killed and replaced)."""
        results: list = [failed] * len(requests)
        pending = list(range(len(requests)))[::-1]
        self.stats.requests += len(requests)
        while pending or any(w.task is not None for w in self._workers):
            for w in self._workers:
                if w.ready and w.task is None and pending:
                    i = pending.pop()
                    try:
                        w.send(i, requests[i], self.timeout)
                    except (BrokenPipeError, OSError):
                        pending.append(i)
                        self._replace(w)
            now = time.monotonic()
            wait = min(60.0, max(0.0, min(w.deadline for w in self._workers) - now))
            readable, _, _ = select.select(self._workers, [], [], wait)
            for w in readable:
                line = w.proc.stdout.readline()
                if not line:  # died: out of memory in C, or killed from outside
                    if not w.ready:
                        code = w.proc.wait()
                        raise WorkerStartupError(
                            f"a verification worker exited during startup (exit code {code}); run "
                            f"'{sys.executable} {_WORKER_SCRIPT}' to see why (is math-verify installed?)"
                        )
                    if w.task is not None:
                        results[w.task] = failed
                    self._replace(w)
                    continue
                message = json.loads(line)
                if message.get("ready"):
                    w.ready = True
                    w.deadline = float("inf")
                    continue
                results[w.task] = read(message)
                w.task, w.deadline = None, float("inf")
            now = time.monotonic()
            for w in list(self._workers):
                if w.deadline <= now and w not in readable:
                    if w.task is not None:
                        results[w.task] = overrun
                        self.stats.timeouts += 1
                    elif not w.ready:
                        raise WorkerStartupError(
                            f"a verification worker did not start within {STARTUP_TIMEOUT:.0f} s; check that "
                            f"'{sys.executable} {_WORKER_SCRIPT}' runs (is math-verify installed?)"
                        )
                    self._replace(w)
        return results

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.kill()
            self._workers = []


def _verdict(message: dict) -> str:
    verdict = message.get("v")
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


@atexit.register
def _shutdown() -> None:
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()
