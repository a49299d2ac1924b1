"""KL estimators and loss aggregation against hand-computed values."""

import math

import pytest
import torch

from grpo_ext.losses import aggregate_token_loss, kl_penalty

# pi_theta = 0.5, pi_ref = 0.25 for the sampled token: log r = log(0.5) = -ln 2
LOGP = torch.tensor([[math.log(0.5)]])
REF = torch.tensor([[math.log(0.25)]])
LN2 = math.log(2)


def test_k1_is_minus_log_ratio():
    assert kl_penalty(LOGP, REF, "k1").item() == pytest.approx(LN2)


def test_k2_is_half_squared_log_ratio():
    assert kl_penalty(LOGP, REF, "k2").item() == pytest.approx(0.5 * LN2**2)


def test_k3_is_ratio_minus_log_ratio_minus_one():
    # r = 0.5: 0.5 + ln 2 - 1 = 0.193147
    assert kl_penalty(LOGP, REF, "k3").item() == pytest.approx(0.5 + LN2 - 1)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_estimators_are_zero_when_policies_agree(estimator):
    logp = torch.log(torch.tensor([[0.1, 0.7, 0.2]]))
    assert torch.all(kl_penalty(logp, logp.clone(), estimator) == 0)


def test_unknown_estimator_is_rejected():
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        kl_penalty(LOGP, REF, "k4")


PER_TOKEN = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_grpo_aggregation_is_mean_of_per_output_means():
    # output 1: (1+2+3)/3 = 2, output 2: 4/1 = 4 -> 3
    assert aggregate_token_loss(PER_TOKEN, MASK, "grpo").item() == pytest.approx(3.0)


def test_bnpo_aggregation_is_mean_over_all_tokens():
    assert aggregate_token_loss(PER_TOKEN, MASK, "bnpo").item() == pytest.approx(10 / 4)


def test_dr_grpo_aggregation_divides_by_batch_times_max_length():
    assert aggregate_token_loss(PER_TOKEN, MASK, "dr_grpo", max_completion_length=5).item() == pytest.approx(1.0)


def test_dapo_aggregation_divides_by_given_token_count():
    assert aggregate_token_loss(PER_TOKEN, MASK, "dapo", num_items=8).item() == pytest.approx(10 / 8)


def test_accumulation_factor_divides_the_loss():
    assert aggregate_token_loss(PER_TOKEN, MASK, "grpo", accumulation_factor=2).item() == pytest.approx(1.5)
