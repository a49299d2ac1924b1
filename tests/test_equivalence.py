"""is_equivalent against hand-labelled cases in every category, and its contract."""

import pytest

from grpo_ext.verify import are_equivalent, is_equivalent, judge, normalize_answer
from tests.equivalence_cases import ALL_CASES


@pytest.mark.parametrize("pred, gold, expected, category", ALL_CASES, ids=[f"{c[3]}:{c[0]}|{c[1]}" for c in ALL_CASES])
def test_equivalence_case(pred, gold, expected, category):
    assert is_equivalent(pred, gold) is expected


def test_batch_gives_the_same_verdicts_as_single_calls():
    preds = [c[0] for c in ALL_CASES]
    golds = [c[1] for c in ALL_CASES]
    assert are_equivalent(preds, golds) == [c[2] for c in ALL_CASES]


def test_unparseable_gold_is_never_equivalent_even_to_itself():
    assert is_equivalent("\\frac{1}{", "\\frac{1}{") is False
    assert judge(["\\frac{1}{"], ["\\frac{1}{"]) == ["gold_unparseable"]


def test_empty_gold_is_unparseable():
    assert judge(["5"], [""]) == ["gold_unparseable"]


def test_missing_prediction_is_not_equivalent():
    assert judge([None], ["5"]) == ["not_equal"]


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="2 predictions but 1 gold"):
        judge(["1", "2"], ["1"])


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("$12$", "12"),
        ("\\$1,234.", "1234"),
        ("\\left( 1, 2 \\right)", "( 1, 2 )"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\tfrac{1}{2}", "\\frac{1}{2}"),
        ("90^\\circ", "90"),
        ("7\\text{ inches}", "7"),
        ("12 dollars", "12"),
        ("３分之２", "\\frac{2}{3}"),
        ("5 元", "5"),
        ("East", "east"),
    ],
)
def test_normalisation(raw, normalised):
    assert normalize_answer(raw) == normalised


@pytest.mark.parametrize("pred, gold, expected", [
    ("2\\sqrt{2}", "\\sqrt{8}", True), ("\\frac{3\\sqrt{2}}{4}", "\\frac{\\sqrt{18}}{4}", True),
    ("\\sqrt{12}", "3\\sqrt{2}", False), ("\\frac{\\pi}{2}", "\\frac{2\\pi}{4}", True), ("2\\pi", "\\pi", False),
    ("(1, 2)", "(1,2)", True), ("[1, 2)", "(1,2)", False), ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", True),
    ("\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False),
])
def test_exact_forms_are_decided_without_the_sandbox(pred, gold, expected):
    from grpo_ext import verify

    verify.clear_cache()
    verify.reset_stats()
    assert is_equivalent(pred, gold) is expected
    assert verify.stats()["symbolic"] == 0  # decided in the calling process
