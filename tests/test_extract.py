"""extract_answer: each answer form, the documented order, and the last-number fallback."""

import pytest

from grpo_ext.verify import extract_answer, extract_answers_with_form
from grpo_ext.verify.extract import extract_marked_answer_with_form


def test_boxed_with_nested_braces():
    assert extract_answer("so $x = \\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"


def test_last_box_wins_when_there_are_several():
    assert extract_answer("first \\boxed{5}, corrected: \\boxed{7}") == "7"


def test_fbox():
    assert extract_answer("\\fbox{42}") == "42"


def test_boxed_without_braces():
    assert extract_answer("The result is \\boxed 9.") == "9."


def test_unbalanced_last_box_falls_back_to_an_earlier_one():
    assert extract_answer("\\boxed{3} then \\boxed{\\frac{1}{2}") == "3"


def test_gsm8k_hashes():
    assert extract_answer("She pays 3*4=12 dollars.\n#### 12") == "12"


def test_english_answer_sentence():
    assert extract_answer("Adding them up, the answer is 42.") == "42"


def test_final_answer_sentence_with_latex():
    assert extract_answer("Therefore, the final answer is $\\frac{3}{4}$. I hope it is correct.") == "$\\frac{3}{4}$"


def test_chinese_answer_is():
    assert extract_answer("小明一共有 5 个苹果。答案是 5") == "5"


def test_chinese_answer_colon():
    assert extract_answer("计算得到结果。\n答案：12 元") == "12 元"


def test_box_is_preferred_over_a_sentence():
    assert extract_answer("The answer is 3. Actually \\boxed{4}") == "4"


def test_gsm8k_is_preferred_over_a_sentence():
    assert extract_answer("the answer is 3\n#### 4") == "4"


def test_strict_mode_without_a_marker_gives_none():
    assert extract_answer("I think it is 12", strict=True) is None


def test_strict_mode_takes_the_last_number_only_when_configured():
    assert extract_answer("I think it is 12, so 13", strict=True, last_number_fallback=True) == "13"
    assert extract_answer("I think it is 12, not 13", strict=True, last_number_fallback=True) is None  # negated


def test_default_mode_ends_with_the_last_number():
    assert extract_answers_with_form(["I think it is 12, so 13."]) == [("13", "math_verify")]


def test_a_negated_or_bounded_last_number_is_not_the_answer():
    assert extract_answers_with_form(["I think it is 12, not 13.", "so it is at least 45"]) == [(None, None)] * 2


def test_prose_without_any_number_gives_none():
    assert extract_answer("I am not sure how to solve this.") is None


def test_fallback_reports_its_form():
    assert extract_marked_answer_with_form("57", last_number_fallback=True) == ("57", "last_number")


@pytest.mark.parametrize("text", ["", None, 12])
def test_non_text_gives_none(text):
    assert extract_answer(text) is None


@pytest.mark.parametrize("separator", [",\\!", "{,}"])
def test_the_last_number_reads_latex_thousands_separators(separator):
    from grpo_ext.verify.extract import last_number

    assert last_number(f"so there are 10{separator}080 ways") == f"10,080"
