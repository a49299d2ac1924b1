"""GRPOTrainer: trl.GRPOTrainer with DeepSeekMath's advantages and KL estimators.

Plumbing only: the formulas live in :mod:`grpo_ext.advantages` and :mod:`grpo_ext.losses`. Every
override is the smallest hook of trl 1.16's trainer that gives access to what we change, and calls
the parent for everything else (generation, vLLM, PEFT, DeepSpeed, logging, checkpointing).
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import torch
from transformers import TrainerCallback
import trl

from .advantages import flat_step_groups, outcome_advantages, process_advantages, zero_variance_mask
from .batching import check_text_only, concat_rows, num_rows, pad_rows, pick_informative_groups, select_rows, trim_padding
from .config import GRPOConfig
from .losses import aggregate_token_loss, importance_weights, kl_loss_term, zero_variance_kl_scale


class _RolloutCallback(TrainerCallback):
    """Writes the rollouts at logged steps; a resumed run first drops the rows of steps after its checkpoint."""

    def __init__(self, writer):
        self.writer = writer

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.writer.start(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            self.writer.write(state.global_step)


def _start_verifier(reward_funcs, args) -> None:
    """Start the verification workers while the model loads, when a reward needs them (their imports
    then cost the first reward call nothing)."""
    funcs = reward_funcs if isinstance(reward_funcs, (list, tuple)) else [reward_funcs]
    if getattr(args, "supervision", "outcome") == "process" or any(getattr(f, "uses_verifier", False) for f in funcs):
        from .verify import warm_up

        warm_up()


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

    With ``args.zero_variance_groups="skip"`` the groups whose rewards are all equal (advantage 0
    for every token) leave the batch before the reference pass and the loss; with ``"resample"``
    more groups are generated from fresh prompts until the batch is full of informative ones.
    The policy term keeps "keep"'s weights and the KL term its full weight ``beta`` on the kept rows.
    Logged: ``zero_variance/frac_skipped``, ``zero_variance/resample_rounds``,
    ``zero_variance/tokens_saved``, ``zero_variance/frac_filled``, ``zero_variance/kl_weight``.
    """

    _tag_names = ["trl", "grpo", "grpo-ext"]

    def __init__(self, *args: Any, process_reward_funcs: list | None = None, **kwargs: Any):
        _start_verifier(kwargs.get("reward_funcs", args[1] if len(args) > 1 else None),
                        kwargs.get("args", args[2] if len(args) > 2 else None))
        super().__init__(*args, **kwargs)
        self.supervision = getattr(self.args, "supervision", "outcome")
        self.process_reward_funcs = None
        if self.supervision == "process":
            from .rewards.process import get_process_reward

            self.process_reward_funcs = list(process_reward_funcs or [get_process_reward(self.args.process_reward)])
            for func in self.process_reward_funcs:  # e.g. ProcessRewardModel: score on this process's device
                if isinstance(getattr(func, "model", None), torch.nn.Module):
                    func.model = func.model.to(self.accelerator.device)
        elif process_reward_funcs:
            raise ValueError("process_reward_funcs were given but args.supervision is 'outcome'; set "
                             "supervision='process' to use them")
        self.kl_estimator = getattr(self.args, "kl_estimator", "k3")
        self._rewards_per_func: torch.Tensor | None = None
        self._zero_variance: torch.Tensor | None = None  # (B_total,) of the batch just scored
        self._step_rewards: list[list[float]] | None = None
        self._rng_after_shuffle: torch.Tensor | None = None
        self._capture_logps = False
        self._captured_logps: torch.Tensor | None = None
        from .callbacks import WallClock

        if not any(isinstance(cb, WallClock) for cb in self.callback_handler.callbacks):
            self.add_callback(WallClock())  # wall time over resumed segments, for grpo-ext report
        self._rollouts = None
        if getattr(self.args, "rollouts", False):
            from .rollouts import RolloutWriter

            self._rollouts = RolloutWriter(self.args.output_dir, groups=self.args.rollouts_groups,
                                           max_chars=self.args.rollouts_max_chars, every=self.args.rollouts_steps)
            self.callback_handler.callbacks.insert(0, _RolloutCallback(self._rollouts))
        if getattr(self.args, "doctor", False):
            from .doctor import Doctor, DoctorCallback, Thresholds

            weights = dict(zip(self.reward_func_names, self.reward_weights.tolist()))
            doctor = Doctor(Thresholds.from_settings(self.args.doctor_thresholds),
                            max_completion_length=self.args.max_completion_length, reward_weights=weights)
            # before the reporting callbacks (wandb, TensorBoard, trackio...), so that they log doctor/* too,
            # and after the rollouts' writer, whose rows of this step it reads
            at = 1 if self._rollouts is not None else 0
            self.callback_handler.callbacks.insert(at, DoctorCallback(doctor, self._rollouts))
        for callback in self.callback_handler.callbacks:  # e.g. grpo_ext.callbacks.MathEvalCallback
            if callable(getattr(callback, "bind", None)):
                callback.bind(self)  # this trainer's policy, also when an earlier trainer held the callback

    # ----- model card --------------------------------------------------------------------------
    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None,
                          tags: str | list[str] | None = None):
        """TRL's card, naming the base model also when it was loaded from a local folder.

        TRL writes "a fine-tuned version of [None]" for a model loaded from a path. A Hub cache snapshot
        (``.../models--org--name/snapshots/<hash>``) is named by its Hub id, in the text and the metadata;
        any other folder by its path.
        """
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        if not self.is_world_process_zero():
            return
        card_path = os.path.join(self.args.output_dir, "README.md")
        source = getattr(self.model.config, "_name_or_path", "") or ""
        if not (source and os.path.isdir(source) and os.path.isfile(card_path)):
            return
        from huggingface_hub import ModelCard

        card = ModelCard.load(card_path)
        hub_id = _hub_id_of_cache_folder(source)
        if hub_id:
            card.data.base_model = hub_id
            named = f"[{hub_id}](https://huggingface.co/{hub_id})"
        else:
            named = f"the local model `{os.path.abspath(source)}`"
        card.text = card.text.replace("[None](https://huggingface.co/None)", named)
        card.save(card_path)

    # ----- advantages -------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # The parent gathers every process's rewards before returning: keep them for the advantages.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        if mode == "eval" or getattr(self.args, "zero_variance_groups", "keep") == "keep":
            return self._score_batch(inputs, mode)
        return self._informative_batch(inputs)

    def _score_batch(self, inputs, mode: str):
        # Overriding the whole 600-line parent to change ~20 lines of it would fork TRL; instead let it
        # run, then recompute the advantages from the same gathered rewards with our function.
        output = super()._generate_and_score_completions(inputs)
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        rewards_per_func, self._rewards_per_func = self._rewards_per_func, None

        if self.multi_objective_aggregation == "sum_then_normalize":
            weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
            rewards = (rewards_per_func * weights).nansum(dim=1)
            rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # unscorable: out of the baseline
            all_advantages = outcome_advantages(rewards, group_size, scale=self.scale_rewards)
            self._zero_variance = zero_variance_mask(rewards, group_size)
            local = len(inputs)
            start = self.accelerator.process_index * local
            output["advantages"] = all_advantages[start : start + local].to(output["advantages"].dtype)
        else:
            # "normalize_then_sum" normalises each reward function per group, then the sum per batch:
            # TRL's own advantages are kept for it.
            all_advantages = self.accelerator.gather(output["advantages"])
            self._zero_variance = None  # batch-centred advantages: no group can be dropped (config refuses it)

        if mode == "train" and self._rollouts is not None:
            self._collect_rollouts(output, rewards_per_func, all_advantages, group_size)
        self._metrics[mode]["advantages/mean"].append(all_advantages.mean().item())
        self._metrics[mode]["advantages/std"].append(all_advantages.std().item() if all_advantages.numel() > 1 else 0.0)
        self._metrics[mode]["advantages/frac_zero"].append((all_advantages == 0).float().mean().item())
        if self.supervision == "process":
            local_process, all_process, all_ends = self._process_token_advantages(inputs, output, group_size, mode)
            output["advantages"] = output["advantages"].unsqueeze(1) + local_process
            # The completions table's "advantage" is the outcome one; this column has each step's token advantage.
            outcome, process = all_advantages.tolist(), all_process.tolist()  # one conversion, not one per step
            self._logs["extra"]["step_advantages"].extend(
                " ".join(f"{outcome[i] + process[i][e]:.2f}" for e in ends) for i, ends in enumerate(all_ends))
            if self._rollouts is not None and self._rollouts.pending and mode == "train":
                self._rollouts.pending["step_rewards"] = self._step_rewards
            if self._zero_variance is not None:  # a group is flat only if its step rewards are flat too
                self._zero_variance &= flat_step_groups(self._step_rewards, group_size).to(self._zero_variance.device)
        return output

    def _collect_rollouts(self, output, rewards_per_func, all_advantages, group_size: int) -> None:
        """Keep the batch just scored for rollouts.jsonl (written at the next logged step, on the main process)."""
        ids, mask = output["completion_ids"], output["completion_mask"]
        lengths = mask.sum(1)
        eos = getattr(self.processing_class, "eos_token_id", None)
        last = ids.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        cut = (lengths >= self.args.max_completion_length) & (last != eos if eos is not None else True)
        lengths, cut = self.accelerator.gather(lengths), self.accelerator.gather(cut.long())  # every process takes part
        if not self.accelerator.is_main_process:
            return
        total = len(all_advantages)
        from .rewards._common import completion_text

        self._rollouts.collect(
            prompts=list(self._logs["prompt"])[-total:], completions=[completion_text(c) for c in
                                                                       list(self._logs["completion"])[-total:]],
            rewards={name: rewards_per_func[:, i].tolist() for i, name in enumerate(self.reward_func_names)},
            weights=dict(zip(self.reward_func_names, self.reward_weights.tolist())),
            advantages=all_advantages.tolist(), lengths=lengths.tolist(), truncated=[bool(c) for c in cut.tolist()],
            group_size=group_size, separator=self.args.step_separator, step_rewards=None)

    def _process_token_advantages(self, inputs, output, group_size: int, mode: str):
        """Process advantages: ``(B_local, T)`` of this process, ``(B_total, T')`` of all, and all step ends.

        Step rewards are gathered so each group is normalised whole.
        """
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
        self._step_rewards = all_rewards
        all_ends = gather_object([e for _, e in segments])
        length = max([e[-1] + 1 for e in all_ends if e] + [ids.size(1)])
        advantages = process_advantages(all_rewards, all_ends, group_size, length)
        start = self.accelerator.process_index * len(inputs)
        local = advantages[start : start + len(inputs), : ids.size(1)].to(ids.device)

        flat = [r for row in all_rewards for r in row]
        self._metrics[mode]["process/steps_per_completion"].append(len(flat) / max(len(all_rewards), 1))
        self._metrics[mode]["process/step_reward_mean"].append(sum(flat) / len(flat) if flat else 0.0)
        self._metrics[mode]["process/frac_steps_correct"].append(sum(r > 0.5 for r in flat) / len(flat) if flat else 0.0)
        return local, advantages, all_ends

    # ----- zero-variance groups ---------------------------------------------------------------
    def _prepare_inputs(self, generation_batch):
        self._rng_after_shuffle = None
        inputs = super()._prepare_inputs(generation_batch)
        if self._rng_after_shuffle is not None:
            # The parent shuffled the kept rows with torch.randperm(len): leave the RNG where shuffling the
            # full batch would have, so "skip" samples exactly the completions "keep" samples.
            torch.set_rng_state(self._rng_after_shuffle)
            self._rng_after_shuffle = None
        return inputs

    def _informative_batch(self, inputs):
        """The local batch without zero-variance groups ("skip"), refilled from fresh prompts ("resample").

        Every process ends with the same number of rows (padding rows: loss mask and advantage 0), a
        multiple of ``steps_per_generation``, so all run the same forward/backward calls (DDP and
        DeepSpeed hang otherwise). The reference pass is deferred until the kept rows are known.
        """
        mode, group_size = "train", self.num_generations
        local, rank = len(inputs), self.accelerator.process_index
        beta, self.beta = self.beta, 0.0  # the parent then skips its reference pass; done below on kept rows
        try:
            rounds = [self._score_batch(inputs, mode)]
            flat = [self._zero_variance]
            check_text_only(rounds[0])
            needed = flat[0].numel() // group_size
            picks = pick_informative_groups(flat, group_size, local)
            extra = 0
            if self.args.zero_variance_groups == "resample":
                while sum(int(p.sum()) for p in picks) < needed and extra < self.args.max_resample_rounds:
                    extra += 1
                    rounds.append(self._score_batch(self._fresh_inputs(local, extra), mode))
                    flat.append(self._zero_variance)
                    picks = pick_informative_groups(flat, group_size, local)
        finally:
            self.beta = beta
        have = sum(int(p.sum()) for p in picks)

        # Keep the picked groups: at most one batch of them, and no process over its own batch size.
        parts, kept_tokens, round_tokens = [], 0, []
        for batch, take in zip(rounds, picks):
            rows = take.repeat_interleave(group_size)[rank * local:(rank + 1) * local]
            parts.append(select_rows(batch, rows.nonzero().flatten().cpu()))
            mask = batch["completion_mask"] * batch.get("tool_mask", 1)
            kept_tokens += (mask * rows.unsqueeze(1).to(mask.device)).sum()
            round_tokens.append(mask.sum())
        pad_id = self._tokenizer.pad_token_id
        kept = concat_rows(parts, pad_id)
        n_real = num_rows(kept)
        spg = self.args.steps_per_generation
        most = int(self.accelerator.gather(torch.tensor([n_real], device=self.accelerator.device)).max())
        target = max(spg, -(-most // spg) * spg)
        kept["zero_variance_real"] = torch.ones(n_real, device=self.accelerator.device)
        template = dict(rounds[0], zero_variance_real=torch.ones(local, device=self.accelerator.device))
        kept = trim_padding(pad_rows(kept, target, template, pad_id))

        all_tokens = torch.stack(round_tokens).sum()
        totals = self.accelerator.gather(torch.stack([kept_tokens, all_tokens]).float().view(1, 2)).sum(0)
        zv_mode = self.args.zero_variance_groups
        if zv_mode == "resample":
            kept["num_items_in_batch"] = totals[0]  # the batch is the kept rows: normalise over them
        else:  # "skip" keeps "keep"'s normalisers, so its policy term equals "keep"'s
            kept["zero_variance_tokens_per_step"] = round_tokens[0].float() / spg
        kl_scale, covered = zero_variance_kl_scale(self.loss_type, zv_mode, real_rows=n_real, padded_rows=target,
                                                   kept_tokens=totals[0].item(), all_tokens=totals[1].item())
        kept["zero_variance_kl_scale"] = torch.tensor(kl_scale, device=self.accelerator.device)
        if self.beta != 0.0:
            kept["ref_per_token_logps"] = self._reference_logps(kept)

        if self.args.zero_variance_groups == "skip":
            state = torch.get_rng_state()
            torch.randperm(local)  # what the parent's shuffle of the full batch draws
            self._rng_after_shuffle = torch.get_rng_state()
            torch.set_rng_state(state)

        generated = len(flat) * needed
        flat_groups = sum(int(z[::group_size].sum()) for z in flat)
        self._metrics[mode]["zero_variance/frac_skipped"].append(flat_groups / generated)
        self._metrics[mode]["zero_variance/resample_rounds"].append(float(extra))
        self._metrics[mode]["zero_variance/tokens_saved"].append((totals[1] - totals[0]).item())
        self._metrics[mode]["zero_variance/frac_filled"].append(min(have, needed) / needed)
        self._metrics[mode]["zero_variance/kl_weight"].append(self.beta * kl_scale * covered)
        if self.args.zero_variance_groups == "resample" and have < needed and self.accelerator.is_main_process:
            logger.warning(
                "zero_variance_groups='resample' stopped after max_resample_rounds=%d extra rounds with %d of %d "
                "informative groups; this step trains on those (raise max_resample_rounds to fill the batch).",
                self.args.max_resample_rounds, have, needed)
        return kept

    def _fresh_inputs(self, local: int, round_index: int) -> list[dict]:
        """This process's share of a new generation batch: fresh prompts, ``num_generations`` rows each.

        All processes draw the same prompts (the seed is shared) and keep their own contiguous slice,
        the layout of TRL's sampler.
        """
        dataset = self.train_dataset
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise ValueError("zero_variance_groups='resample' draws fresh prompts by index and needs a map-style "
                             "train_dataset; use 'skip' with an IterableDataset")
        total = local * self.accelerator.num_processes
        # Keyed by what a resumed run restores: the optimizer step and the generation's place in it
        # (TRL's micro-step counter restarts at 0 on resume, in step with the accumulation window).
        window = self._step % self.args.gradient_accumulation_steps
        rng = random.Random(f"{self.args.seed}-{self.state.global_step}-{window}-{round_index}")
        picks = [rng.randrange(len(dataset)) for _ in range(total // self.num_generations)]
        rows = [dataset[i] for i in picks for _ in range(self.num_generations)]
        rank = self.accelerator.process_index
        return rows[rank * local:(rank + 1) * local]

    @torch.no_grad()
    def _reference_logps(self, batch: dict) -> torch.Tensor:
        """Reference log-probs of the kept rows, as the parent computes them for all rows.

        The parent's reference pass sits inside its 600-line method before the rewards exist, so it
        cannot be limited to the kept rows from outside; this repeats its two branches (a separate
        reference model, or the PEFT model with the adapter off / the "ref" adapter on).
        """
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import use_adapter

        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        args = (ids, mask, batch["completion_ids"].size(1))
        size = self.args.per_device_train_batch_size
        with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if self.ref_model is not None:
                return self._get_per_token_logps_and_entropies(self.ref_model, *args, batch_size=size)[0]
            model = self.accelerator.unwrap_model(self.model)
            with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
                return self._get_per_token_logps_and_entropies(self.model, *args, batch_size=size)[0]

    def _zero_variance_scale(self, inputs) -> float | torch.Tensor:
        """Factor that gives a micro-batch without the dropped rows the normaliser of the full one.

        Per-sequence losses (grpo, sapo, dr_grpo, luspo) divide by the rows of the micro-batch: each
        kept row must weigh 1 / per_device_train_batch_size as in the full batch. bnpo divides by the
        micro-batch's tokens: "skip" restores the full micro-batch's share of tokens. dapo, cispo and
        vespo already divide by ``num_items_in_batch``, set by :meth:`_informative_batch`.
        """
        if self.loss_type in ("grpo", "sapo", "dr_grpo", "luspo"):
            return inputs["completion_ids"].size(0) / self.args.per_device_train_batch_size
        if self.loss_type == "bnpo" and "zero_variance_tokens_per_step" in inputs:
            mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
            return mask.sum().clamp(min=1.0) / inputs["zero_variance_tokens_per_step"].clamp(min=1.0)
        return 1.0

    # ----- KL estimator -----------------------------------------------------------------------
    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._capture_logps:
            self._captured_logps = out[0]
        return out

    def _compute_loss(self, model, inputs):
        kl_scale = 1.0
        if "zero_variance_real" in inputs and self.model.training:
            # Scale the advantages, not the loss: every loss_type's policy term is linear in them (and
            # uses only their sign otherwise), while TRL's entropy bonus and auxiliary loss keep their
            # own weights. The KL term gets the whole weight of the dropped rows back (kl_scale).
            inputs = dict(inputs, advantages=inputs["advantages"] * self._zero_variance_scale(inputs))
            kl_scale = float(inputs["zero_variance_kl_scale"])
        if self.beta == 0.0 or (self.kl_estimator == "k3" and kl_scale == 1.0):
            return super()._compute_loss(model, inputs)
        beta, self.beta = self.beta, self.beta * kl_scale  # the parent's KL term, at the weight it should have
        try:
            return self._loss_with_kl(model, inputs)
        finally:
            self.beta = beta

    def _loss_with_kl(self, model, inputs):
        """The parent's loss with its k3 KL term swapped for the configured estimator, aggregated alike.

        TRL hard-codes k3 inside its 270-line loss; every ``loss_type`` reduces the per-token loss
        linearly, so adding ``beta * aggregate(KL_est - KL_k3)`` gives exactly the loss with the chosen
        estimator, from the same forward pass, without copying the parent's method.
        """
        if self.kl_estimator == "k3":
            return super()._compute_loss(model, inputs)
        self._capture_logps = True
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._capture_logps = False
        per_token_logps, self._captured_logps = self._captured_logps, None

        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        weights = None
        if self.args.use_bias_correction_kl:
            weights = importance_weights(per_token_logps, inputs.get("old_per_token_logps"), mask,
                                         self.importance_sampling_level)
        ref = inputs["ref_per_token_logps"]
        ours = kl_loss_term(per_token_logps, ref, self.kl_estimator, weights)

        mode = "train" if self.model.training else "eval"
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        num_items = None
        if self.loss_type in ("dapo", "cispo", "vespo"):
            num_items = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                num_items = num_items * self.current_gradient_accumulation_steps / self.args.steps_per_generation
        loss = loss + self.beta * aggregate_token_loss(
            ours - kl_loss_term(per_token_logps, ref, "k3", weights),
            mask,
            self.loss_type,
            max_completion_length=self.max_completion_length,
            num_items=num_items,
            accumulation_factor=accumulation,
        )

        # The parent logged its k3 term as "kl": replace it with the term actually in the loss.
        ours = ours.detach().expand_as(mask)
        totals = self.accelerator.reduce(torch.stack([(ours * mask).sum(), mask.sum().float()]), reduction="sum")
        self._metrics[mode]["kl"][-1] = (totals[0] / totals[1].clamp(min=1.0)).item()
        return loss


logger = logging.getLogger(__name__)

__all__ = ["GRPOTrainer", "GRPOConfig"]


def _hub_id_of_cache_folder(path: str) -> str | None:
    """``org/name`` (or ``name``) of a Hub cache snapshot folder (``.../models--org--name/snapshots/<hash>``)."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3][len("models--"):].replace("--", "/")
    return None
