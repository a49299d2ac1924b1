"""Wrong completions that must score 0, and the right ones beside them that must still score 1 (cases
written here from a review of the verifier, each naming the rule it tests)."""

import pytest

from grpo_ext.rewards import accuracy_reward

WRONG = {
    "python_power_is_not_its_exponent": ("The answer is 2 ** 10.", "10"),
    "floor_division_is_refused": ("\\boxed{3 // 2}", "2"),
    "a_sign_word_changes_the_number": ("The answer is negative 5.", "5"),
    "a_scale_word_changes_the_number": ("\\boxed{5 \\text{ million}}", "5"),
    "a_bound_is_not_a_value": ("so it is at least 45", "45"),
    "a_negated_number_is_not_the_answer": ("I think it is 12, not 13.", "13"),
    "an_unbraced_denominator_is_part_of_a_fraction": ("so x = \\frac{1+\\sqrt{5}}2", "2"),
    "the_right_side_of_a_ratio": ("so the ratio is 3:4", "4"),
    "a_unicode_minus_keeps_the_sign": ("so x = \u22125.", "5"),
    "a_radical_sign_makes_an_expression": ("The area is 2\u221a3.", "2"),
    "a_word_operator_makes_an_expression": ("the total is 3 x 4", "4"),
    "odds_are_not_their_denominator": ("the probability is 1 in 6", "6"),
    "a_percent_of_a_base": ("thus 5% of 200", "200"),
    "comma_space_separates_items": ("The roots are \\boxed{2, 3}", "2.3"),
    "a_mixed_number_is_not_its_halved_sum": ("\\boxed{1 1/2}", "1"),
    "space_joined_digits_are_two_numbers": ("The answer is 2 3", "23"),
    "a_relation_symbol_is_not_a_value": ("\\boxed{\\ge 12}", "12"),
    "an_arrow_is_not_its_target": ("\\boxed{12 \\to 15}", "15"),
}

RIGHT = {
    "power_read_as_power": ("The answer is 2 ** 10.", "1024"),
    "a_total_of": ("She has a total of 18 dollars.", "18"),
    "a_noun_after_the_number": ("The answer is 12 loaves of bread.", "12"),
    "scale_word_as_powers_of_ten": ("The answer is 5 thousand.", "5000"),
    "unicode_minus_in_a_box": ("\\boxed{\u22125}", "-5"),
    "mixed_number": ("The answer is 1 1/2 cups", "1.5"),
    "thousands_with_spaces": ("\\boxed{12 345}", "12345"),
    "decimal_comma_without_space": ("\\boxed{1,5}", "1.5"),
    "a_named_variable": ("\\boxed{x = 5}", "5"),
    "a_function_value": ("\\boxed{f(x) = 3}", "3"),
    "a_computation_states_its_value_on_the_right": ("The answer is $3! \\times 5! = 720$.", "720"),
    "a_sum_asked_for": ("Therefore our answer is $a+b=-1$.", "-1"),
    "an_approximation_states_its_value_first": ("$\\frac{1}{3} \\approx 0.33$", "\\frac13"),
}


@pytest.mark.parametrize("completion, gold", list(WRONG.values()), ids=list(WRONG))
def test_a_wrong_completion_scores_zero(completion, gold):
    assert accuracy_reward([completion], answer=[gold]) == [0.0]


@pytest.mark.parametrize("completion, gold", list(RIGHT.values()), ids=list(RIGHT))
def test_the_right_completion_beside_it_scores_one(completion, gold):
    assert accuracy_reward([completion], answer=[gold]) == [1.0]
