"""The same verdicts from the main thread, worker threads, a subprocess and a daemonic child."""

import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from grpo_ext.verify import is_equivalent

SYMBOLIC = [("\\sqrt{8}", "2\\sqrt{2}", True), ("(x+1)^2", "x^2+2x+1", True), ("\\sqrt{12}", "3\\sqrt{2}", False)]


def verdicts():
    return [is_equivalent(p, g) for p, g, _ in SYMBOLIC]


EXPECTED = [e for _, _, e in SYMBOLIC]


def test_main_thread():
    assert verdicts() == EXPECTED


def test_worker_threads_at_once():
    # math-verify's own signal.alarm timeout raises outside the main thread; ours does not
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: verdicts(), range(4)))
    assert results == [EXPECTED] * 4


def test_subprocess():
    code = "from grpo_ext.verify import is_equivalent as e; print(e('\\\\sqrt{8}', '2\\\\sqrt{2}'), e('\\\\sqrt{12}', '3\\\\sqrt{2}'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]


def test_daemonic_multiprocessing_child():
    # multiprocessing.Pool workers are daemonic and may not start multiprocessing children
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.starmap(is_equivalent, [(p, g) for p, g, _ in SYMBOLIC])
    assert results == EXPECTED
