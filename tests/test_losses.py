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


# ----- expected gradients of the KL term, by enumeration over a toy categorical policy -------------
from grpo_ext.losses import KL_GRADIENTS, importance_weights, kl_loss_term, zero_variance_kl_scale  # noqa: E402

THETA = torch.tensor([0.3, -0.2, 0.9, 0.0])
REF_PROBS = torch.tensor([0.1, 0.4, 0.2, 0.3])


def expected_kl_term_gradient(estimator, correction):
    """E_{y ~ pi_theta}[grad of the loss's KL term at y], summing over every outcome y (no sampling noise)."""
    theta = THETA.clone().requires_grad_(True)
    logp = torch.log_softmax(theta, 0)
    weights = importance_weights(logp, None, torch.ones_like(logp)) if correction else None
    per_outcome = kl_loss_term(logp, REF_PROBS.log(), estimator, weights)
    (logp.exp().detach() * per_outcome).sum().backward()  # the samples' probabilities carry no gradient
    return theta.grad


def exact_gradient(divergence):
    theta = THETA.clone().requires_grad_(True)
    p, q = torch.softmax(theta, 0), REF_PROBS
    value = {"reverse": (p * (p.log() - q.log())).sum(), "forward": (q * (q.log() - p.log())).sum(),
             "half_square": (p * 0.5 * (p.log() - q.log()) ** 2).sum()}[divergence]
    value.backward()
    return theta.grad


@pytest.mark.parametrize("estimator, correction, divergence", [
    ("k1", True, "reverse"), ("k2", False, "reverse"), ("k3", True, "reverse"),
    ("k3", False, "forward"), ("k2", True, "half_square"),
])
def test_kl_term_expected_gradient_matches_the_documented_divergence(estimator, correction, divergence):
    documented = {"reverse": "exact gradient of KL(pi_theta || pi_ref)", "forward": "KL(pi_ref || pi_theta)",
                  "half_square": "(log pi_theta - log pi_ref)^2"}[divergence]
    assert documented in KL_GRADIENTS[(estimator, correction)]
    torch.testing.assert_close(expected_kl_term_gradient(estimator, correction), exact_gradient(divergence))


def test_k1_without_correction_has_zero_expected_gradient():
    assert KL_GRADIENTS[("k1", False)].startswith("zero")
    torch.testing.assert_close(expected_kl_term_gradient("k1", False), torch.zeros(4), atol=1e-7, rtol=0)


def test_importance_weights_are_one_on_policy_in_value():
    logp = torch.log(torch.tensor([[0.2, 0.5]]))
    assert importance_weights(logp, None, torch.ones(1, 2)).tolist() == [[1.0, 1.0]]


def test_sequence_importance_weight_averages_only_the_masked_tokens():
    # log ratios 0.2 and 0.4 on counted tokens, 5.0 on a tool token that the mask removes: exp(0.3)
    logp, old = torch.tensor([[0.2, 0.4, 5.0]]), torch.zeros(1, 3)
    weights = importance_weights(logp, old, torch.tensor([[1.0, 1.0, 0.0]]), level="sequence")
    assert weights.item() == pytest.approx(math.exp(0.3))


# ----- KL strength when zero-variance groups leave the batch -----------------------------------------
def test_kl_scale_gives_kept_rows_the_weight_of_a_whole_batch_for_per_row_losses():
    # 4 informative rows of a batch of 8 (padded back to 8): the KL over them would weigh 4/8
    scale, covered = zero_variance_kl_scale("grpo", "skip", real_rows=4, padded_rows=8, kept_tokens=20, all_tokens=40)
    assert (scale, covered) == (2.0, 0.5)
    assert 0.04 * scale * covered == pytest.approx(0.04)


def test_kl_scale_for_token_normalised_losses_under_skip():
    # dapo divides by "keep"'s 50 tokens; the kept rows hold 30 of them
    scale, covered = zero_variance_kl_scale("dapo", "skip", real_rows=3, padded_rows=4, kept_tokens=30, all_tokens=50)
    assert scale == pytest.approx(50 / 30) and covered == pytest.approx(0.6)


def test_kl_scale_is_one_where_the_normaliser_already_counts_only_kept_rows():
    # resample's num_items_in_batch is the kept tokens; bnpo divides by the micro-batch's own tokens
    assert zero_variance_kl_scale("dapo", "resample", real_rows=3, padded_rows=4, kept_tokens=30, all_tokens=50)[0] == 1.0
    assert zero_variance_kl_scale("bnpo", "skip", real_rows=3, padded_rows=4, kept_tokens=30, all_tokens=50)[0] == 1.0
