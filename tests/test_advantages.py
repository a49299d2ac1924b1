"""Outcome advantages against numbers worked out by hand from the paper's formula.

A_i = (r_i - mean(r)) / (std(r) + 1e-4), mean and Bessel-corrected std over the group.
"""

import math

import pytest
import torch

from grpo_ext.advantages import outcome_advantages, zero_variance_mask

EPS = 1e-4


def t(values):
    return torch.tensor(values, dtype=torch.float32)


def test_binary_rewards_give_symmetric_advantages():
    # mean 0.5; squared deviations 4 * 0.25 = 1, / (4 - 1) -> std = sqrt(1/3) = 0.577350
    adv = outcome_advantages(t([1, 0, 0, 1]), group_size=4)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)
    torch.testing.assert_close(adv, t([a, -a, -a, a]))


def test_real_rewards_are_centred_and_scaled_by_group_std():
    # mean 0.5, deviations -0.3, 0, 0.3, variance 0.18 / 2 = 0.09, std 0.3
    adv = outcome_advantages(t([0.2, 0.5, 0.8]), group_size=3)
    torch.testing.assert_close(adv, t([-0.3 / 0.3001, 0.0, 0.3 / 0.3001]))


def test_tied_rewards_share_one_advantage():
    # two ties of 2: mean 1.5, deviations +-0.5 over 4 -> std sqrt(1/3)
    adv = outcome_advantages(t([2, 2, 1, 1]), group_size=4)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)
    torch.testing.assert_close(adv, t([a, a, -a, -a]))


def test_all_equal_group_gets_exactly_zero_not_nan():
    # 0.1 + 0.1 + 0.1 is not exactly 0.3 in floats: the group is still exactly zero
    adv = outcome_advantages(t([0.1, 0.1, 0.1, 1.0, 0.0, 0.0]), group_size=3)
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert not torch.isnan(adv).any()


def test_groups_are_normalised_independently():
    adv = outcome_advantages(t([1, 0, 10, 20]), group_size=2)
    # each group of 2: deviations +-d/2, std = d / sqrt(2)
    a1 = 0.5 / (1 / math.sqrt(2) + EPS)
    a2 = 5 / (10 / math.sqrt(2) + EPS)
    torch.testing.assert_close(adv, t([a1, -a1, -a2, a2]))


def test_nan_rows_get_zero_and_leave_the_group_statistics():
    # scorable 1, 0, 0: mean 1/3, deviations 2/3, -1/3, -1/3, variance (6/9) / 2 = 1/3
    adv = outcome_advantages(t([1, float("nan"), 0, 0]), group_size=4)
    s = math.sqrt(1 / 3) + EPS
    torch.testing.assert_close(adv, t([(2 / 3) / s, 0.0, (-1 / 3) / s, (-1 / 3) / s]))


def test_group_with_one_scorable_row_gets_zero():
    adv = outcome_advantages(t([float("nan"), 1.0, float("nan")]), group_size=3)
    assert adv.tolist() == [0.0, 0.0, 0.0]


def test_scale_batch_centres_on_group_mean_and_divides_by_batch_std():
    # group means 0.5 and 1; batch [1, 0, 1, 1]: mean 0.75, variance (3 * 0.0625 + 0.5625) / 3 = 0.25
    adv = outcome_advantages(t([1, 0, 1, 1]), group_size=2, scale="batch")
    a = 0.5 / (0.5 + EPS)
    torch.testing.assert_close(adv, t([a, -a, 0.0, 0.0]))


def test_scale_none_only_centres():
    adv = outcome_advantages(t([0.2, 0.5, 0.8, 3, 1]), group_size=5, scale="none")
    torch.testing.assert_close(adv, t([0.2 - 1.1, 0.5 - 1.1, 0.8 - 1.1, 3 - 1.1, 1 - 1.1]))


def test_unknown_scale_is_rejected():
    with pytest.raises(ValueError, match="scale must be one of"):
        outcome_advantages(t([1, 0]), group_size=2, scale="global")


def test_batch_not_multiple_of_group_is_rejected():
    with pytest.raises(ValueError, match=r"multiple of group_size \(4\)"):
        outcome_advantages(t([1, 0, 1]), group_size=4)


def test_zero_variance_mask_marks_whole_flat_groups():
    mask = zero_variance_mask(t([1, 1, 0, 1, 0, 0]), group_size=2)
    assert mask.tolist() == [True, True, False, False, True, True]
