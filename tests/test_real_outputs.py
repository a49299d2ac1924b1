"""accuracy_reward on completions as real models write them, and on the real benchmark files."""

import json
import logging
import re
from pathlib import Path

import pytest

from grpo_ext.rewards import accuracy_reward, get_reward_funcs, make_accuracy_reward
from grpo_ext.rewards import accuracy as accuracy_module
from tests.real_output_cases import CASES

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"the real benchmark files are not at {DATA} (a fresh clone)")


@pytest.mark.parametrize("completion, gold, reward", CASES, ids=[f"{i}:{c[1]}" for i, c in enumerate(CASES)])
def test_real_output_form_scores_as_labelled(completion, gold, reward):
    assert accuracy_reward([completion], answer=[gold]) == [reward]


def test_every_right_answer_math_verify_accepts_is_accepted():
    # the labelled cases, judged by plain math-verify (trusted input, so in-process is fine here); its one
    # false positive among them (1/2004! "equals" 1/2006! at its fixed precision) is left out
    from math_verify import parse
    from math_verify import verify as mv_verify

    logging.disable(logging.WARNING)
    try:
        accepted = [(c, g) for c, g, reward in CASES
                    if reward == 1.0 and mv_verify(parse(f"${g}$", parsing_timeout=None), parse(c, parsing_timeout=None), timeout_seconds=None)]
    finally:
        logging.disable(logging.NOTSET)
    assert len(accepted) >= 20  # premise: math-verify accepts most of the positives
    assert accuracy_reward([c for c, _ in accepted], answer=[g for _, g in accepted]) == [1.0] * len(accepted)


def test_strict_mode_scores_an_unmarked_right_answer_zero():
    assert accuracy_reward(["She has 5 and buys 7, so 12"], answer=["12"], strict=True) == [0.0]


def test_make_accuracy_reward_binds_options_and_keeps_the_name():
    strict = make_accuracy_reward(strict=True)
    assert strict.__name__ == "accuracy_reward"
    assert strict(["so 12"], answer=["12"]) == [0.0] and accuracy_reward(["so 12"], answer=["12"]) == [1.0]


def test_make_accuracy_reward_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown accuracy_reward option"):
        make_accuracy_reward(strictly=True)


def test_recipes_reach_the_strict_option_through_the_registry():
    (func,) = get_reward_funcs(["accuracy"], strict=True)
    assert func(["so 12"], answer=["12"]) == [0.0]


def test_no_answer_share_is_logged_per_batch():
    logged = {}
    accuracy_reward(["\\boxed{3}", "no idea", "I cannot tell", "#### 4"], answer=["3"] * 4,
                    log_metric=lambda k, v: logged.__setitem__(k, v))
    assert logged["verify/no_answer"] == 0.5


def test_mostly_unanswered_completions_warn_once_with_the_fix(caplog, monkeypatch):
    monkeypatch.setattr(accuracy_module, "_window", {"completions": 0, "no_answer": 0, "warned": False})
    silent = ["I would need more information."] * 40 + ["#### 3"] * 24  # 62.5% without an answer
    with caplog.at_level(logging.WARNING, logger="grpo_ext.rewards.accuracy"):
        accuracy_reward(silent, answer=["3"] * 64)
        accuracy_reward(silent, answer=["3"] * 64)
    warnings = [r for r in caplog.records if "state no answer" in r.getMessage()]
    assert len(warnings) == 1 and "62%" in warnings[0].getMessage() and "\\boxed{}" in warnings[0].getMessage()


def test_a_mostly_answered_stream_does_not_warn(caplog, monkeypatch):
    monkeypatch.setattr(accuracy_module, "_window", {"completions": 0, "no_answer": 0, "warned": False})
    with caplog.at_level(logging.WARNING, logger="grpo_ext.rewards.accuracy"):
        accuracy_reward(["no idea"] * 20 + ["#### 3"] * 44, answer=["3"] * 64)
    assert not [r for r in caplog.records if "state no answer" in r.getMessage()]


# ----- the real benchmark files ------------------------------------------------------------------
def rows(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_data
def test_every_math500_reference_solution_scores_one():
    data = rows("math500/test.jsonl")
    assert len(data) == 500
    rewards = accuracy_reward([r["solution"] for r in data], answer=[r["answer"] for r in data])
    assert rewards == [1.0] * 500


@needs_data
def test_every_gsm8k_worked_answer_scores_one_and_so_does_its_gpt3_form():
    data = rows("gsm8k/train.jsonl")
    golds = [r["answer"].split("####")[-1].strip() for r in data]
    assert accuracy_reward([r["answer"] for r in data], answer=golds) == [1.0] * len(data)
    gpt3 = [re.sub(r"####\s*(.*)$", r"A: \1", r["answer"]) for r in data]  # GPT-3's samples end in "A: N"
    assert accuracy_reward(gpt3, answer=golds) == [1.0] * len(data)


@needs_data
def test_a_wrong_final_number_after_the_right_work_scores_zero_on_gsm8k():
    data = rows("gsm8k/test.jsonl")[:200]
    golds = [r["answer"].split("####")[-1].strip() for r in data]
    wrong = [re.sub(r"####\s*(.*)$", lambda m: f"#### {m.group(1).replace(',', '')}1", r["answer"]) for r in data]
    assert accuracy_reward(wrong, answer=golds) == [0.0] * len(data)


@pytest.mark.parametrize("completion, gold, reward", [
    ("1.22", "1,22", 1.0), ("0.111", "0,111", 1.0), ("1000,99", "1000.99", 1.0),  # decimal commas
    ("AZYUK2A", "2", 0.0),  # digits inside a word are not a number
])
def test_decimal_commas_and_digits_inside_words(completion, gold, reward):
    assert accuracy_reward([completion], answer=[gold]) == [reward]


@pytest.mark.parametrize("completion, gold", [
    ("Final Answer: The final answer is 12,000,023. I hope it is correct.", "12000023"),
    ("Therefore the volume is 120.\nFinal Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", "120"),
    ("So the ordered pair $(x, y)$ that solves the system is $(7, 6)$.", "(7,6)"),  # prose words are not code
])
def test_answers_stated_inside_a_sentence(completion, gold):
    assert accuracy_reward([completion], answer=[gold]) == [1.0]
