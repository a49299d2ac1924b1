"""accuracy_reward, format_reward and get_reward_funcs with TRL's reward signature."""

import logging

import pytest

from grpo_ext.rewards import accuracy_reward, format_reward, get_reward_funcs


def test_accuracy_scores_equivalent_answers_one():
    completions = ["... so \\boxed{\\frac{1}{2}}", "#### 12", "The answer is 7."]
    assert accuracy_reward(completions, answer=["0.5", "12", "8"]) == [1.0, 1.0, 0.0]


def test_accuracy_reads_conversational_completions():
    completions = [[{"role": "assistant", "content": "Thus \\boxed{3}."}]]
    assert accuracy_reward(completions, answer=["3"]) == [1.0]


def test_accuracy_reads_content_parts():
    completions = [[{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{3}"}]}]]
    assert accuracy_reward(completions, answer=["3"]) == [1.0]


def test_strict_mode_scores_an_unmarked_answer_zero():
    assert accuracy_reward(["It is 12"], answer=["12"], strict=True) == [0.0]


def test_default_mode_scores_an_unmarked_right_answer():
    assert accuracy_reward(["It is 12"], answer=["12"]) == [1.0]


def test_no_answer_at_all_scores_zero():
    assert accuracy_reward(["I do not know."], answer=["12"]) == [0.0]


def test_last_number_fallback_scores_plain_numbers():
    assert accuracy_reward(["57"], answer=["57"], last_number_fallback=True) == [1.0]


def test_unparseable_gold_scores_zero_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="grpo_ext.rewards.accuracy"):
        assert accuracy_reward(["\\boxed{\\frac{1}{}", "\\boxed{1}"], answer=["\\frac{1}{", "\\frac{1}{"]) == [0.0, 0.0]
    assert "cannot be parsed" in caplog.text


def test_gold_none_is_not_applicable():
    assert accuracy_reward(["\\boxed{1}", "\\boxed{1}"], answer=["1", None]) == [1.0, None]


def test_missing_answer_column_says_what_to_add():
    with pytest.raises(ValueError, match="'answer' column"):
        accuracy_reward(["\\boxed{1}"])


def test_bad_completion_type_is_explained():
    with pytest.raises(TypeError, match="conversational format"):
        accuracy_reward([42], answer=["1"])


def test_counters_are_logged_through_trl_log_metric():
    logged = {}
    accuracy_reward(["\\boxed{\\sqrt{8}}"], answer=["2\\sqrt{2}"], log_metric=lambda k, v: logged.__setitem__(k, v))
    assert set(logged) == {"verify/symbolic", "verify/timeouts", "verify/worker_failures", "verify/cache_hits", "verify/rejected",
                           "verify/unparseable_golds", "verify/no_answer"}


def test_format_any_accepts_every_answer_form():
    completions = ["\\boxed{1}", "#### 5", "The answer is 3", "答案是 5", "just 5"]
    assert format_reward(completions) == [1.0, 1.0, 1.0, 1.0, 0.0]


def test_format_boxed_requires_a_box():
    assert format_reward(["\\boxed{1}", "#### 5"], form="boxed") == [1.0, 0.0]


def test_format_gsm8k_finds_hashes_beside_a_box():
    assert format_reward(["\\boxed{1}\n#### 1"], form="gsm8k") == [1.0]


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="form must be one of"):
        format_reward(["x"], form="latex")


def test_registry_returns_named_functions_with_options_bound():
    accuracy, fmt = get_reward_funcs(["accuracy", "format"], last_number_fallback=True, answer_form="boxed")
    assert accuracy.__name__ == "accuracy_reward" and fmt.__name__ == "format_reward"
    assert accuracy(["57"], answer=["57"]) == [1.0]
    assert fmt(["#### 5"]) == [0.0]


def test_registry_accepts_a_comma_separated_string():
    assert [f.__name__ for f in get_reward_funcs("accuracy, format")] == ["accuracy_reward", "format_reward"]


def test_registry_suggests_a_close_name():
    with pytest.raises(ValueError, match="Did you mean 'accuracy'"):
        get_reward_funcs(["acuracy"])


def test_registry_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown reward option"):
        get_reward_funcs(["accuracy"], fallback=True)
