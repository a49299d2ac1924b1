"""Iterative RL (DeepSeekMath, algorithm 1): keep the reward model learning while the policy improves.

As the policy improves, a reward model trained on the old policy's outputs goes stale. Each
iteration of :class:`IterativeGRPO`:

1. resets the reference model to the current policy (:func:`reset_reference`);
2. trains the policy for ``policy_steps`` GRPO steps against the current reward model;
3. samples ``rm_samples`` completions per question from the policy on a held set of questions and
   labels them right/wrong against the gold answers (:func:`grpo_ext.rewards.accuracy_reward`);
4. trains the reward model further on them, mixed with historical examples from a replay buffer
   so that ``replay_ratio`` (the paper: 10%) of its training data is history;
5. hands the updated reward model to the next iteration's policy trainer.

"Reset" under PEFT: TRL's reference for a LoRA policy is the base model with the adapter off, or,
when the model has an adapter named ``"ref"``, the base model with that adapter. Resetting copies
the trained adapter's weights into a frozen ``"ref"`` adapter, so the reference is exactly the
current policy (base + adapter) while only the ``"default"`` adapter trains. Without PEFT the
reference model's weights are overwritten with the policy's.

Everything the loop needs to continue is checkpointed under ``output_dir``: the iteration and
phase (``iterative_state.json``), the policy at the end of each iteration, the policy trainer's own
checkpoints inside an iteration (resumed with their optimizer, scheduler and RNG states), the
reward model with its optimizer, the replay buffer and the RNG states.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import transformers
from datasets import Dataset

from .evaluation import generate_completions
from .rewards.accuracy import accuracy_reward
from .rewards.models import OutcomeRewardModel

STATE_FILE = "iterative_state.json"


@dataclass
class IterativeConfig:
    """Settings of :class:`IterativeGRPO`.

    Args:
        output_dir: where every iteration's policy, the reward model and the loop's state go.
        iterations: K, the number of iterations.
        policy_steps: GRPO optimizer steps per iteration (sets the policy trainer's ``max_steps``).
        rm_samples: completions sampled per question to label for the reward model.
        rm_steps: reward-model training steps per iteration.
        initial_rm_steps: reward-model steps on the initial policy's samples before iteration 0
            (algorithm 1 starts from a trained reward model; 0 if yours is trained already).
        replay_ratio: share of historical examples in each update's training data (paper: 0.1).
        heldout_fraction: share of the questions kept out of reward-model training, to measure its
            accuracy on the current policy's samples.
        max_new_tokens: length of the sampled completions.
        temperature: sampling temperature.
        last_number_fallback: label a completion by its last number when it has no marked answer.
        seed: seeds the question split, sampling and replay draws.
    """

    output_dir: str
    iterations: int = 2
    policy_steps: int = 100
    rm_samples: int = 4
    rm_steps: int = 100
    initial_rm_steps: int = 0
    replay_ratio: float = 0.1
    heldout_fraction: float = 0.25
    max_new_tokens: int = 512
    temperature: float = 1.0
    last_number_fallback: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.iterations < 1 or self.policy_steps < 1:
            raise ValueError(f"iterations ({self.iterations}) and policy_steps ({self.policy_steps}) must be >= 1")
        if not 0.0 <= self.replay_ratio < 1.0:
            raise ValueError(f"replay_ratio must be in [0, 1), got {self.replay_ratio} (the paper uses 0.1)")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.rm_samples < 1 or self.rm_steps < 0 or self.initial_rm_steps < 0:
            raise ValueError("rm_samples must be >= 1, rm_steps and initial_rm_steps >= 0")


class ReplayBuffer:
    """Labelled reward-model examples of past iterations, mixed into each update at a fixed share."""

    def __init__(self):
        self.examples: list[dict] = []

    def __len__(self) -> int:
        return len(self.examples)

    def add(self, examples: list[dict], iteration: int) -> None:
        self.examples += [{**e, "iteration": iteration} for e in examples]

    def mix(self, new: list[dict], ratio: float, rng: random.Random) -> tuple[list[dict], float]:
        """``new`` plus historical examples drawn without replacement so they make up ``ratio`` of the
        result (as near as whole examples allow, and fewer while the history is short); the mix and
        the share of history in it."""
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        wanted = round(ratio * len(new) / (1.0 - ratio))
        history = rng.sample(self.examples, min(wanted, len(self.examples)))
        mixed = [{**e, "replayed": False} for e in new] + [{**e, "replayed": True} for e in history]
        rng.shuffle(mixed)
        return mixed, len(history) / max(len(mixed), 1)

    def state_dict(self) -> list[dict]:
        return list(self.examples)

    def load_state_dict(self, examples: list[dict]) -> None:
        self.examples = list(examples)


def reset_reference(trainer) -> None:
    """Make ``trainer``'s reference model equal to its current policy.

    Without PEFT the reference model's weights are overwritten with the policy's. With PEFT the
    trained adapter is copied into a frozen adapter named ``"ref"``, which TRL's trainer uses as the
    reference (base model + ``"ref"``). With ``beta == 0`` there is no reference and nothing to do.
    """
    from peft import PeftModel

    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        active = model.active_adapter
        if "ref" not in model.peft_config:
            model.add_adapter("ref", copy.deepcopy(model.peft_config[active]))
            model.set_adapter(active)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, param in params.items():
                if f".{active}." in name:
                    twin = params[name.replace(f".{active}.", ".ref.")]
                    twin.copy_(param)
                    twin.requires_grad_(False)
        return
    if trainer.ref_model is None:
        return
    ref = trainer.accelerator.unwrap_model(trainer.ref_model)
    plugin = trainer.accelerator.state.deepspeed_plugin
    if plugin is not None and plugin.zero_stage == 3:
        # Partitioned weights cannot be copied in place. IterativeGRPO hands the factory the path of the
        # policy saved at the end of the previous iteration, and TRL loads the reference from that same
        # path: before any training step the two are then equal by construction.
        same_source = ref.config._name_or_path == model.config._name_or_path
        if same_source and trainer.state.global_step == 0:
            return
        raise ValueError(
            "cannot reset a ZeRO-3-partitioned reference in place: build the trainer from the saved policy's path "
            f"(the reference was loaded from {ref.config._name_or_path!r}, the policy from "
            f"{model.config._name_or_path!r}) and reset before training"
        )
    ref.load_state_dict(model.state_dict())


def _last_checkpoint(folder: str) -> str | None:
    if not os.path.isdir(folder):
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(folder)


def _load_policy(path: str):
    """A saved policy: a PEFT adapter folder becomes a trainable PeftModel, anything else stays a path."""
    if os.path.exists(os.path.join(path, "adapter_config.json")):
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, is_trainable=True)
        if "ref" in model.peft_config:  # saved alongside; the loop resets it at the iteration's start anyway
            model.set_adapter("default")
        return model
    return path


class IterativeGRPO:
    """DeepSeekMath's iterative RL around a GRPO policy trainer and a trainable outcome reward model.

    Args:
        policy_trainer_factory: ``factory(model, reward_model, output_dir) -> GRPOTrainer``; builds the
            policy trainer of one iteration from ``model`` (a path, or a PEFT model) with the reward
            model among its reward functions and ``output_dir`` as its ``args.output_dir``. The loop
            sets ``args.max_steps`` to ``policy_steps``.
        initial_model: the starting policy: a local path / Hub id, or a PEFT model.
        reward_model: the :class:`~grpo_ext.rewards.models.OutcomeRewardModel` to keep training.
        questions: the held set of questions the reward model's data is sampled on (``prompt`` and
            ``answer`` columns, e.g. :func:`grpo_ext.data.load_math_dataset`).
        config: :class:`IterativeConfig`.

    Call :meth:`run`; it resumes from ``config.output_dir`` when a previous run left its state there.
    The per-iteration metrics are returned, written to ``output_dir/iterative_log.jsonl`` and logged
    through the policy trainer (so ``report_to`` integrations see them): ``iterative/iteration``,
    ``iterative/rm_accuracy_before`` and ``iterative/rm_accuracy`` (held-out samples of the current
    policy, before and after the update), ``iterative/replay_fraction``,
    ``iterative/rm_policy_agreement`` (after the update, the share of pairs of held-out samples of
    one question, one right and one wrong, that the reward model ranks right: what GRPO's
    group-relative advantages depend on), ``iterative/policy_sample_accuracy`` and
    ``iterative/rm_loss``.
    """

    def __init__(self, policy_trainer_factory: Callable[..., Any], initial_model: Any,
                 reward_model: OutcomeRewardModel, questions: Dataset, config: IterativeConfig):
        for col in ("prompt", "answer"):
            if col not in questions.column_names:
                raise ValueError(f"the questions need a {col!r} column (columns: {questions.column_names})")
        from .data import drop_rows_without_gold

        questions, _ = drop_rows_without_gold(questions, "IterativeGRPO questions")  # never scored against "None"
        if len(questions) < 2:
            raise ValueError("need at least 2 questions with a gold answer: some train the reward model, some measure it")
        self.factory, self.initial_model, self.rm, self.cfg = policy_trainer_factory, initial_model, reward_model, config
        order = list(range(len(questions)))
        random.Random(config.seed).shuffle(order)
        n_held = min(len(order) - 1, max(1, round(config.heldout_fraction * len(order))))
        self.heldout, self.train_questions = questions.select(order[:n_held]), questions.select(order[n_held:])
        self.buffer = ReplayBuffer()
        self.log: list[dict] = []
        self.state = {"iteration": 0, "phase": "policy"}
        self.trainer = None  #: the last policy trainer this process ran

    # ----- paths and state ----------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.cfg.output_dir, *parts)

    def _save_state(self, iteration: int, phase: str) -> None:
        self.state = {"iteration": iteration, "phase": phase}
        os.makedirs(self.cfg.output_dir, exist_ok=True)
        self.rm.save(self._path("reward_model"))
        torch.save({"python": random.getstate(), "torch": torch.get_rng_state()}, self._path("rng_state.pt"))
        with open(self._path("replay_buffer.json"), "w", encoding="utf-8") as f:
            json.dump(self.buffer.state_dict(), f)
        with open(self._path(STATE_FILE), "w", encoding="utf-8") as f:
            json.dump({**self.state, "config": asdict(self.cfg), "log": self.log}, f, indent=2)

    def _load_state(self) -> bool:
        path = self._path(STATE_FILE)
        if not os.path.exists(path):
            return False
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        self.state = {"iteration": saved["iteration"], "phase": saved["phase"]}
        self.log = saved["log"]
        self.rm.load_state(self._path("reward_model"))
        with open(self._path("replay_buffer.json"), encoding="utf-8") as f:
            self.buffer.load_state_dict(json.load(f))
        rng = torch.load(self._path("rng_state.pt"), weights_only=False)
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"])
        return True

    def _policy_source(self, iteration: int):
        if iteration == 0:
            return self.initial_model
        return _load_policy(self._path(f"iteration-{iteration - 1}", "policy"))

    # ----- reward-model data --------------------------------------------------------------------
    def _labelled_samples(self, policy, tokenizer, questions, iteration: int, salt: int) -> list[dict]:
        """``rm_samples`` completions per question from ``policy`` (a policy trainer, or a model loaded
        from disk), labelled right (1) / wrong (0).

        Every process draws the same samples (same seed) and so trains an identical reward model.
        """
        prompts, golds = list(questions["prompt"]), [str(a) for a in questions["answer"]]
        kw = dict(num_samples=self.cfg.rm_samples, do_sample=True, temperature=self.cfg.temperature,
                  max_new_tokens=self.cfg.max_new_tokens, seed=self.cfg.seed * 1000 + iteration * 10 + salt)
        if hasattr(policy, "accelerator"):  # a trainer: sample through it, ZeRO-3 parameters gathered
            from trl.models import unwrap_model_for_generation

            gather = getattr(policy.args, "ds3_gather_for_generation", True)
            with unwrap_model_for_generation(policy.model_wrapped, policy.accelerator,
                                             gather_deepspeed3_params=gather) as model:
                samples = generate_completions(model, tokenizer, prompts, **kw)
        else:
            samples = generate_completions(policy, tokenizer, prompts, **kw)
        completions = [c for row in samples for c in row]
        prompt_rows = [p for p in prompts for _ in range(self.cfg.rm_samples)]
        gold_rows = [g for g in golds for _ in range(self.cfg.rm_samples)]
        labels = accuracy_reward(completions, answer=gold_rows, last_number_fallback=self.cfg.last_number_fallback)
        texts = OutcomeRewardModel.texts(completions, prompt_rows)
        return [{"text": t, "label": float(y), "question": q}
                for t, y, q in zip(texts, labels, [i for i in range(len(prompts)) for _ in range(self.cfg.rm_samples)])]

    def _agreement(self, examples: list[dict]) -> float:
        """Share of (right, wrong) pairs of the same question that the reward model orders right."""
        scores = self.rm.score_texts([e["text"] for e in examples])
        by_question: dict[int, list[tuple[float, float]]] = {}
        for e, s in zip(examples, scores):
            by_question.setdefault(e["question"], []).append((e["label"], s))
        right = total = 0
        for pairs in by_question.values():
            for label_a, score_a in pairs:
                for label_b, score_b in pairs:
                    if label_a > label_b:
                        total += 1
                        right += score_a > score_b
        return right / total if total else float("nan")

    def _update_reward_model(self, policy, tokenizer, iteration: int, steps: int) -> dict:
        fresh = self._labelled_samples(policy, tokenizer, self.train_questions, iteration, salt=1)
        held = self._labelled_samples(policy, tokenizer, self.heldout, iteration, salt=2)
        held_texts, held_labels = [e["text"] for e in held], [e["label"] for e in held]
        before = self.rm.accuracy(held_texts, held_labels)
        rng = random.Random(f"{self.cfg.seed}-replay-{iteration}")
        mixed, replay_fraction = self.buffer.mix(fresh, self.cfg.replay_ratio, rng)
        generator = torch.Generator().manual_seed(self.cfg.seed * 1000 + iteration)
        losses = self.rm.fit([e["text"] for e in mixed], [e["label"] for e in mixed], steps, generator=generator)
        self.buffer.add(fresh, iteration)
        return {
            "iterative/iteration": float(iteration),
            "iterative/rm_accuracy_before": before,
            "iterative/rm_accuracy": self.rm.accuracy(held_texts, held_labels),
            "iterative/replay_fraction": replay_fraction,
            "iterative/rm_policy_agreement": self._agreement(held),
            "iterative/policy_sample_accuracy": sum(e["label"] for e in fresh + held) / len(fresh + held),
            "iterative/rm_loss": sum(losses) / len(losses) if losses else float("nan"),
        }

    # ----- the loop -----------------------------------------------------------------------------
    def run(self, resume: bool = True) -> list[dict]:
        """Run (or continue) all iterations; the per-iteration metrics.

        State machine, saved after every phase: ``initial_rm`` (only with ``initial_rm_steps``), then
        per iteration ``policy`` and ``reward_model``, then ``finished``.
        """
        if not (resume and self._load_state()):
            self._save_state(0, "initial_rm" if self.cfg.initial_rm_steps else "policy")
        while self.state["phase"] != "finished":
            iteration, phase = self.state["iteration"], self.state["phase"]
            folder = self._path(f"iteration-{iteration}")
            run_dir = os.path.join(folder, "policy-run")
            if phase == "reward_model":  # resumed between the phases: the trained policy is on disk
                policy, tokenizer = self._load_trained(os.path.join(folder, "policy"))
                trainer = None
            else:
                self._release_trainer()
                trainer = self.factory(self._policy_source(iteration), self.rm, run_dir)
                trainer.args.max_steps = self.cfg.policy_steps
                tokenizer = trainer.processing_class
                self.rm.model.to(trainer.accelerator.device)
                if phase == "initial_rm":
                    self._record(trainer, self._update_reward_model(trainer, tokenizer, -1, self.cfg.initial_rm_steps))
                    self._save_state(iteration, "policy")
                reset_reference(trainer)
                trainer.train(resume_from_checkpoint=_last_checkpoint(run_dir))
                trainer.save_model(os.path.join(folder, "policy"))
                tokenizer.save_pretrained(os.path.join(folder, "policy"))
                self._save_state(iteration, "reward_model")
                policy = self.trainer = trainer
            self._record(trainer, self._update_reward_model(policy, tokenizer, iteration, self.cfg.rm_steps))
            last = iteration + 1 >= self.cfg.iterations
            self._save_state(iteration if last else iteration + 1, "finished" if last else "policy")
        return self.log

    def _release_trainer(self) -> None:
        """Free the previous iteration's trainer (its DeepSpeed engines, optimizer) before the next is built.

        accelerate keeps one process-wide AcceleratorState and refuses a second Accelerator with a
        DeepSpeed plugin; the state (not the distributed process group, which stays) is cleared so
        the next iteration's trainer can set up DeepSpeed again.
        """
        import gc

        if self.trainer is None:
            return
        self.trainer = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=False)

    def _load_trained(self, path: str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = _load_policy(path)
        if isinstance(model, str):
            model = AutoModelForCausalLM.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return model.to(next(self.rm.model.parameters()).device), tokenizer

    def _record(self, trainer, metrics: dict) -> None:
        self.log.append(metrics)
        with open(self._path("iterative_log.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        if trainer is not None:
            # transformers.Trainer.log, not TRL's override (which would merge and clear its step metrics and
            # print the completions table again): log_history plus on_log, so report_to integrations see them.
            transformers.Trainer.log(trainer, dict(metrics))


__all__ = ["IterativeConfig", "IterativeGRPO", "ReplayBuffer", "reset_reference"]
