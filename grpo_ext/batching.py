"""Row operations on TRL's generation batches: the dicts ``_generate_and_score_completions`` returns.

A batch maps names to tensors whose first dimension is the row (one completion), plus 0-d tensors
that hold batch-wide values (``num_items_in_batch``). Prompt tensors are left-padded and every other
2-D tensor right-padded, as TRL builds them; :func:`concat_rows` keeps that when it joins batches
of different widths. Used by ``zero_variance_groups="skip" | "resample"``.
"""

from __future__ import annotations

from collections import Counter

import torch

#: Keys that a text-only generation batch may hold; anything else (images) is refused by name.
TEXT_KEYS = frozenset({
    "prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "num_items_in_batch",
    "old_per_token_logps", "importance_sampling_ratio", "sampling_per_token_logps", "ref_per_token_logps",
    "tool_mask", "zero_variance_real",
})
#: Keys zeroed in a padding row, so it carries no loss and no advantage.
_MASKS = ("completion_mask", "tool_mask", "advantages", "zero_variance_real")
#: Fill of padding columns per key: ids get the pad token; a ratio gets 1 (no correction, and a log of 0
#: where a loss multiplies ratios across the row, as VESPO's sequence weight does); the rest 0.
_RATIO_KEYS = ("importance_sampling_ratio",)


def check_text_only(batch: dict) -> None:
    """Raise when the batch holds something the row operations cannot carry (images, tool images)."""
    unknown = sorted(set(batch) - TEXT_KEYS)
    if unknown:
        raise ValueError(
            f"zero_variance_groups 'skip' and 'resample' work on text-only batches; this batch also holds {unknown}. "
            "Use zero_variance_groups='keep' for multimodal training."
        )


def pick_informative_groups(flat_rounds: list[torch.Tensor], group_size: int, local_rows: int) -> list[torch.Tensor]:
    """Which groups of each generation round to train on, in order of generation.

    A group is taken when it is informative (not flat), fewer than one batch of groups are taken so
    far, and every process that holds rows of it still has room: no process ends with more rows than
    its own batch (``local_rows``), so a micro-batch never outgrows ``per_device_train_batch_size``.

    Args:
        flat_rounds: per round, ``(B_total,)`` bool over the rows of all processes, True for the rows
            of zero-variance groups (:func:`grpo_ext.advantages.zero_variance_mask`); process p holds
            rows ``[p * local_rows, (p + 1) * local_rows)`` of every round.
        group_size: completions per prompt (G); groups are contiguous.
        local_rows: rows per process in one round.

    Returns:
        per round, ``(n_groups,)`` bool: the groups to keep.
    """
    total = flat_rounds[0].numel()
    budget = total // group_size
    room = {p: local_rows for p in range(-(-total // local_rows))}
    picks = []
    for flat in flat_rounds:
        take = torch.zeros(total // group_size, dtype=torch.bool)
        informative = (~flat[::group_size]).cpu().tolist()
        for g, ok in enumerate(informative):
            if not ok or budget == 0:
                continue
            need = Counter(r // local_rows for r in range(g * group_size, (g + 1) * group_size))  # rows per process
            if all(room[p] >= n for p, n in need.items()):
                take[g] = True
                budget -= 1
                for p, n in need.items():
                    room[p] -= n
        picks.append(take)
    return picks


def num_rows(batch: dict) -> int:
    return next(v.size(0) for v in batch.values() if isinstance(v, torch.Tensor) and v.dim() > 0)


def select_rows(batch: dict, index: torch.Tensor | list[int]) -> dict:
    """The rows ``index`` of every row tensor; 0-d tensors and None are kept as they are."""
    index = torch.as_tensor(index, dtype=torch.long)
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            out[key] = value[index.to(value.device)]
        else:
            out[key] = value
    return out


def _pad_width(value: torch.Tensor, width: int, left: bool, fill: float) -> torch.Tensor:
    missing = width - value.size(1)
    if missing <= 0:
        return value
    pad = value.new_full((value.size(0), missing, *value.shape[2:]), fill)
    return torch.cat([pad, value] if left else [value, pad], dim=1)


def concat_rows(batches: list[dict], pad_token_id: int) -> dict:
    """Join batches row-wise, padding each 2-D tensor to the widest (prompts on the left, as TRL pads them).

    0-d tensors are taken from the first batch; every batch must have the same keys.
    """
    if not batches:
        raise ValueError("concat_rows needs at least one batch")
    keys = list(batches[0])
    for b in batches[1:]:
        if list(b) != keys:
            raise ValueError(f"batches with different keys cannot be joined: {keys} vs {list(b)}")
    out = {}
    for key in keys:
        values = [b[key] for b in batches]
        first = values[0]
        if not isinstance(first, torch.Tensor) or first.dim() == 0:
            out[key] = first
        elif first.dim() == 1:
            out[key] = torch.cat(values)
        else:
            width = max(v.size(1) for v in values)
            fill = pad_token_id if key.endswith("_ids") else 1 if key in _RATIO_KEYS else 0
            out[key] = torch.cat([_pad_width(v, width, key.startswith("prompt"), fill) for v in values])
    return out


def pad_rows(batch: dict, target: int, template: dict, pad_token_id: int) -> dict:
    """Append copies of ``template``'s first row, with loss mask and advantage zeroed, up to ``target`` rows.

    A padding row goes through the forward and backward passes like any other (so every process runs
    the same calls, which DDP and DeepSpeed need) but adds nothing to the loss.
    """
    missing = target - num_rows(batch)
    if missing < 0:
        raise ValueError(f"the batch already has {num_rows(batch)} rows, more than the target {target}")
    if missing == 0:
        return batch
    row = select_rows(template, [0] * missing)
    for key in _MASKS:
        if isinstance(row.get(key), torch.Tensor):
            row[key] = torch.zeros_like(row[key])
    return concat_rows([batch, row], pad_token_id)


def trim_padding(batch: dict) -> dict:
    """Drop the trailing completion columns that are padding in every row.

    After rows are removed, the longest completion left may be shorter than the width the batch was
    padded to; the forward passes then skip those columns. Under causal attention the log-probs of
    the remaining tokens are unchanged. (Leading prompt padding is kept: without explicit position
    ids, removing it would shift the positions of models with absolute position embeddings.)
    """
    out = dict(batch)
    columns = batch["completion_mask"].bool().any(dim=0).nonzero()
    stop = int(columns[-1]) + 1 if len(columns) else 1
    width = batch["completion_ids"].size(1)
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() >= 2 and not key.startswith("prompt") and value.size(1) == width:
            out[key] = value[:, :stop]
    return out
