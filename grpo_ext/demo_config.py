"""The demo's settings, checked before any work (no torch import: ``grpo-ext demo --help`` stays fast).

:mod:`grpo_ext.demo` runs the demo; this module holds what its command line and its callers
configure it with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

IN_DOMAIN, OUT_OF_DOMAIN = "english (in domain)", "chinese (out of domain)"
FORMS = {IN_DOMAIN: "en", OUT_OF_DOMAIN: "zh"}
TOTAL_PAIRS = 100 * 100  #: every (a, b) with a, b in 0..99
STATE_FILE = "demo_state.json"
#: what a demo run writes in its output_dir (a fresh run clears these, and nothing else, first)
OUTPUTS = ("warmup", "warmup-model", "grpo", "iterative", "model", "report.png", "report.md", "accuracy.png",
           "reward.png", "results.json", "iterative_log.json", STATE_FILE)


class DemoConfigError(ValueError):
    """A demo setting is out of range; the message names the flag and what it accepts."""


class DemoInterrupted(Exception):
    """Ctrl-C during a training stage: the stage stopped after a saved checkpoint; rerunning resumes it."""

    def __init__(self, stage: str, step: int, max_steps: int, output_dir: str):
        self.stage, self.step, self.max_steps, self.output_dir = stage, step, max_steps, output_dir
        super().__init__(f"stopped in the {stage} at step {step} of {max_steps}; its checkpoint is saved in "
                         f"{output_dir}/. Run the same command again to resume from there.")


@dataclass
class DemoConfig:
    """Settings of the miniature run; the defaults are the measured ones (README)."""

    output_dir: str = "grpo-ext-demo"
    seed: int = 0
    eval_pairs: int = 1000  #: held-out (a, b) pairs, the same in both forms
    warmup_steps: int = 500
    warmup_lr: float = 1e-3
    warmup_batch_size: int = 128
    grpo_steps: int = 600
    grpo_lr: float = 3e-5
    beta: float = 0.04
    num_generations: int = 8
    grpo_batch_size: int = 64
    sample_k: int = 16  #: samples per question for maj@k / pass@k before and after GRPO (figure 7); 0: top-1 only
    sample_temperature: float = 0.7  #: their temperature (the paper's figure 7: 0.7)
    supervision: str = "outcome"  #: "process": the two-step task with step rewards (module docstring)
    steps_task: bool = False  #: the two-step task (always with "process"; with "outcome" for comparisons)
    iterative: bool = False  #: iterative RL: a learned reward model, retrained between GRPO stages
    iterations: int = 2  #: iterative: GRPO stages (grpo_steps is split between them)
    rm_steps: int = 100  #: iterative: reward-model steps before the first stage and after each
    rm_lr: float = 1e-4  #: iterative: the reward model's learning rate
    rm_questions: int = 400  #: iterative: training questions its samples come from
    rm_only: bool = False  #: iterative: the reward model is the only reward (the paper's); else + accuracy
    prm_rollouts: int = 4  #: iterative process: continuations of each step's prefix for its Math-Shepherd label
    prm_labels: str = "hard"  #: iterative process: "hard" (any continuation right) or "soft" (their share)
    resume: bool = True  #: continue an unfinished run in output_dir (after Ctrl-C); False: start over
    progress: bool = True  #: stage lines and progress bars (False: the final table only)

    def __post_init__(self):
        if self.supervision not in SUPERVISIONS:
            raise DemoConfigError(f"--supervision must be one of {', '.join(SUPERVISIONS)}, got {self.supervision!r}")
        if self.supervision == "process":
            self.steps_task = True
        self.validate()

    def validate(self) -> None:
        """Every knob checked before any work: one line naming the flag, what it got and what it accepts."""
        def need(ok: bool, flag: str, what: str) -> None:
            if not ok:
                raise DemoConfigError(f"--{flag} {getattr(self, flag)!r}: it must be {what}")

        for name in ("warmup_steps", "grpo_steps", "warmup_batch_size", "grpo_batch_size"):
            need(self.__dict__[name] >= 1, name, "at least 1")
        for name in ("warmup_lr", "grpo_lr", "rm_lr", "sample_temperature"):
            need(math.isfinite(self.__dict__[name]) and self.__dict__[name] > 0, name, "a positive number")
        need(math.isfinite(self.beta) and self.beta >= 0, "beta", "0 or more (the paper's: 0.04)")
        need(self.seed >= 0, "seed", "0 or more")
        need(1 <= self.eval_pairs <= TOTAL_PAIRS // 2, "eval_pairs",
             f"between 1 and {TOTAL_PAIRS // 2} (held out of the {TOTAL_PAIRS} pairs; the rest train)")
        need(self.num_generations >= 2, "num_generations", "at least 2 (GRPO's baseline is the mean reward of a group)")
        need(self.grpo_batch_size % self.num_generations == 0, "grpo_batch_size",
             f"a multiple of --num_generations ({self.num_generations}): whole groups of completions per step")
        need(self.sample_k >= 0, "sample_k", "0 (top-1 only) or a number of samples per question, e.g. 16")
        if self.iterative:
            need(self.iterations >= 1, "iterations", "at least 1")
            need(self.grpo_steps >= self.iterations, "grpo_steps", f"at least --iterations ({self.iterations})")
            need(self.rm_steps >= 1, "rm_steps", "at least 1")
            need(1 <= self.rm_questions <= TOTAL_PAIRS - self.eval_pairs, "rm_questions",
                 f"between 1 and the {TOTAL_PAIRS - self.eval_pairs} training pairs")
            if self.supervision == "process":
                need(self.prm_rollouts >= 1, "prm_rollouts", "at least 1")
                need(self.prm_labels in ("hard", "soft"), "prm_labels", "hard or soft")

    @classmethod
    def for_supervision(cls, supervision: str = "outcome", **overrides) -> "DemoConfig":
        """The measured settings of a supervision mode (``PROCESS_DEFAULTS`` for "process"), then ``overrides``."""
        settings = dict(PROCESS_DEFAULTS) if supervision == "process" else {}
        settings.update(overrides)
        return cls(supervision=supervision, **settings)

    @property
    def completion_length(self) -> int:
        """Tokens to generate: 4 for ``99+99=`` -> ``198``, 20 for ``99+99=198\n198+9=207``."""
        return 20 if self.steps_task else 4

    def settings(self) -> dict:
        """What decides the numbers (not how the run is shown or whether it resumes): compared on resume."""
        return {k: v for k, v in asdict(self).items() if k not in ("progress", "resume")}


SUPERVISIONS = ("outcome", "process")
#: The two-step task is learnt faster in the warm-up (longer targets) and its GRPO steps cost more
#: (20 generated tokens instead of 4): these settings were measured to take about 4 minutes here.
PROCESS_DEFAULTS = {"warmup_steps": 250, "grpo_steps": 150, "grpo_lr": 1e-4}
