"""Hostile model output: nothing runs, nothing hangs, memory stays bounded.

Every case must score 0.0 and return within the sandbox's timeout plus a margin, from the main thread
and from a worker thread. The margin covers the respawn of a killed worker on a loaded 2-core machine
(another process beside the suite can make that take several seconds); it is generous on purpose: the
bound tells a bounded verification from a hang (an unbounded one never returns), not a speed target.
"""

import threading

import psutil
import pytest

from grpo_ext import verify
from grpo_ext.rewards import accuracy_reward

TIMEOUT = 2.0
MARGIN = 30.0


@pytest.fixture(scope="module", autouse=True)
def short_timeout():
    verify.configure(timeout=TIMEOUT)
    yield
    verify.configure(timeout=verify.sandbox.DEFAULT_TIMEOUT)


@pytest.fixture(autouse=True)
def no_cached_verdicts():
    verify.clear_cache()  # every test must really run its inputs through the sandbox


def code_payloads(marker):
    path = str(marker)
    as_chr = "+".join(f"chr({ord(c)})" for c in path)
    return [
        f"\\boxed{{__import__('os').system('touch {path}')}}",
        f"\\boxed{{open('{path}', 'w').write('x')}}",
        f'#### exec("open(\'{path}\', \'w\')")',
        f"The answer is eval(compile('open(\"{path}\", \"w\")', 'a', 'exec'))",
        f"\\boxed{{open({as_chr}, chr(119))}}",
        "\\boxed{().__class__.__bases__[0].__subclasses__()}",
        f"\\boxed{{exit()}}",
    ]


RESOURCE_BOMBS = {
    "tower": "\\boxed{9^{9^{9^{9}}}}",
    "power": "\\boxed{10^{100000000}}",
    "factorial": "\\boxed{100000000!}",
    "slow_polynomial": "\\boxed{(x+y+z+1)^{40}}",
    "nested_parens": "\\boxed{" + "(" * 20000 + "1" + ")" * 20000 + "}",
    "long_sum": "\\boxed{" + "+".join(["1"] * 50000) + "}",
    "unbalanced": "\\boxed{\\frac{1}{3" + "{" * 1000,  # no box; math-verify's extraction finds a 3, not the gold
    "megabyte": "x" * 1_000_000 + " \\boxed{" + "9" * 1000 + "}",
    "megabyte_of_boxes": "\\boxed{" * 200_000,
    "nul_bytes": "\\boxed{7\x00}\x00" * 1000 + "\x00" * 100_000,
}


def finishes(fn, seconds):
    """Run fn in a thread; return (finished in time, its result)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), result.get("value")


def test_code_in_answers_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    payloads = code_payloads(marker)
    assert accuracy_reward(payloads, answer=["1"] * len(payloads)) == [0.0] * len(payloads)
    # as golds too: golds come from datasets, but a poisoned dataset must not run code either
    assert accuracy_reward(["\\boxed{1}"] * len(payloads), answer=payloads) == [0.0] * len(payloads)
    assert not marker.exists()


def test_code_without_an_answer_marker_never_runs(tmp_path):
    # no marker: such completions would go to math-verify's extraction over the whole text
    marker = tmp_path / "MARKER"
    path = str(marker)
    payloads = [f"so x = __import__('os').system('touch {path}')", f"open('{path}', 'w').write('x')",
                f'exec("open(\'{path}\', \'w\')")', f"import os; os.system('touch {path}')"]
    assert accuracy_reward(payloads, answer=["1"] * len(payloads)) == [0.0] * len(payloads)
    assert not marker.exists()


def test_the_worker_refuses_code_shaped_text_for_extraction(tmp_path):
    from grpo_ext.verify._worker import extract

    assert extract(f"so x = __import__('os').system('touch {tmp_path / 'M'}')") is None
    assert extract("She has 5 and buys 7, so $12$ in all.") == "12"


def test_code_in_answers_never_runs_inside_the_worker_either(tmp_path):
    # the sandbox worker applies the same whitelist before math-verify's parse_expr could eval
    from grpo_ext.verify._worker import judge

    marker = tmp_path / "MARKER"
    for payload in code_payloads(marker):
        assert judge(verify.normalize_answer(verify.extract_answer(payload)), "1") == "not_equal"
        assert judge("1", verify.normalize_answer(verify.extract_answer(payload))) == "gold_unparseable"
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(RESOURCE_BOMBS))
def test_resource_bomb_scores_zero_in_bounded_time_from_main_thread(name):
    import time

    start = time.monotonic()
    rewards = accuracy_reward([RESOURCE_BOMBS[name]], answer=["2"])
    assert rewards == [0.0]
    assert time.monotonic() - start < TIMEOUT + MARGIN


@pytest.mark.parametrize("name", sorted(RESOURCE_BOMBS))
def test_resource_bomb_scores_zero_in_bounded_time_from_a_thread(name):
    done, rewards = finishes(lambda: accuracy_reward([RESOURCE_BOMBS[name]], answer=["2"]), TIMEOUT + MARGIN)
    assert done and rewards == [0.0]


def test_a_batch_of_bombs_with_good_answers_scores_the_good_ones():
    completions = list(RESOURCE_BOMBS.values()) + ["\\boxed{2}", "\\boxed{\\sqrt{4}}"]
    rewards = accuracy_reward(completions, answer=["2"] * len(completions))
    assert rewards == [0.0] * len(RESOURCE_BOMBS) + [1.0, 1.0]


def test_callers_memory_stays_bounded():
    process = psutil.Process()
    before = process.memory_info().rss
    for _ in range(3):
        accuracy_reward(list(RESOURCE_BOMBS.values()), answer=["2"] * len(RESOURCE_BOMBS))
    assert process.memory_info().rss - before < 200 * 2**20


def test_workers_run_under_the_memory_cap():
    from grpo_ext.verify.sandbox import VerifierPool

    pool = VerifierPool(num_workers=1, timeout=TIMEOUT, memory_mb=512)
    try:
        assert pool.run([("\\sqrt{4}", "2")]) == ["equal"]
        limits = open(f"/proc/{pool._workers[0].proc.pid}/limits").read()
        line = next(l for l in limits.splitlines() if l.startswith("Max address space"))
        assert line.split()[3] == str(512 * 2**20)
    finally:
        pool.close()


def test_a_worker_that_dies_mid_request_is_replaced():
    import os
    import signal

    from grpo_ext.verify.sandbox import VerifierPool

    pool = VerifierPool(num_workers=1, timeout=TIMEOUT)
    try:
        pool.run([("1", "1")])
        os.kill(pool._workers[0].proc.pid, signal.SIGKILL)  # as the kernel would on running out of memory
        assert pool.run([("\\sqrt{4}", "2")]) in (["not_equal"], ["equal"])
        assert pool.run([("\\sqrt{9}", "3")]) == ["equal"]
        assert pool.stats.worker_restarts >= 1
    finally:
        pool.close()


def test_timeouts_are_counted():
    verify.reset_stats()
    accuracy_reward([RESOURCE_BOMBS["slow_polynomial"]], answer=["x^2+1"])
    assert verify.stats()["timeouts"] == 1
