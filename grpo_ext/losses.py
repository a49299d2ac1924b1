"""KL estimators and per-token loss aggregation, as pure tensor functions.

DeepSeekMath puts the KL to the reference policy in the loss (eq. 3), not in the reward, and
estimates it per token with Schulman's unbiased, always-positive k3 estimator (eq. 4). With
``log r = log pi_ref - log pi_theta`` for the sampled token:

- ``k1 = -log r``: unbiased, high variance, can be negative per token.
- ``k2 = (log r)^2 / 2``: biased, low variance, always >= 0.
- ``k3 = r - log r - 1`` (the paper's): unbiased, low variance, always >= 0.
"""

from __future__ import annotations

import torch

KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_penalty(per_token_logps: torch.Tensor, ref_per_token_logps: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from log-probs of the sampled tokens.

    Args:
        per_token_logps: ``(B, T)`` log pi_theta of each completion token.
        ref_per_token_logps: ``(B, T)`` log pi_ref of the same tokens.
        estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (module docstring).

    Returns:
        ``(B, T)`` per-token KL estimates.
    """
    log_ratio = ref_per_token_logps - per_token_logps
    if estimator == "k3":
        return torch.exp(log_ratio) - log_ratio - 1
    if estimator == "k2":
        return 0.5 * log_ratio**2
    if estimator == "k1":
        return -log_ratio
    raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


def aggregate_token_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    *,
    max_completion_length: int | None = None,
    num_items: torch.Tensor | float | None = None,
    accumulation_factor: float = 1.0,
) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss to a scalar the way ``trl.GRPOTrainer`` does per ``loss_type``.

    - ``grpo`` / ``sapo`` (the paper's eq. 3): mean over each output's tokens, then over outputs.
    - ``bnpo``: mean over all tokens of the batch.
    - ``dr_grpo``: sum over tokens divided by ``B * max_completion_length``.
    - ``dapo`` / ``cispo`` / ``vespo``: sum over tokens divided by ``num_items`` (tokens of the
      accumulation window, already rescaled by the caller).
    - ``luspo``: sum over each output's tokens, then mean over outputs.

    The result is divided by ``accumulation_factor`` for every type except the ``num_items`` ones,
    whose normaliser already accounts for it.
    """
    masked = per_token_loss * mask
    if loss_type in ("grpo", "sapo"):
        loss = (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "bnpo":
        loss = masked.sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        loss = masked.sum() / (per_token_loss.size(0) * max_completion_length)
    elif loss_type in ("dapo", "cispo", "vespo"):
        if num_items is None:
            raise ValueError(f"loss_type {loss_type!r} needs num_items (the token count it normalises by)")
        return masked.sum() / num_items
    elif loss_type == "luspo":
        loss = masked.sum(-1).mean()
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}")
    return loss / accumulation_factor
