"""Iterative RL (DeepSeekMath, algorithm 1): keep the reward model learning while the policy improves.

As the policy improves, a reward model trained on the old policy's outputs goes stale. Each
iteration of :class:`IterativeGRPO`:

1. resets the reference model to the current policy (:func:`reset_reference`);
2. trains the policy for ``policy_steps`` GRPO steps against the current reward model, on the prompts
   one long run would reach next (each iteration continues through the data where the last stopped);
3. samples ``rm_samples`` completions per question from the policy on a held set of questions and
   labels them: right/wrong against the gold answers (``supervision="outcome"``,
   :func:`grpo_ext.rewards.accuracy_reward`), or each step by Math-Shepherd's automatic estimate
   (``supervision="process"``, :func:`annotate_steps`: the policy continues every step's prefix
   ``prm_rollouts`` times, and the step is good when a continuation reaches the gold);
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
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import transformers
from datasets import Dataset

from .evaluation import generate_completions
from .rewards.accuracy import accuracy_reward
from .rewards.models import OutcomeRewardModel, ProcessRewardModel

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
        supervision: ``"outcome"`` (an :class:`~grpo_ext.rewards.models.OutcomeRewardModel` learns whether a
            completion is right) or ``"process"`` (a :class:`~grpo_ext.rewards.models.ProcessRewardModel`
            learns Math-Shepherd's automatic step labels, :func:`annotate_steps`): the paper's figure 6.
        prm_rollouts: process supervision: completions the policy writes from each step's prefix (N).
        prm_labels: process supervision: ``"hard"`` (a step is good when any rollout from it reaches the
            gold) or ``"soft"`` (the share of rollouts that do).
        step_separator: process supervision: the text between two steps of a completion.
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
    supervision: str = "outcome"
    prm_rollouts: int = 4
    prm_labels: str = "hard"
    step_separator: str = "\n"

    def __post_init__(self):
        if self.supervision not in ("outcome", "process"):
            raise ValueError(f"supervision must be 'outcome' or 'process', got {self.supervision!r}")
        if self.prm_labels not in ("hard", "soft"):
            raise ValueError(f"prm_labels must be 'hard' or 'soft' (Math-Shepherd's estimates), got {self.prm_labels!r}")
        if self.prm_rollouts < 1 or not self.step_separator:
            raise ValueError("prm_rollouts must be >= 1 and step_separator non-empty")
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
                parts = name.split(".")
                if active in parts:  # lora_A.default.weight, and lora_embedding_A.default (no dot after)
                    twin = params[".".join("ref" if part == active else part for part in parts)]
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


def split_steps(text: str, separator: str = "\n") -> list[str]:
    """The steps of a completion's text: what ``separator`` divides, blanks dropped (as the trainer's
    :func:`~grpo_ext.rewards.steps.segment_steps` reads them)."""
    return [s.strip() for s in text.split(separator) if s.strip()]


def continue_prompt(prompt: Any, prefix: str) -> Any:
    """A prompt that makes the policy continue ``prefix`` of its own answer: appended to a text prompt, or
    an assistant message to continue after a conversation."""
    if isinstance(prompt, list):
        return [*prompt, {"role": "assistant", "content": prefix}]
    return f"{prompt}{prefix}"


def annotate_steps(prompts: list[Any], steps: list[list[str]], golds: list[str],
                   complete: Callable[[list[Any], int], list[list[str]]], *, rollouts: int = 4, mode: str = "hard",
                   separator: str = "\n", last_number_fallback: bool = False) -> tuple[list[list[float]], list[float]]:
    """Math-Shepherd's automatic step labels (Wang et al., 2024), as DeepSeekMath's process reward model
    was trained on.

    For step j of a completion (all but the last), the policy continues the completion's first j steps
    ``rollouts`` times (``complete(prefix_prompts, rollouts)`` returns each prefix's continuations); the
    step is good (1.0) when any continuation reaches the gold answer (``mode="hard"``), or scores the
    share that do (``"soft"``). The last step is labelled by the completion's own final answer.

    Returns:
        ``(labels, outcome)``: one label per step of each completion, and whether each completion's own
        final answer is right (1.0 / 0.0).
    """
    if mode not in ("hard", "soft"):
        raise ValueError(f"mode must be 'hard' or 'soft', got {mode!r}")
    outcome = accuracy_reward([separator.join(s) for s in steps], answer=list(golds),
                              last_number_fallback=last_number_fallback)
    labels = [[0.0] * len(s) for s in steps]
    for i, s in enumerate(steps):
        if s:
            labels[i][-1] = float(outcome[i] or 0.0)
    requests = [(i, j) for i, s in enumerate(steps) for j in range(len(s) - 1)]
    if not requests:
        return labels, [float(o or 0.0) for o in outcome]
    prefixes = [separator.join(steps[i][: j + 1]) + separator for i, j in requests]
    continuations = complete([continue_prompt(prompts[i], prefix) for (i, _), prefix in zip(requests, prefixes)], rollouts)
    texts = [prefix + c for prefix, conts in zip(prefixes, continuations) for c in conts[:rollouts]]
    reached = accuracy_reward(texts, answer=[golds[i] for i, _ in requests for _ in range(rollouts)],
                              last_number_fallback=last_number_fallback)
    for k, (i, j) in enumerate(requests):
        hits = [r == 1.0 for r in reached[k * rollouts: (k + 1) * rollouts]]
        labels[i][j] = float(any(hits)) if mode == "hard" else sum(hits) / rollouts
    return labels, [float(o or 0.0) for o in outcome]


def prompts_consumed(args, steps: int) -> int:
    """Prompts a GRPO trainer with ``args`` draws from its dataset in ``steps`` optimizer steps.

    TRL's sampler hands out one generation batch of ``generation_batch_size / num_generations`` prompts
    for every ``steps_per_generation * num_iterations`` micro-batches, and an optimizer step takes
    ``gradient_accumulation_steps`` micro-batches.
    """
    per_generation = args.generation_batch_size // args.num_generations
    micro_batches = steps * args.gradient_accumulation_steps
    return math.ceil(micro_batches / (args.steps_per_generation * args.num_iterations)) * per_generation


def long_run_order(n_rows: int, start: int, count: int, seed: int, shuffle: bool = True) -> list[int]:
    """Rows ``start .. start + count`` of one long run through a dataset of ``n_rows``: epoch after epoch,
    each a fresh permutation (seeded by ``seed`` and the epoch), so no row comes back before all were seen."""
    out: list[int] = []
    epoch, position = divmod(start, n_rows)
    while len(out) < count:
        order = list(range(n_rows))
        if shuffle:
            random.Random(f"{seed}-epoch-{epoch}").shuffle(order)
        out += order[position: position + count - len(out)]
        epoch, position = epoch + 1, 0
    return out


class IterativeGRPO:
    """DeepSeekMath's iterative RL around a GRPO policy trainer and a trainable reward model.

    Args:
        policy_trainer_factory: ``factory(model, reward_model, output_dir) -> GRPOTrainer``; builds the
            policy trainer of one iteration from ``model`` (a path, or a PEFT model) with the reward
            model among its reward functions (process supervision: among its ``process_reward_funcs``)
            and ``output_dir`` as its ``args.output_dir``. The loop sets ``args.max_steps`` to
            ``policy_steps`` and hands the trainer the next prompts of one long run through its dataset.
        initial_model: the starting policy: a local path / Hub id, or a PEFT model.
        reward_model: the :class:`~grpo_ext.rewards.models.OutcomeRewardModel` (outcome supervision) or
            :class:`~grpo_ext.rewards.models.ProcessRewardModel` (process supervision) to keep training.
        questions: the held set of questions the reward model's data is sampled on (``prompt`` and
            ``answer`` columns, e.g. :func:`grpo_ext.data.load_math_dataset`); rows without a gold are
            left out.
        config: :class:`IterativeConfig`.
        reference_reward: process supervision: a process reward to measure the labels and the learned
            model against (the synthetic task's step checker), or None.

    Call :meth:`run`; it resumes from ``config.output_dir`` when a previous run left its state there.
    The per-iteration metrics are returned, written to ``output_dir/iterative_log.jsonl`` and logged
    through the policy trainer (so ``report_to`` integrations see them): ``iterative/iteration``,
    ``iterative/rm_accuracy_before`` and ``iterative/rm_accuracy`` (held-out samples of the current
    policy, before and after the update; per step under process supervision),
    ``iterative/replay_fraction``, ``iterative/rm_policy_agreement`` (after the update, the share of
    pairs of held-out samples of one question, one right and one wrong, that the reward model ranks
    right: what GRPO's group-relative advantages depend on; a process model ranks by its mean step
    score), ``iterative/policy_sample_accuracy`` and ``iterative/rm_loss``. Under process supervision
    also the annotation's generation cost, ``iterative/annotation_rollouts``,
    ``iterative/annotation_tokens``, ``iterative/annotation_tokens_per_sample`` and
    ``iterative/annotation_seconds``, and with a ``reference_reward`` the share of held-out steps where
    the automatic labels (``iterative/annotation_reference_agreement``) and the learned model
    (``iterative/prm_reference_agreement``) agree with it.
    """

    def __init__(self, policy_trainer_factory: Callable[..., Any], initial_model: Any,
                 reward_model: OutcomeRewardModel | ProcessRewardModel, questions: Dataset, config: IterativeConfig,
                 reference_reward: Callable[..., list] | None = None):
        for col in ("prompt", "answer"):
            if col not in questions.column_names:
                raise ValueError(f"the questions need a {col!r} column (columns: {questions.column_names})")
        from .data import drop_rows_without_gold

        questions, _ = drop_rows_without_gold(questions, "IterativeGRPO questions")  # never scored against "None"
        if len(questions) < 2:
            raise ValueError("need at least 2 questions with a gold answer: some train the reward model, some measure it")
        expected = ProcessRewardModel if config.supervision == "process" else OutcomeRewardModel
        if not isinstance(reward_model, expected):
            raise ValueError(f"supervision={config.supervision!r} trains a {expected.__name__}; got "
                             f"{type(reward_model).__name__}")
        self.factory, self.initial_model, self.rm, self.cfg = policy_trainer_factory, initial_model, reward_model, config
        self.reference_reward = reference_reward
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
    def _sample(self, policy, tokenizer, prompts: list, n: int, seed: int) -> list[list[str]]:
        """``n`` sampled completions per prompt from ``policy`` (a policy trainer, or a model loaded from disk)."""
        kw = dict(num_samples=n, do_sample=True, temperature=self.cfg.temperature,
                  max_new_tokens=self.cfg.max_new_tokens, seed=seed)
        if hasattr(policy, "accelerator"):  # a trainer: sample through it, ZeRO-3 parameters gathered
            from trl.models import unwrap_model_for_generation

            gather = getattr(policy.args, "ds3_gather_for_generation", True)
            with unwrap_model_for_generation(policy.model_wrapped, policy.accelerator,
                                             gather_deepspeed3_params=gather) as model:
                return generate_completions(model, tokenizer, prompts, **kw)
        return generate_completions(policy, tokenizer, prompts, **kw)

    def _samples(self, policy, tokenizer, questions, iteration: int, salt: int):
        """``rm_samples`` completions per question, flattened: (completions, prompt, gold, question index) rows."""
        prompts, golds = list(questions["prompt"]), [str(a) for a in questions["answer"]]
        seed = self.cfg.seed * 1000 + iteration * 10 + salt
        samples = self._sample(policy, tokenizer, prompts, self.cfg.rm_samples, seed)
        n = self.cfg.rm_samples
        return ([c for row in samples for c in row], [p for p in prompts for _ in range(n)],
                [g for g in golds for _ in range(n)], [i for i in range(len(prompts)) for _ in range(n)])

    def _labelled_samples(self, policy, tokenizer, questions, iteration: int, salt: int) -> tuple[list[dict], dict]:
        """Outcome supervision: ``rm_samples`` completions per question labelled right (1) / wrong (0).

        Every process draws the same samples (same seed) and so trains an identical reward model.
        """
        completions, prompt_rows, gold_rows, q_rows = self._samples(policy, tokenizer, questions, iteration, salt)
        labels = accuracy_reward(completions, answer=gold_rows, last_number_fallback=self.cfg.last_number_fallback)
        texts = OutcomeRewardModel.texts(completions, prompt_rows)
        return [{"text": t, "label": float(y), "correct": float(y), "question": q}
                for t, y, q in zip(texts, labels, q_rows)], {}

    def _annotated_samples(self, policy, tokenizer, questions, iteration: int, salt: int) -> tuple[list[dict], dict]:
        """Process supervision: ``rm_samples`` completions per question, each step labelled by
        :func:`annotate_steps` with ``prm_rollouts`` continuations of the current policy; and the cost."""
        completions, prompt_rows, gold_rows, q_rows = self._samples(policy, tokenizer, questions, iteration, salt)
        sep = self.cfg.step_separator
        steps = [split_steps(c, sep) for c in completions]
        cost = {"rollouts": 0, "tokens": 0}
        seed = [self.cfg.seed * 1000 + iteration * 10 + salt + 5]

        def complete(prefix_prompts, n):
            seed[0] += 1
            out = self._sample(policy, tokenizer, prefix_prompts, n, seed[0])
            flat = [c for row in out for c in row]
            cost["rollouts"] += len(flat)
            cost["tokens"] += sum(len(ids) for ids in tokenizer(flat, add_special_tokens=False)["input_ids"]) if flat else 0
            return out

        start = time.perf_counter()
        labels, correct = annotate_steps(prompt_rows, steps, gold_rows, complete, rollouts=self.cfg.prm_rollouts,
                                         mode=self.cfg.prm_labels, separator=sep,
                                         last_number_fallback=self.cfg.last_number_fallback)
        cost["seconds"] = time.perf_counter() - start
        examples = []
        for k, (c, row, y, ok, q) in enumerate(zip(completions, steps, labels, correct, q_rows)):
            if row:  # an empty completion has no step to learn from
                examples.append({"text": self.rm.texts([row], [prompt_rows[k]])[0], "label": y, "correct": ok,
                                 "question": q, "completion": c, "steps": row, "row": int(q)})
        if self.reference_reward is not None:
            cost["reference"] = self._reference_labels(examples, questions)
        return examples, cost

    def _reference_labels(self, examples: list[dict], questions) -> list[list[float]]:
        """The reference process reward's step scores for ``examples`` (e.g. the synthetic task's step checker)."""
        columns = {c: [questions[e["row"]][c] for e in examples] for c in questions.column_names if c != "prompt"}
        return self.reference_reward([e["completion"] for e in examples], [e["steps"] for e in examples], **columns)

    def _score(self, examples: list[dict]) -> list[float]:
        """The reward model's score of each example's whole completion (process: the mean of its steps)."""
        scores = self.rm.score_texts([e["text"] for e in examples])
        if self.cfg.supervision == "outcome":
            return scores
        return [sum(row) / len(row) if row else 0.0 for row in scores]

    def _agreement(self, examples: list[dict]) -> float:
        """Share of (right, wrong) pairs of the same question that the reward model orders right."""
        by_question: dict[int, list[tuple[float, float]]] = {}
        for e, s in zip(examples, self._score(examples)):
            by_question.setdefault(e["question"], []).append((e["correct"], s))
        right = total = 0
        for pairs in by_question.values():
            for label_a, score_a in pairs:
                for label_b, score_b in pairs:
                    if label_a > label_b:
                        total += 1
                        right += score_a > score_b
        return right / total if total else float("nan")

    @staticmethod
    def _step_agreement(predicted: list[list[float]], reference: list[list[float]]) -> float:
        pairs = [(p >= 0.5, r >= 0.5) for ps, rs in zip(predicted, reference) for p, r in zip(ps, rs)
                 if not (math.isnan(p) or math.isnan(r))]
        return sum(a == b for a, b in pairs) / len(pairs) if pairs else float("nan")

    def _update_reward_model(self, policy, tokenizer, iteration: int, steps: int) -> dict:
        collect = self._annotated_samples if self.cfg.supervision == "process" else self._labelled_samples
        fresh, fresh_cost = collect(policy, tokenizer, self.train_questions, iteration, salt=1)
        held, held_cost = collect(policy, tokenizer, self.heldout, iteration, salt=2)
        held_texts, held_labels = [e["text"] for e in held], [e["label"] for e in held]
        before = self.rm.accuracy(held_texts, held_labels)
        rng = random.Random(f"{self.cfg.seed}-replay-{iteration}")
        mixed, replay_fraction = self.buffer.mix(fresh, self.cfg.replay_ratio, rng)
        generator = torch.Generator().manual_seed(self.cfg.seed * 1000 + iteration)
        losses = self.rm.fit([e["text"] for e in mixed], [e["label"] for e in mixed], steps, generator=generator)
        self.buffer.add(fresh, iteration)
        metrics = {
            "iterative/iteration": float(iteration),
            "iterative/rm_accuracy_before": before,
            "iterative/rm_accuracy": self.rm.accuracy(held_texts, held_labels),
            "iterative/replay_fraction": replay_fraction,
            "iterative/rm_policy_agreement": self._agreement(held),
            "iterative/policy_sample_accuracy": sum(e["correct"] for e in fresh + held) / max(len(fresh + held), 1),
            "iterative/rm_loss": sum(losses) / len(losses) if losses else float("nan"),
        }
        if self.cfg.supervision == "process":
            samples = len(fresh) + len(held)
            metrics.update({
                "iterative/annotation_rollouts": float(fresh_cost["rollouts"] + held_cost["rollouts"]),
                "iterative/annotation_tokens": float(fresh_cost["tokens"] + held_cost["tokens"]),
                "iterative/annotation_seconds": fresh_cost["seconds"] + held_cost["seconds"],
                "iterative/annotation_tokens_per_sample": (fresh_cost["tokens"] + held_cost["tokens"]) / max(samples, 1),
            })
            if "reference" in held_cost:
                metrics["iterative/annotation_reference_agreement"] = self._step_agreement(held_labels,
                                                                                          held_cost["reference"])
                metrics["iterative/prm_reference_agreement"] = self._step_agreement(
                    self.rm.score_texts(held_texts), held_cost["reference"])
        return metrics

    # ----- the loop -----------------------------------------------------------------------------
    def _continue_data(self, trainer, iteration: int) -> None:
        """Hand ``trainer`` the prompts a single long run would reach next, in order.

        Each iteration's trainer is built afresh with the same dataset and seed, so TRL's sampler would
        start every iteration at the same prompts. Instead the trainer gets the rows
        ``iteration * consumed .. (iteration + 1) * consumed`` of one long run (a fresh permutation per
        pass over the data, when the trainer shuffles), unshuffled: across iterations the loop walks
        through the data as one long run does, and a resumed loop finds its place from the iteration
        number alone.
        """
        dataset = trainer.train_dataset
        consumed = prompts_consumed(trainer.args, self.cfg.policy_steps)
        rows = long_run_order(len(dataset), iteration * consumed, consumed, self.cfg.seed,
                              shuffle=getattr(trainer, "shuffle_dataset", True))
        trainer.train_dataset = dataset.select(rows)
        trainer.shuffle_dataset = False

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
            trainer = policy = None  # no reference to the last iteration's trainer while the next is built
            if phase == "reward_model":  # resumed between the phases: the trained policy is on disk
                policy, tokenizer = self._load_trained(os.path.join(folder, "policy"))
            else:
                self._release_trainer()
                trainer = self.factory(self._policy_source(iteration), self.rm, run_dir)
                trainer.args.max_steps = self.cfg.policy_steps
                self._continue_data(trainer, iteration)
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


__all__ = ["IterativeConfig", "IterativeGRPO", "ReplayBuffer", "annotate_steps", "continue_prompt", "long_run_order",
           "prompts_consumed", "reset_reference", "split_steps"]
