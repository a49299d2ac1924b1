"""process_advantages against numbers worked out by hand from the paper's formula (section 4.1.3).

Normalise every step reward with mean and std (Bessel, + 1e-4) over ALL step rewards of the group;
token t's advantage is the sum of the normalised rewards of the steps ending at or after t.
"""

import math

import pytest
import torch

from grpo_ext.advantages import process_advantages

S = math.sqrt(1 / 3) + 1e-4  # std of the step rewards [1, 0, 1]: mean 2/3, variance (1/9 + 4/9 + 1/9) / 2


def test_advantage_sums_the_current_and_later_steps():
    # output 1: steps rewarded 1 (ends at token 1) and 0 (ends at token 3); output 2: one step, 1 (ends at token 2)
    adv = process_advantages([[1.0, 0.0], [1.0]], [[1, 3], [2]], group_size=2, completion_length=5)
    up, down = (1 / 3) / S, (-2 / 3) / S
    torch.testing.assert_close(adv[0], torch.tensor([up + down, up + down, down, down, 0.0]))
    torch.testing.assert_close(adv[1], torch.tensor([up, up, up, 0.0, 0.0]))


def test_output_with_no_steps_gets_zero():
    adv = process_advantages([[1.0, 0.0], []], [[0, 1], []], group_size=2, completion_length=3)
    assert adv[1].tolist() == [0.0, 0.0, 0.0]
    # the group's statistics come from the two steps of output 1: mean 0.5, std sqrt(0.5)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(adv[0], torch.tensor([a - a, -a, 0.0]))


def test_group_with_equal_step_rewards_gets_zero():
    adv = process_advantages([[0.7, 0.7], [0.7]], [[0, 2], [1]], group_size=2, completion_length=4)
    assert torch.count_nonzero(adv) == 0


def test_groups_in_one_batch_are_normalised_separately():
    rewards = [[1.0, 0.0], [1.0], [5.0], [3.0]]
    ends = [[1, 3], [2], [0], [0]]
    adv = process_advantages(rewards, ends, group_size=2, completion_length=5)
    b = 1 / (math.sqrt(2) + 1e-4)  # group 2: [5, 3], mean 4, std sqrt(2)
    torch.testing.assert_close(adv[2], torch.tensor([b, 0.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(adv[3], torch.tensor([-b, 0.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(adv[1], torch.tensor([(1 / 3) / S] * 3 + [0.0, 0.0]))


def test_nan_step_is_left_out_and_contributes_zero():
    adv = process_advantages([[1.0, float("nan")], [0.0]], [[0, 1], [0]], group_size=2, completion_length=2)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([[a, 0.0], [-a, 0.0]]))


def test_step_end_past_the_completion_is_rejected():
    with pytest.raises(ValueError, match="strictly ascending token indices in \\[0, 3\\)"):
        process_advantages([[1.0]], [[3]], group_size=1, completion_length=3)


def test_mismatched_steps_are_rejected():
    with pytest.raises(ValueError, match="2 step rewards but 1 step ends"):
        process_advantages([[1.0, 0.0]], [[1]], group_size=1, completion_length=3)
