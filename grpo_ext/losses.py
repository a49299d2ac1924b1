"""KL estimators and per-token loss aggregation, as pure tensor functions.

DeepSeekMath puts the KL to the reference policy in the loss (eq. 3), not in the reward, and
estimates it per token with Schulman's unbiased, always-positive k3 estimator (eq. 4). With
``log r = log pi_ref - log pi_theta`` for the sampled token:

- ``k1 = -log r``: unbiased, high variance, can be negative per token.
- ``k2 = (log r)^2 / 2``: biased, low variance, always >= 0.
- ``k3 = r - log r - 1`` (the paper's): unbiased, low variance, always >= 0.

What the optimizer sees is the gradient, not the value. The samples are fixed, so the gradient only
flows through ``log pi_theta`` of the sampled tokens; taking the expectation over ``y ~ pi_theta``:
``k1`` has expected gradient 0, ``k2`` gives the exact gradient of KL(pi_theta || pi_ref), and
``k3`` (eq. 3 as written) gives the gradient of the *forward* KL(pi_ref || pi_theta). DeepSeek-V3.2's
bias correction (TRL's ``use_bias_correction_kl``) multiplies each token's estimate by the importance
ratio ``pi_theta / pi_old`` (1 in value on-policy, but not in gradient): then ``k1`` and ``k3`` give
the exact reverse-KL gradient and ``k2`` the gradient of ``E[(log r)^2] / 2``. :data:`KL_GRADIENTS`
holds this table; ``tests/test_losses.py`` checks every row against autograd by enumeration.
"""

from __future__ import annotations

import torch

KL_ESTIMATORS = ("k1", "k2", "k3")

#: (estimator, bias correction) -> what the expected gradient of ``beta * estimate`` follows.
KL_GRADIENTS: dict[tuple[str, bool], str] = {
    ("k1", False): "zero: the KL term has no effect on training",
    ("k1", True): "exact gradient of KL(pi_theta || pi_ref)",
    ("k2", False): "exact gradient of KL(pi_theta || pi_ref)",
    ("k2", True): "gradient of E[(log pi_theta - log pi_ref)^2] / 2, not of a KL",
    ("k3", False): "gradient of the forward KL(pi_ref || pi_theta) (DeepSeekMath, eq. 3)",
    ("k3", True): "exact gradient of KL(pi_theta || pi_ref) (DeepSeek-V3.2)",
}


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


def importance_weights(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    mask: torch.Tensor,
    level: str = "token",
) -> torch.Tensor:
    """The importance ratio ``pi_theta / pi_old`` that TRL's bias-corrected KL multiplies by.

    Args:
        per_token_logps: ``(B, T)`` log pi_theta, with gradient.
        old_per_token_logps: ``(B, T)`` log pi_old, or None on-policy (then pi_old is pi_theta detached:
            the ratio is 1 in value and carries the gradient of log pi_theta).
        mask: ``(B, T)`` tokens that count (completion mask times tool mask), for the sequence level.
        level: ``"token"``: one ratio per token; ``"sequence"``: ``exp`` of the masked mean log ratio
            of each completion, ``(B, 1)``.
    """
    old = per_token_logps.detach() if old_per_token_logps is None else old_per_token_logps
    log_ratio = per_token_logps - old
    if level == "sequence":
        log_ratio = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    elif level != "token":
        raise ValueError(f"importance_sampling_level must be 'token' or 'sequence', got {level!r}")
    return torch.exp(log_ratio)


def kl_loss_term(
    per_token_logps: torch.Tensor,
    ref_per_token_logps: torch.Tensor,
    estimator: str = "k3",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The per-token KL term of the loss (before ``beta``): the estimate, times ``weights`` when given.

    ``weights`` is :func:`importance_weights` with the bias correction on, None with it off.
    Returns ``(B, T)``.
    """
    kl = kl_penalty(per_token_logps, ref_per_token_logps, estimator)
    return kl if weights is None else kl * weights


def zero_variance_kl_scale(
    loss_type: str, mode: str, *, real_rows: int, padded_rows: int, kept_tokens: float, all_tokens: float
) -> tuple[float, float]:
    """How to keep the KL's strength when zero-variance groups leave the batch.

    The loss normalisers of ``zero_variance_groups="skip"`` are "keep"'s (so the policy term is
    unchanged), and ``"resample"``'s pad an unfilled batch: either way the rows that remain cover only
    part of the normaliser, and a KL term summed over them would weigh ``beta`` times that share.
    Multiplying the KL term by ``scale`` gives the remaining rows the whole weight back.

    Args:
        loss_type: TRL's ``loss_type``.
        mode: ``"skip"`` or ``"resample"``.
        real_rows: informative rows this process trains on (its share of the generation batch).
        padded_rows: rows after padding (what the per-row normalisers divide by, over all micro-batches).
        kept_tokens: completion tokens of the kept rows, all processes.
        all_tokens: completion tokens of the first generation round, all processes (``num_items_in_batch``
            of "keep").

    Returns:
        ``(scale, covered)``: the factor for the KL term and the share of the normaliser the kept rows
        cover; the KL's effective weight is ``beta * scale * covered`` (``beta`` unless nothing is kept).
    """
    if loss_type in ("grpo", "sapo", "dr_grpo", "luspo"):  # per-row normalisers over the padded rows
        covered = real_rows / max(padded_rows, 1)
    elif loss_type == "bnpo":  # the mean over the micro-batch's own tokens
        covered = 1.0 if real_rows else 0.0
    elif loss_type in ("dapo", "cispo", "vespo"):  # num_items_in_batch: "keep"'s tokens for skip, kept for resample
        covered = kept_tokens / max(all_tokens, 1.0) if mode == "skip" else (1.0 if kept_tokens else 0.0)
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}")
    return (1.0 / covered if covered > 0 else 1.0), covered


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
