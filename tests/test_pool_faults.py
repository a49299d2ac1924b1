"""The verification pool under faults: interrupts, kills, start-up failures, many descriptors, a dying
parent, stray output. Every test is bounded in time; none asserts a speed."""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from grpo_ext import verify
from grpo_ext.verify import pipeline, sandbox
from grpo_ext.verify.sandbox import CRASHED, VerifierPool, WorkerStartupError

pytestmark = pytest.mark.timeout(120)

SLOW = ("(x+y+z+1)^{40}", "x^2+1")  # overruns any short timeout
RIGHT = [("\\sqrt{9}", "3"), ("(x+1)^2", "x^2+2x+1"), ("\\frac{1}{2}", "0.5")]


def expanded(n: int) -> tuple[str, str]:
    """An equal pair that takes math-verify most of a second: (x+y+1)^n against its expansion."""
    import sympy

    x, y = sympy.symbols("x y")
    return f"(x+y+1)^{{{n}}}", sympy.latex(sympy.expand((x + y + 1) ** n))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.fixture
def pool():
    p = VerifierPool(num_workers=1, timeout=2.0)
    yield p
    p.close()


def interrupt_after(seconds: float):
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def test_an_interrupted_call_does_not_leak_into_the_next(pool):
    pool.run([RIGHT[0]])  # workers up
    previous = interrupt_after(0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.run([SLOW, SLOW])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert pool.run(RIGHT) == ["equal"] * 3
    assert pool.run([RIGHT[1]]) == ["equal"]


def test_a_worker_killed_during_start_up_is_replaced(pool):
    pool.start()
    os.kill(pool._workers[0].proc.pid, signal.SIGKILL)
    assert pool.run(RIGHT) == ["equal"] * 3
    assert pool.stats.worker_restarts >= 1


def test_workers_that_cannot_start_say_why(tmp_path, monkeypatch):
    broken = tmp_path / "worker.py"
    broken.write_text("import sys\nsys.stderr.write(\"ModuleNotFoundError: No module named 'math_verify'\\n\")\nsys.exit(3)\n")
    monkeypatch.setattr(sandbox, "_WORKER_SCRIPT", str(broken))
    p = VerifierPool(num_workers=1)
    try:
        with pytest.raises(WorkerStartupError, match="exit code 3.*No module named 'math_verify'"):
            p.run([RIGHT[0]])
        assert p._workers == []
    finally:
        p.close()


def test_a_worker_killed_while_idle_is_replaced(pool):
    pool.run([RIGHT[0]])
    os.kill(pool._workers[0].proc.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert pool.run(RIGHT) == ["equal"] * 3


def test_a_worker_killed_mid_pair_is_retried_on_a_fresh_one():
    p = VerifierPool(num_workers=1, timeout=30.0)
    try:
        pair = expanded(10)
        p.run([RIGHT[0]])
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("v", p.run([pair])))
        thread.start()
        deadline = time.monotonic() + 10
        while p._workers[0].task is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(p._workers[0].proc.pid, signal.SIGKILL)
        thread.join(60)
        assert result["v"] == ["equal"]
        assert p.stats.crashes == 1
    finally:
        p.close()


def test_a_pair_whose_workers_crash_is_not_cached_and_is_counted(monkeypatch):
    verify.clear_cache()
    verify.reset_stats()
    calls = []

    def crashing_run(pairs):
        calls.append(pairs)
        return [CRASHED] * len(pairs)

    monkeypatch.setattr(sandbox.get_pool(), "run", crashing_run)
    assert verify.judge(["(x+1)^2"], ["x^2+2x+1"]) == ["not_equal"]
    assert verify.judge(["(x+1)^2"], ["x^2+2x+1"]) == ["not_equal"]
    assert len(calls) == 2  # asked again: the crash was not cached
    assert verify.stats()["worker_failures"] == 2


def test_a_timed_out_pair_is_not_cached(monkeypatch):
    verify.clear_cache()
    monkeypatch.setattr(sandbox.get_pool(), "run", lambda pairs: [sandbox.TIMEOUT] * len(pairs))
    verify.judge(["(x+1)^2"], ["x^2+2x+1"])
    assert ("(x+1)^2", "x^2+2x+1") not in pipeline._verdicts


def test_more_than_1024_open_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1300
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"this shell allows only {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    p = VerifierPool(num_workers=1)
    try:
        assert max(fds) > 1024
        assert p.run(RIGHT) == ["equal"] * 3
    finally:
        p.close()
        for fd in fds:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


PARENT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from grpo_ext.verify.sandbox import VerifierPool
    pool = VerifierPool(num_workers=2, timeout=60.0)
    pool.start(wait=True)
    print(json.dumps([w.proc.pid for w in pool._workers]), flush=True)
    pool.run([{slow!r}, {slow!r}])
""")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_no_worker_outlives_its_parent(how):
    root = str(Path(__file__).resolve().parents[1])
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(root=root, slow=SLOW)], stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(parent.stdout.readline())
        time.sleep(0.5)  # both busy on the slow check
        assert all(alive(pid) for pid in pids)
        parent.send_signal(how)
        parent.wait(30)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()


def test_stray_output_of_a_worker_is_ignored(tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text("print('hello from sitecustomize')\nprint('{\"not\": \"ours\"}')\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    p = VerifierPool(num_workers=1)
    try:
        assert p.run(RIGHT) == ["equal"] * 3
    finally:
        p.close()


def test_the_extraction_cache_is_bounded_and_cleared():
    lru = pipeline._LRU(3)
    for i in range(5):
        lru.put(i, (str(i),))
    assert list(lru.data) == [2, 3, 4]
    verify.extract_answers(["so the sum is $\\frac{7}{9}$ in all, I think"])
    assert len(pipeline._extractions.data) >= 1
    assert all(isinstance(k, bytes) and len(k) == 16 for k in pipeline._extractions.data)  # digests, not texts
    verify.clear_cache()
    assert not pipeline._extractions.data and not pipeline._verdicts.data and not pipeline._golds.data
