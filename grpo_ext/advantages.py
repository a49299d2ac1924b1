"""Group-relative advantages of DeepSeekMath's GRPO (Shao et al., 2024, sections 4.1.2 and 4.1.3).

Pure tensor functions, no trainer state. A batch holds ``n_groups`` groups of ``group_size``
completions of the same prompt, stored contiguously: rows ``[g * G, (g + 1) * G)`` are group g.
"""

from __future__ import annotations

import torch

#: Added to the standard deviation before dividing, as TRL does, so a tiny spread stays finite.
STD_EPS = 1e-4

SCALES = ("group", "batch", "none")


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be a 1-D tensor of shape (B,), got shape {tuple(rewards.shape)}")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"the number of rewards ({rewards.numel()}) must be a multiple of group_size ({group_size}): "
            "every prompt needs all of its completions in the same batch"
        )
    return rewards.view(-1, group_size)


def _masked_mean_std(values: torch.Tensor, valid: torch.Tensor, dim: int | None):
    """Mean and Bessel-corrected std of ``values`` over ``valid`` entries (NaN-free arithmetic)."""
    zeros = torch.zeros_like(values)
    if dim is None:
        values, valid, zeros, dim = values.reshape(-1), valid.reshape(-1), zeros.reshape(-1), 0
    n = valid.sum(dim=dim, keepdim=True)
    mean = torch.where(valid, values, zeros).sum(dim=dim, keepdim=True) / n.clamp(min=1)
    dev = torch.where(valid, values - mean, zeros)
    var = (dev**2).sum(dim=dim, keepdim=True) / (n - 1).clamp(min=1)
    return mean, var.sqrt(), n


def zero_variance_mask(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Rows whose group teaches nothing: all scorable rewards equal, or fewer than 2 of them.

    Args:
        rewards: ``(B,)`` float rewards, NaN where a completion could not be scored.
        group_size: completions per prompt (G).

    Returns:
        ``(B,)`` bool, True for every row of such a group.
    """
    grouped = _grouped(rewards, group_size)
    valid = ~torch.isnan(grouped)
    hi = torch.where(valid, grouped, torch.full_like(grouped, -torch.inf)).amax(dim=1)
    lo = torch.where(valid, grouped, torch.full_like(grouped, torch.inf)).amin(dim=1)
    flat = (valid.sum(dim=1) < 2) | (hi == lo)
    return flat.repeat_interleave(group_size)


def flat_step_groups(step_rewards: list[list[float]], group_size: int) -> torch.Tensor:
    """Rows of groups whose step rewards are all equal (or absent): their process advantage is 0.

    Args:
        step_rewards: the step rewards of each completion (as for :func:`process_advantages`).
        group_size: completions per prompt (G); groups are contiguous.

    Returns:
        ``(B,)`` bool, True for every row of such a group.
    """
    flags = []
    for g in range(0, len(step_rewards), group_size):
        values = {r for row in step_rewards[g : g + group_size] for r in row}
        flags += [len(values) <= 1] * group_size
    return torch.tensor(flags, dtype=torch.bool)


def outcome_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group") -> torch.Tensor:
    r"""Outcome-supervision advantages, the same for every token of a completion.

    The paper's :math:`\hat A_{i,t} = \tilde r_i = (r_i - \mathrm{mean}(r)) / \mathrm{std}(r)` over the
    group of one prompt, with ``std`` Bessel-corrected and ``1e-4`` added to it (as TRL).

    Args:
        rewards: ``(B,)`` float, ``B = n_groups * group_size``, groups contiguous. A NaN marks a
            completion that could not be scored: it is left out of its group's mean and std and
            gets advantage 0.
        group_size: completions per prompt (G).
        scale: ``"group"`` divides by the group's std (the paper), ``"batch"`` by the std of the
            whole batch (still centred on the group mean), ``"none"`` only centres
            (Dr. GRPO). Same meaning as ``trl.GRPOConfig.scale_rewards``.

    Returns:
        ``(B,)`` advantages. A group whose scorable rewards are all equal (or has fewer than two)
        gets exactly 0, never NaN.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    grouped = _grouped(rewards, group_size).float()
    valid = ~torch.isnan(grouped)
    mean, group_std, _ = _masked_mean_std(grouped, valid, dim=1)
    centred = torch.where(valid, grouped - mean, torch.zeros_like(grouped))
    if scale == "group":
        adv = centred / (group_std + STD_EPS)
    elif scale == "batch":
        _, batch_std, _ = _masked_mean_std(grouped, valid, dim=None)
        adv = centred / (batch_std + STD_EPS)
    else:
        adv = centred
    adv = adv.reshape(-1)
    return torch.where(zero_variance_mask(rewards, group_size), torch.zeros_like(adv), adv)


def process_advantages(
    step_rewards: list[list[float]],
    step_ends: list[list[int]],
    group_size: int,
    completion_length: int,
) -> torch.Tensor:
    r"""Process-supervision advantages (paper, section 4.1.3), one per token.

    Every step reward of a group is normalised with the mean and std (Bessel-corrected, ``1e-4``
    added) of ALL step rewards of that group, :math:`\tilde r = (r - \mathrm{mean}(R)) / \mathrm{std}(R)`;
    token t of output i gets :math:`\hat A_{i,t} = \sum_{index(j) \ge t} \tilde r_i^{index(j)}`, the sum
    over its own step and all later ones.

    Args:
        step_rewards: for each of the B outputs (groups of ``group_size`` contiguous), its step
            rewards in order; NaN marks a step that could not be scored (left out of the statistics,
            contributes 0).
        step_ends: for each output, the 0-based index within the completion of the last token of
            each step, strictly ascending, below ``completion_length``.
        group_size: outputs per prompt (G).
        completion_length: T, the padded completion length.

    Returns:
        ``(B, T)`` advantages: 0 after an output's last step end, 0 for an output with no steps,
        and 0 everywhere in a group whose scorable step rewards are all equal (or fewer than two).
    """
    n = len(step_rewards)
    if len(step_ends) != n:
        raise ValueError(f"got step rewards for {n} outputs but step ends for {len(step_ends)}")
    if group_size < 1 or n % group_size != 0:
        raise ValueError(f"the number of outputs ({n}) must be a multiple of group_size ({group_size})")
    for i, (rewards, ends) in enumerate(zip(step_rewards, step_ends)):
        if len(rewards) != len(ends):
            raise ValueError(f"output {i} has {len(rewards)} step rewards but {len(ends)} step ends")
        if any(b <= a for a, b in zip(ends, ends[1:])) or any(e < 0 or e >= completion_length for e in ends):
            raise ValueError(
                f"output {i}: step ends {ends} must be strictly ascending token indices in [0, {completion_length})"
            )
    out = torch.zeros(n, completion_length)
    for g in range(0, n, group_size):
        flat = torch.tensor([r for rewards in step_rewards[g : g + group_size] for r in rewards], dtype=torch.float32)
        valid = ~torch.isnan(flat)
        if valid.sum() < 2 or flat[valid].max() == flat[valid].min():
            continue
        mean, std, _ = _masked_mean_std(flat, valid, dim=None)
        for i in range(g, g + group_size):
            if not step_rewards[i]:
                continue
            r = torch.tensor(step_rewards[i], dtype=torch.float32)
            normalised = torch.where(torch.isnan(r), torch.zeros_like(r), (r - mean) / (std + STD_EPS))
            at_ends = torch.zeros(completion_length)
            at_ends[torch.tensor(step_ends[i])] = normalised
            out[i] = at_ends.flip(0).cumsum(0).flip(0)  # sum over the steps ending at or after each token
    return out
