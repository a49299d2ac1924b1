"""GRPOConfig: trl.GRPOConfig plus the fields grpo-ext adds, each with help metadata for TrlParser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig as _TRLGRPOConfig

import warnings

from .losses import KL_ESTIMATORS

#: DeepSeekMath-RL's hyper-parameters (paper, section 4.2): the values ``GRPOConfig.from_paper`` sets.
PAPER_SETTINGS: dict[str, Any] = {
    "learning_rate": 1e-6,
    "beta": 0.04,
    "num_generations": 64,
    "max_completion_length": 1024,
    "num_iterations": 1,
    "kl_estimator": "k3",
    # eq. 3 puts k3 in the loss as it is; TRL's default True is DeepSeek-V3.2's importance-weighted KL
    "use_bias_correction_kl": False,
    "loss_type": "grpo",
    "scale_rewards": "group",
}
#: Completions per optimizer step in the paper (16 questions x 64 samples).
PAPER_BATCH_SIZE = 1024


def _has_accelerator() -> bool:
    """A CUDA, XPU, NPU or MPS device is available to torch."""
    import torch

    for name in ("cuda", "xpu", "npu", "mps"):
        backend = getattr(torch, name, None) or getattr(torch.backends, name, None)
        if backend is not None and callable(getattr(backend, "is_available", None)) and backend.is_available():
            return True
    return False


@dataclass
class GRPOConfig(_TRLGRPOConfig):
    r"""Configuration of :class:`grpo_ext.GRPOTrainer`: every field of ``trl.GRPOConfig``, plus:

    Parameters that control the loss:
        kl_estimator (`str`, *optional*, defaults to `"k3"`):
            Per-token estimator of KL(pi_theta || pi_ref) added to the loss with weight ``beta``, with
            ``log r = log pi_ref - log pi_theta``: ``"k3"`` = ``r - log r - 1`` (the paper's, eq. 4;
            unbiased and always positive), ``"k2"`` = ``(log r)^2 / 2``, ``"k1"`` = ``-log r``.

    Parameters that control the supervision:
        supervision (`str`, *optional*, defaults to `"outcome"`):
            ``"outcome"``: one reward per completion (``reward_funcs``). ``"process"``: also a reward per
            reasoning step (``process_reward``); the token advantages are the outcome advantage plus
            the process advantage (paper, section 4.1.3).
        process_reward (`str`, *optional*, defaults to `"step_check"`):
            The process reward by name (``grpo_ext.rewards.process``), unless the trainer is given
            ``process_reward_funcs``.
        step_separator (`str`, *optional*, defaults to `"\\n"`):
            Text between reasoning steps: ``"\\n"`` (a step per line) or ``"\\n\\n"``.

    Parameters that control groups whose rewards are all equal (their advantage is 0):
        zero_variance_groups (`str`, *optional*, defaults to `"keep"`):
            ``"keep"``: train on them as TRL does (they move only the KL term). ``"skip"``: leave
            them out of the reference pass and of the loss's forward and backward; the policy term
            is ``"keep"``'s, and the KL penalty is estimated on the kept rows with its full weight
            ``beta`` (logged as ``zero_variance/kl_weight``). ``"resample"`` (DAPO's dynamic sampling): generate more groups from
            fresh prompts until the batch holds as many informative groups as it has groups, or
            ``max_resample_rounds`` rounds are spent.
        max_resample_rounds (`int`, *optional*, defaults to `4`):
            Extra generation rounds per batch at most, for ``"resample"``.

    Parameters that make a run explain itself:
        rollouts (`bool`, *optional*, defaults to `True`):
            Keep what the model wrote at logged steps in ``output_dir/rollouts.jsonl``
            (:mod:`grpo_ext.rollouts`: prompt, completion, rewards, advantage, answer, length, truncation).
        rollouts_steps, rollouts_groups, rollouts_max_chars (`int`, defaults `1`, `8`, `4000`):
            Every how many logged steps, how many groups, and where a completion is cut.
        doctor (`bool`, *optional*, defaults to `True`):
            The run doctor (:mod:`grpo_ext.doctor`): each common GRPO failure said once, with the step,
            the figures and the fix; logged as ``doctor/*`` and kept in ``output_dir/doctor.json``.
        doctor_thresholds (`dict`, *optional*):
            Thresholds of the doctor to change (:class:`grpo_ext.doctor.Thresholds`).

    Left unset, ``bf16`` follows the hardware: TRL's ``True`` where an accelerator is available, and on a
    machine without one float32 on the CPU (``bf16=False, use_cpu=True``), so the same code runs on a
    laptop and on a GPU. Other defaults of the inherited fields are TRL's (``loss_type="dapo"``, ``beta=0.0``,
    ``use_bias_correction_kl=True``), so a config means the same in both libraries; :meth:`from_paper`
    returns DeepSeekMath-RL's settings (``use_bias_correction_kl=False``: eq. 3's KL as written).
    """

    kl_estimator: str = field(
        default="k3",
        metadata={
            "help": "Per-token KL estimator in the loss, with log r = log pi_ref - log pi_theta: 'k3' = r - log r - 1 "
            "(the paper's, default), 'k2' = (log r)^2 / 2, 'k1' = -log r. Used only when beta > 0.",
            "choices": list(KL_ESTIMATORS),
        },
    )

    supervision: str = field(
        default="outcome",
        metadata={"help": "'outcome' (a reward per completion) or 'process' (also a reward per reasoning step; the "
                          "token advantage is the outcome advantage plus the process advantage).",
                  "choices": ["outcome", "process"]},
    )
    process_reward: str = field(
        default="step_check", metadata={"help": "Process reward by name (grpo_ext.rewards.process), for 'process'."}
    )
    step_separator: str = field(default="\n", metadata={"help": "Text between reasoning steps: '\\n' or '\\n\\n'."})

    zero_variance_groups: str = field(
        default="keep",
        metadata={"help": "Groups whose rewards are all equal: 'keep' (train on them, as TRL), 'skip' (leave them out "
                          "of the reference pass and the loss; same update as 'keep' when beta=0) or 'resample' "
                          "(generate more groups until the batch is full of informative ones, DAPO's dynamic "
                          "sampling).",
                  "choices": ["keep", "skip", "resample"]},
    )
    max_resample_rounds: int = field(
        default=4, metadata={"help": "Extra generation rounds per batch at most, for zero_variance_groups='resample'."}
    )

    rollouts: bool = field(
        default=True, metadata={"help": "Keep what the model wrote at logged steps in output_dir/rollouts.jsonl "
                                        "(grpo_ext.rollouts): prompt, completion, rewards, advantage, answer, length."})
    rollouts_steps: int = field(default=1, metadata={"help": "Rollouts: every this many logged steps."})
    rollouts_groups: int = field(default=8, metadata={"help": "Rollouts: groups of the batch kept per logged step."})
    rollouts_max_chars: int = field(default=4000, metadata={"help": "Rollouts: a completion is cut at this many "
                                                                     "characters."})
    doctor: bool = field(
        default=True, metadata={"help": "The run doctor (grpo_ext.doctor): says once, with the step, the figures and "
                                        "the fix, when a common GRPO failure shows (truncation, flat groups, KL or "
                                        "gradient blow-up, repetition, ...); logged as doctor/* and kept in "
                                        "output_dir/doctor.json."})
    doctor_thresholds: dict | str | None = field(
        default=None, metadata={"help": "The doctor's thresholds to change, as a dict or JSON "
                                        "(grpo_ext.doctor.Thresholds; e.g. {\"clipped_ratio\": 0.6})."})

    def __post_init__(self):
        # Checked before TRL's own __post_init__ so the user sees what is wrong in our terms, at config
        # time, rather than deep inside training.
        if self.num_generations is not None and self.num_generations < 2:
            raise ValueError(
                f"num_generations ({self.num_generations}) must be at least 2: GRPO's baseline is the mean reward "
                "of a group of completions of the same prompt, and a group of one has no baseline."
            )
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator must be one of {list(KL_ESTIMATORS)}, got {self.kl_estimator!r}.")
        if self.supervision not in ("outcome", "process"):
            raise ValueError(f"supervision must be 'outcome' or 'process', got {self.supervision!r}.")
        if not self.step_separator:
            raise ValueError("step_separator must be a non-empty string, e.g. '\\n' (a step per line) or '\\n\\n'.")
        if self.use_liger_kernel and self.beta > 0 and self.kl_estimator != "k3":
            raise ValueError(
                f"kl_estimator={self.kl_estimator!r} cannot be used with use_liger_kernel=True: Liger's fused GRPO loss "
                "computes its own k3 KL. Use kl_estimator='k3' or turn off use_liger_kernel."
            )
        if self.zero_variance_groups not in ("keep", "skip", "resample"):
            raise ValueError(f"zero_variance_groups must be 'keep', 'skip' or 'resample', got {self.zero_variance_groups!r}.")
        if self.rollouts_steps < 1 or self.rollouts_groups < 1 or self.rollouts_max_chars < 1:
            raise ValueError("rollouts_steps, rollouts_groups and rollouts_max_chars must be at least 1.")
        if isinstance(self.doctor_thresholds, str) and self.doctor_thresholds.strip():
            import json

            try:
                self.doctor_thresholds = json.loads(self.doctor_thresholds)
            except ValueError as err:
                raise ValueError(f"doctor_thresholds must be a dict or its JSON, got {self.doctor_thresholds!r}") from err
        if self.doctor_thresholds:
            from .doctor import Thresholds

            Thresholds.from_settings(self.doctor_thresholds)  # unknown names and bad values, before any model loads
        if self.max_resample_rounds < 0:
            raise ValueError(f"max_resample_rounds ({self.max_resample_rounds}) must be >= 0.")
        if self.zero_variance_groups != "keep" and self.multi_objective_aggregation == "normalize_then_sum":
            raise ValueError(
                f"zero_variance_groups={self.zero_variance_groups!r} needs multi_objective_aggregation="
                "'sum_then_normalize': with 'normalize_then_sum' the advantages are re-centred over the whole batch, "
                "so a group whose rewards are all equal still has non-zero advantages and cannot be dropped."
            )
        if self.beta < 0:
            raise ValueError(
                f"beta ({self.beta}) must be >= 0: it weighs the KL penalty to the reference model "
                "(the paper uses 0.04; 0 disables the penalty and the reference model)."
            )
        for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                         ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
            # transformers 5.24 renamed these fields and warns (FutureWarning) when only the old name is set;
            # TRL's config still sets the old one by default (gradient_checkpointing=True), so every config
            # warned. The old name's value is carried over to the new one, as transformers would, silently.
            if hasattr(self, new) and getattr(self, new) is None and getattr(self, old) is not None:
                setattr(self, new, getattr(self, old))
        if self.bf16 is None and not self.fp16 and not _has_accelerator():
            # TRL resolves an unset bf16 to True, which fails on a machine without an accelerator: a config
            # that says nothing about precision runs there in float32 on the CPU instead.
            self.bf16 = False
            self.use_cpu = True
        if self.beta > 0 and (self.kl_estimator, bool(self.use_bias_correction_kl)) == ("k1", False):
            warnings.warn(
                "kl_estimator='k1' with use_bias_correction_kl=False has an expected gradient of zero: the KL "
                f"penalty (beta={self.beta}) does not constrain training. Use kl_estimator='k3' (the paper's) or 'k2', "
                "or set use_bias_correction_kl=True.", UserWarning, stacklevel=3)
        try:
            super().__post_init__()
        except ValueError as err:
            gbs = self.generation_batch_size
            if gbs is not None and self.num_generations and gbs % self.num_generations != 0:
                raise ValueError(
                    f"The generation batch ({gbs} completions = per_device_train_batch_size "
                    f"{self.per_device_train_batch_size} x {self.world_size} process(es) x steps_per_generation "
                    f"{self.steps_per_generation}) must be a multiple of num_generations ({self.num_generations}), "
                    "so that every prompt's completions land in one batch. Make per_device_train_batch_size (or "
                    "generation_batch_size) a multiple of num_generations."
                ) from err
            raise
        if self.zero_variance_groups == "skip":
            spg, gas = self.steps_per_generation, self.gradient_accumulation_steps
            if spg > gas:
                warnings.warn(
                    f"zero_variance_groups='skip' with steps_per_generation ({spg}) > gradient_accumulation_steps "
                    f"({gas}): the kept rows are spread over the {spg // gas} optimizer steps of a generation batch "
                    "differently from 'keep''s rows, so each step's update differs from 'keep''s (their sum over the "
                    "generation batch does not). Set steps_per_generation = gradient_accumulation_steps for 'keep''s "
                    "exact updates.", UserWarning, stacklevel=3)
            elif self.loss_type == "bnpo" and spg > 1:
                warnings.warn(
                    f"zero_variance_groups='skip' with loss_type='bnpo' and steps_per_generation ({spg}) > 1: bnpo "
                    "divides each micro-batch by its own tokens, which 'skip' restores only on average (the kept rows "
                    "land in other micro-batches than under 'keep'). Use loss_type='grpo' or 'dapo', or "
                    "steps_per_generation=1, for 'keep''s exact update.", UserWarning, stacklevel=3)

    @classmethod
    def from_paper(cls, output_dir: str = "deepseekmath-rl", num_processes: int = 1, **overrides: Any) -> "GRPOConfig":
        """DeepSeekMath-RL's settings (paper, section 4.2), any of which ``overrides`` can change.

        Learning rate 1e-6, beta 0.04 with the k3 estimator in the loss (unweighted, eq. 3:
        ``use_bias_correction_kl=False``), 64 samples per question,
        completions up to 1024 tokens, per-output mean loss (``loss_type="grpo"``), rewards scaled by the
        group's std, and one policy update per exploration stage: 1024 completions per optimizer
        step (``per_device_train_batch_size`` 16 x ``num_processes`` x gradient accumulation) with
        ``num_iterations=1``.

        Args:
            output_dir: where checkpoints go.
            num_processes: how many processes (GPUs) will train; gradient accumulation is set so the
                batch stays 1024. Must divide 64.
        """
        per_device = overrides.pop("per_device_train_batch_size", 16)
        if PAPER_BATCH_SIZE % (per_device * num_processes) != 0:
            raise ValueError(
                f"per_device_train_batch_size ({per_device}) x num_processes ({num_processes}) must divide the paper's "
                f"batch of {PAPER_BATCH_SIZE} completions."
            )
        settings = dict(PAPER_SETTINGS)
        settings["per_device_train_batch_size"] = per_device
        settings["gradient_accumulation_steps"] = PAPER_BATCH_SIZE // (per_device * num_processes)
        settings.update(overrides)
        return cls(output_dir=output_dir, **settings)
