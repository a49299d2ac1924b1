"""GRPOTrainer: trl.GRPOTrainer with DeepSeekMath's advantages and KL estimators.

Plumbing only: the formulas live in :mod:`grpo_ext.advantages` and :mod:`grpo_ext.losses`. Every
override is the smallest hook of trl 1.16's trainer that gives access to what we change, and calls
the parent for everything else (generation, vLLM, PEFT, DeepSpeed, logging, checkpointing).
"""

from __future__ import annotations

from typing import Any

import torch
import trl

from .advantages import outcome_advantages, process_advantages
from .config import GRPOConfig
from .losses import aggregate_token_loss, kl_penalty


class GRPOTrainer(trl.GRPOTrainer):
    r"""Group Relative Policy Optimization as in DeepSeekMath (Shao et al., 2024).

    For each prompt, sample G completions, score them, and give every token of completion i the
    advantage :math:`A_i = (r_i - \mathrm{mean}(r)) / \mathrm{std}(r)` over its group (no value
    model). Maximise the clipped surrogate :math:`\min(\rho A, \mathrm{clip}(\rho, 1-\epsilon,
    1+\epsilon) A)` with :math:`\rho = \pi_\theta / \pi_{old}`, minus ``beta`` times the per-token KL
    to the reference policy (estimator ``args.kl_estimator``), averaged over tokens then outputs
    with ``loss_type="grpo"`` (eq. 3).

    Takes the same arguments as ``trl.GRPOTrainer``; ``args`` should be a :class:`grpo_ext.GRPOConfig`
    (a ``trl.GRPOConfig`` is accepted and gets the defaults of our fields).

    With ``args.supervision="process"`` each completion is also cut into reasoning steps
    (``args.step_separator``), a process reward scores every step, and token t of completion i gets
    the outcome advantage plus :math:`\sum_{index(j) \ge t} \tilde r_i^{index(j)}` (step rewards
    normalised over the whole group, gathered from all processes first). Process rewards come from
    ``process_reward_funcs`` (functions ``f(completions, steps, **columns) -> list[list[float]]``,
    summed step by step) or, by default, ``args.process_reward`` by name.

    Logged beside TRL's metrics: ``advantages/mean``, ``advantages/std``, ``advantages/frac_zero``
    (share of completions whose outcome advantage is exactly 0), over the whole generation batch of
    all processes; with process supervision ``process/steps_per_completion``,
    ``process/step_reward_mean`` and ``process/frac_steps_correct`` (step reward above 0.5).
    """

    _tag_names = ["trl", "grpo", "grpo-ext"]

    def __init__(self, *args: Any, process_reward_funcs: list | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.supervision = getattr(self.args, "supervision", "outcome")
        self.process_reward_funcs = None
        if self.supervision == "process":
            from .rewards.process import get_process_reward

            self.process_reward_funcs = list(process_reward_funcs or [get_process_reward(self.args.process_reward)])
        elif process_reward_funcs:
            raise ValueError("process_reward_funcs were given but args.supervision is 'outcome'; set "
                             "supervision='process' to use them")
        self.kl_estimator = getattr(self.args, "kl_estimator", "k3")
        self._rewards_per_func: torch.Tensor | None = None
        self._capture_logps = False
        self._captured_logps: torch.Tensor | None = None
        for callback in self.callback_handler.callbacks:  # e.g. grpo_ext.callbacks.MathEvalCallback
            if callable(getattr(callback, "bind", None)) and getattr(callback, "trainer", False) is None:
                callback.bind(self)

    # ----- advantages -------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # The parent gathers every process's rewards before returning: keep them for the advantages.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        # Overriding the whole 600-line parent to change ~20 lines of it would fork TRL; instead let it
        # run, then recompute the advantages from the same gathered rewards with our function.
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        rewards_per_func, self._rewards_per_func = self._rewards_per_func, None

        if self.multi_objective_aggregation == "sum_then_normalize":
            weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
            rewards = (rewards_per_func * weights).nansum(dim=1)
            rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # unscorable: out of the baseline
            all_advantages = outcome_advantages(rewards, group_size, scale=self.scale_rewards)
            local = len(inputs)
            start = self.accelerator.process_index * local
            output["advantages"] = all_advantages[start : start + local].to(output["advantages"].dtype)
        else:
            # "normalize_then_sum" normalises each reward function per group, then the sum per batch:
            # TRL's own advantages are kept for it.
            all_advantages = self.accelerator.gather(output["advantages"])

        self._metrics[mode]["advantages/mean"].append(all_advantages.mean().item())
        self._metrics[mode]["advantages/std"].append(all_advantages.std().item() if all_advantages.numel() > 1 else 0.0)
        self._metrics[mode]["advantages/frac_zero"].append((all_advantages == 0).float().mean().item())
        if self.supervision == "process":
            output["advantages"] = output["advantages"].unsqueeze(1) + self._process_token_advantages(
                inputs, output, group_size, mode)
        return output

    def _process_token_advantages(self, inputs, output, group_size: int, mode: str) -> torch.Tensor:
        """``(B_local, T)`` process advantages; step rewards are gathered so each group is normalised whole."""
        from accelerate.utils import gather_object

        from .rewards.steps import segment_steps

        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        ids, mask = output["completion_ids"], output["completion_mask"]
        sequences = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
        segments = [segment_steps(seq, tokenizer, self.args.step_separator) for seq in sequences]
        steps = [s for s, _ in segments]
        texts = tokenizer.batch_decode(sequences, skip_special_tokens=True)
        columns = {k: [x[k] for x in inputs] for k in inputs[0] if k not in ("prompt", "completion", "completion_ids")}
        step_rewards = [[0.0] * len(s) for s in steps]
        for func in self.process_reward_funcs:
            scores = func(completions=texts, steps=steps, prompts=[x.get("prompt") for x in inputs], **columns)
            name = getattr(func, "__name__", type(func).__name__)
            if len(scores) != len(steps) or any(len(r) != len(s) for r, s in zip(scores, steps)):
                raise ValueError(f"the process reward {name!r} must return one list of step rewards per completion, "
                                 "with one reward per step")
            step_rewards = [[a + float(b) for a, b in zip(acc, row)] for acc, row in zip(step_rewards, scores)]

        all_rewards = gather_object(step_rewards)
        all_ends = gather_object([e for _, e in segments])
        length = max([e[-1] + 1 for e in all_ends if e] + [ids.size(1)])
        advantages = process_advantages(all_rewards, all_ends, group_size, length)
        start = self.accelerator.process_index * len(inputs)
        local = advantages[start : start + len(inputs), : ids.size(1)].to(ids.device)

        flat = [r for row in all_rewards for r in row]
        self._metrics[mode]["process/steps_per_completion"].append(len(flat) / max(len(all_rewards), 1))
        self._metrics[mode]["process/step_reward_mean"].append(sum(flat) / len(flat) if flat else 0.0)
        self._metrics[mode]["process/frac_steps_correct"].append(sum(r > 0.5 for r in flat) / len(flat) if flat else 0.0)
        return local

    # ----- KL estimator -----------------------------------------------------------------------
    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._capture_logps:
            self._captured_logps = out[0]
        return out

    def _compute_loss(self, model, inputs):
        """The parent's loss, plus ``beta * (KL_est - KL_k3)`` aggregated as the parent aggregates.

        TRL hard-codes k3 inside its 270-line loss; every ``loss_type`` reduces the per-token loss
        linearly, so adding the aggregated difference gives exactly the loss with the chosen
        estimator, from the same forward pass, without copying the parent's method.
        """
        if self.beta == 0.0 or self.kl_estimator == "k3":
            return super()._compute_loss(model, inputs)

        self._capture_logps = True
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._capture_logps = False
        per_token_logps, self._captured_logps = self._captured_logps, None

        ref = inputs["ref_per_token_logps"]
        k3 = kl_penalty(per_token_logps, ref, "k3")
        kl = kl_penalty(per_token_logps, ref, self.kl_estimator)
        delta = kl - k3
        if self.args.use_bias_correction_kl:
            delta = delta * self._importance_weights(per_token_logps, inputs)

        mode = "train" if self.model.training else "eval"
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        num_items = None
        if self.loss_type in ("dapo", "cispo", "vespo"):
            num_items = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                num_items = num_items * self.current_gradient_accumulation_steps / self.args.steps_per_generation
        loss = loss + self.beta * aggregate_token_loss(
            delta,
            mask,
            self.loss_type,
            max_completion_length=self.max_completion_length,
            num_items=num_items,
            accumulation_factor=accumulation,
        )

        # The parent logged the k3 value as "kl": replace it with the estimator actually used.
        totals = self.accelerator.reduce(torch.stack([(kl.detach() * mask).sum(), mask.sum().float()]), reduction="sum")
        self._metrics[mode]["kl"][-1] = (totals[0] / totals[1].clamp(min=1.0)).item()
        return loss

    def _importance_weights(self, per_token_logps: torch.Tensor, inputs: dict) -> torch.Tensor:
        old = inputs.get("old_per_token_logps")
        log_ratio = per_token_logps - (per_token_logps.detach() if old is None else old)
        if self.importance_sampling_level == "sequence":
            mask = inputs["completion_mask"]
            log_ratio = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
        return torch.exp(log_ratio)


__all__ = ["GRPOTrainer", "GRPOConfig"]
