"""The answer forms of other graders' data, written here by hand, one labelled case per rule.

Positives: the completion's final answer is the gold. Near misses: a completion that looks like the
gold (a number of it, its left side, a neighbouring value) and must score 0, each a false positive a
policy could learn to exploit. The values are our own; the forms follow issue 24's list.
"""

import pytest

from grpo_ext.rewards import accuracy_reward
from grpo_ext.verify import extract_answers_with_form, is_equivalent

POSITIVES = {
    "whole_answer_factored": ("(x-3)(x+3)", "x^2-9"),
    "whole_answer_fraction": ("\\dfrac{2}{7}", "2/7"),
    "whole_answer_in_dollars": ("$\\frac{5}{9}$", "\\frac{5}{9}"),
    "choice_in_phrasing": ("The answer is definitely C, it cannot be A or B.", "C"),
    "choice_against_labelled_gold": ("Looking at the options, the answer is (B).", "(B) Maria"),
    "choice_text_against_labelled_gold": ("The answer is Maria.", "(B) Maria"),
    "e_notation_against_times_ten": ("So the mass is 6.2e21 kg.\nThe answer is 6.2e21", "6.2 \\times 10^{21}"),
    "times_ten_against_e_notation": ("\\boxed{6.2 \\times 10^{21}}", "6.2e21"),
    "power_of_ten_against_decimal": ("The answer is $10^{-5}$", "0.00001"),
    "gold_stated_as_a_phrase": ("\\boxed{2500}", "answer is 2500"),
    "gold_stated_as_a_sentence_with_unit": ("\\boxed{2500}", "The answer is $2500$ dollars."),
    "gold_box_inside_a_sentence": ("\\boxed{\\frac{1}{3}}", "\\boxed{\\frac{1}{3}} is the probability that it rains."),
    "gold_reference_solution": ("\\boxed{7}", "First we count the cases. There are 7 of them, so the answer is $\\boxed{7}$."),
    "trailing_dot_decimal_gold": ("\\boxed{-0.4}", "-2./5"),
    "degree_list_gold": ("The answer is 45, 30", "30^{\\circ},45^{\\circ}"),
    "gold_matrix_over_lines": ("\\boxed{\\begin{pmatrix} 2 & 0 \\\\ 1 & 5 \\end{pmatrix}}",
                               "\\begin{pmatrix}\n2 & 0 \\\\\n1 & 5\n\\end{pmatrix}"),
    "long_decimal_against_fraction": ("\\boxed{0.142857142857}", "\\frac{1}{7}"),
    "seven_places_rounded": ("\\boxed{0.1428571}", "\\frac{1}{7}"),
    "french_answer": ("Donc la réponse est 14.", "14"),
    "german_answer": ("Die Antwort ist 14.", "14"),
    "spanish_answer": ("Por lo tanto, la respuesta es 14.", "14"),
    "last_statement_with_a_parenthesis": (
        "So this answer is not right. Let me redo it: 3*12 = 36, plus 1.\nTherefore, the answer (arabic numerals) is 37.", "37"),
    "answer_with_a_noun": ("The answer is 12 loaves of bread.", "12"),
    "answer_as_a_sentence": ("Therefore, the answer is: There are 33 sheep in total.", "33"),
    "answer_with_an_unlisted_unit": ("So he needs 9 tablespoons.\nThe answer is 9 tablespoons.", "9"),
    "boxes_joined_by_text_and": ("$\\boxed{(1, 4)} \\quad \\text{and} \\quad \\boxed{(4, 1)}$", "(4, 1), (1, 4)"),
    "and_inside_a_box": ("\\boxed{3 \\text{ and } 7}", "3, 7"),
    "named_boxes": ("$\\boxed{a = 3} \\text{ and } \\boxed{b = 8}$", "a = 3, b = 8"),
    "or_between_lists": ("$12,9$ or $5$", "5, 9, 12"),
    "assignments_against_tuples": ("$m=2,n=3;m=4,n=3$", "(2,3),(4,3)"),
    "tuples_against_assignments": ("$(2,3),(4,3)$", "m=2,n=3;m=4,n=3"),
    "chained_equalities": ("$y = 2+4 = 6$", "y = 3 + 3 = 6"),
    "thousands_with_negative_space": ("\\boxed{22,\\! 222,\\! 000}", "22222000"),
    "thousands_with_braced_comma": ("\\boxed{5{,}280}", "5280"),
    "textnormal_unit": ("\\boxed{80\\textnormal{ km}}", "$80$ km"),
    "percent_word": ("\\boxed{35 percent}", "35\\%"),
    "percentage_word": ("$\\boxed{35 percentage}$", "$35\\%$"),
    "ratio_with_a_named_left_side": ("$\\boxed{5:8}$", "$S_{ABC}:S_{DEF}=5:8$"),
    "in_before_a_union": ("Thus the answer is $x \\in \\boxed{(1,5) \\cup (5,9)}$", "(1, 5) \\cup (5, 9)"),
    "in_before_an_interval": ("$x \\in [-3, 4]$", "$[-3, 4]$"),
    "bound_against_interval": ("$-12 < b < 3$", "(-12, 3)"),
    "interval_against_bound": ("$(-12, 3)$", "$-12 < b < 3$"),
    "mixed_number": ("$\\boxed{2\\frac{1}{4}}$", "\\frac{9}{4}"),
    "percent_gold_as_its_number": ("\\boxed{4}", "4\\%"),
    "percent_gold_as_a_fraction": ("\\boxed{0.04}", "4\\%"),
}

NEAR_MISSES = {
    "denominator_of_a_fraction": ("\\frac{1+\\sqrt{5}}{2}", "2"),
    "denominator_in_a_sentence": ("so x equals \\frac{3+\\sqrt{7}}{4}", "4"),
    "exponent_of_a_power": ("Hence the count is 2^{10}", "10"),
    "base_of_a_power": ("Hence the count is 2^{10}", "2"),
    "factor_of_a_product": ("so it equals 3 \\times 4", "4"),
    "term_of_a_sum": ("and we get 5 = y + 2", "2"),
    "coefficient_of_a_variable": ("so we get 2x", "2"),
    "argument_of_a_factorial": ("the number of orderings is 10!", "10"),
    "unbraced_negative_exponent": ("The answer is 0.222*10^-750000000", "0.222*10^-120"),
    "braced_negative_exponent": ("The answer is 0.222*10^{-750000000}", "0.222*10^{-120}"),
    "e_notation_exponent": ("The answer is 3.1e-900000000", "3.1e-90"),
    "e_notation_off_by_a_power": ("The answer is 6.2e21", "6.2 \\times 10^{22}"),
    "another_function_on_the_left": ("\\boxed{\\tan(x)=\\frac{3}{5}}", "\\sin(x)=\\frac{3}{5}"),
    "another_variable_on_the_left": ("\\boxed{x = 7}", "y = 7"),
    "inequality_against_its_bound": ("\\boxed{x > 5}", "5"),
    "right_side_of_a_gold_equation": ("\\boxed{5}", "x + y = 5"),
    "two_places_against_a_third": ("\\boxed{0.33}", "\\frac{1}{3}"),
    "four_places_against_a_seventh": ("\\boxed{0.1428}", "\\frac{1}{7}"),
    "six_places_one_unit_high": ("\\boxed{0.142858}", "\\frac{1}{7}"),
    "six_places_one_unit_low": ("\\boxed{0.142856}", "\\frac{1}{7}"),
    "one_tuple_wrong_in_a_set": ("$\\boxed{(1, 4)} \\quad \\text{and} \\quad \\boxed{(4, 2)}$", "(4, 1), (1, 4)"),
    "named_values_swapped": ("$\\boxed{a = 8} \\text{ and } \\boxed{b = 3}$", "a = 3, b = 8"),
    "one_assignment_wrong": ("$m=2,n=3;m=4,n=5$", "(2,3),(4,3)"),
    "negated_choice": ("The answer is definitely not C, it is A.", "C"),
    "other_choice_letter": ("\\boxed{D}", "(B) Maria"),
    "ratio_off_by_one": ("\\boxed{5:9}", "$S_{ABC}:S_{DEF}=5:8$"),
    "corrected_box_is_the_answer": ("first \\boxed{5}, corrected: \\boxed{7}", "5"),
    "sentence_with_two_numbers": ("The answer is 12 loaves of bread and 3 cakes.", "3"),
    "expression_containing_the_gold": ("\\boxed{x+5}", "\\boxed{5}"),
    "half_open_against_open_bound": ("$\\boxed{(-12, 3]}$", "$-12 < b < 3$"),
    "percent_gold_times_ten": ("\\boxed{40}", "4\\%"),
    "factorials_beyond_float_precision": ("\\boxed{\\frac{1}{2004!}}", "\\frac{1}{2006!}"),
}


@pytest.mark.parametrize("completion, gold", POSITIVES.values(), ids=POSITIVES.keys())
def test_the_right_answer_in_this_form_scores_one(completion, gold):
    assert accuracy_reward([completion], answer=[gold]) == [1.0]


class TestNearMisses:
    @pytest.mark.parametrize("completion, gold", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
    def test_scores_zero(self, completion, gold):
        assert accuracy_reward([completion], answer=[gold]) == [0.0]


def test_a_whole_completion_that_is_an_answer_is_read_whole():
    assert extract_answers_with_form(["(x-3)(x+3)"]) == [("(x-3)(x+3)", "whole")]


def test_the_last_number_is_not_taken_from_a_fraction():
    assert extract_answers_with_form(["we get x = \\frac{1+\\sqrt{5}}{2} in the end"])[0][0] != "2"


def test_the_last_answer_statement_wins_over_an_earlier_box():
    completion = "First \\boxed{255}. Adding the rest, Final Answer: The final answer is $10,455$. I hope it is correct."
    assert extract_answers_with_form([completion]) == [("$10,455$", "answer_is")]


def test_a_statement_that_states_nothing_is_passed_over():
    completion = "So the answer is 45. Note that this answer is reasonable."
    assert extract_answers_with_form([completion]) == [("45", "answer_is")]


def test_solution_column_is_read_like_a_completion():
    solution = "She sold 48/2 = 24 clips in May, so $48+24=\\boxed{72}$ clips in all."
    assert accuracy_reward(["\\boxed{72}", "\\boxed{71}"], solution=[solution] * 2) == [1.0, 0.0]


def test_answer_column_is_preferred_over_solution():
    assert accuracy_reward(["\\boxed{3}"], answer=["3"], solution=["\\boxed{4}"]) == [1.0]


@pytest.mark.parametrize("pred, gold, expected", [
    ("1,22", "1.22", True),  # a decimal comma against a number
    ("1,2", "1, 2", True),  # a list against a list
    ("1,2", "1.3", False),
])
def test_a_decimal_comma_is_read_by_the_other_side(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


def test_a_check_after_the_box_is_not_an_answer_statement():
    completion = "So $x \\equiv \\boxed{44} \\pmod{83}$.\n\nWe may check our answer: $17 \\cdot 44 = 748 \\equiv 1$."
    assert accuracy_reward([completion], answer=["44"]) == [1.0]


def test_a_trainer_with_the_accuracy_reward_starts_the_verifier_while_it_loads(monkeypatch):
    from grpo_ext import trainer, verify
    from grpo_ext.rewards import make_accuracy_reward

    started = []
    monkeypatch.setattr(verify, "warm_up", lambda wait=False: started.append(wait))
    trainer._start_verifier([lambda completions, **kw: [0.0] * len(completions)], None)
    assert started == []
    trainer._start_verifier([make_accuracy_reward(strict=True)], None)
    assert started == [False]
