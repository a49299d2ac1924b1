"""MathEvalCallback: benchmark accuracy logged during training, beside the training metrics.
WallClock: a run's wall time added up over resumed segments, kept in ``trainer_state.json``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from .evaluation import summarise, generate_completions, score_samples


def _load_benchmarks(benchmarks, paths, template, limit):
    from datasets import Dataset

    from .data import DATASETS, drop_rows_without_gold, load_math_dataset

    if isinstance(benchmarks, Mapping):
        loaded = dict(benchmarks)
    else:
        loaded = {}
        for name in benchmarks:
            if name not in DATASETS:
                raise ValueError(
                    f"unknown benchmark {name!r} for MathEvalCallback; known: {sorted(DATASETS)} "
                    "(or pass a dict of name -> Dataset, e.g. a grpo_ext.data.synthetic set)"
                )
            loaded[name] = load_math_dataset(name, "test", path=(paths or {}).get(name), template=template)
    for name, ds in loaded.items():
        if not isinstance(ds, Dataset) or not {"prompt", "answer"} <= set(ds.column_names):
            raise ValueError(f"benchmark {name!r} must be a Dataset with 'prompt' and 'answer' columns")
        ds, _ = drop_rows_without_gold(ds, f"MathEvalCallback benchmark {name!r}")
        if len(ds) == 0:
            raise ValueError(f"benchmark {name!r} has no row with a gold answer")
        loaded[name] = ds
        if limit is not None:
            loaded[name] = ds.select(range(min(limit, len(ds))))
    if not loaded:
        raise ValueError("MathEvalCallback needs at least one benchmark")
    return loaded


class MathEvalCallback(TrainerCallback):
    """Evaluate the policy on held-out math sets every ``eval_steps`` (and at the start and end).

    Logs ``eval/<benchmark>/top1`` (and ``eval/<benchmark>/maj@k``, ``.../pass@k`` with ``k > 1``)
    through the trainer's own ``log``, so they land in ``trainer_state.json``, tensorboard, wandb
    or trackio with the rest.

    - **Processes**: every process generates for its shard of each benchmark; the completions are
      gathered and scored on the main process, which logs.
    - **PEFT**: generation uses the policy as trained (adapter on).
    - **DeepSpeed ZeRO-3**: parameters are gathered for generation (``trl``'s
      ``unwrap_model_for_generation``), on every process together.
    - **RNG**: sampling runs under its own seed inside ``torch.random.fork_rng``: a run with the
      callback trains exactly as one without it.

    Args:
        benchmarks: benchmark names (``gsm8k``, ``math500``, ``cmath``, ... loaded with
            :func:`grpo_ext.data.load_math_dataset`, test split, ``paths`` for local files) or a
            dict of name -> Dataset with ``prompt`` and ``answer`` columns.
        eval_steps: evaluate every this many optimizer steps (default: the trainer's
            ``eval_steps``, else ``logging_steps``).
        k: samples per question for maj@k / pass@k; 1 for greedy top-1 only.
        limit: evaluate the first ``limit`` questions of each benchmark.
    """

    def __init__(self, benchmarks: Sequence[str] | Mapping[str, Any], *, trainer=None, eval_steps: int | None = None,
                 k: int = 1, max_new_tokens: int = 512, batch_size: int = 64, limit: int | None = None,
                 paths: Mapping[str, str] | None = None, template: str = "chat", last_number_fallback: bool = False,
                 temperature: float = 0.7, seed: int = 0):
        self.benchmarks = _load_benchmarks(benchmarks, paths, template, limit)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.trainer = trainer
        self.eval_steps = eval_steps
        self.k, self.max_new_tokens, self.batch_size = k, max_new_tokens, batch_size
        self.last_number_fallback, self.temperature, self.seed = last_number_fallback, temperature, seed
        self._last_step: int | None = None

    def bind(self, trainer) -> "MathEvalCallback":
        """Attach the trainer whose policy is evaluated and whose logger is used."""
        self.trainer = trainer
        return self

    def _every(self, args, state=None) -> int:
        """Evaluation interval in optimizer steps. A fractional ``eval_steps`` / ``logging_steps`` (a share of
        the run, as transformers allows) is read from the trainer's state, which holds it in steps."""
        if self.eval_steps:
            return max(1, int(self.eval_steps))
        for name in ("eval_steps", "logging_steps"):
            value = getattr(args, name, None)
            if value and value < 1 and state is not None:
                value = getattr(state, name, None)  # transformers' conversion: ceil(max_steps * share)
            if value:
                return max(1, int(value))
        return 1

    def evaluate(self) -> dict[str, float]:
        """Run the benchmarks now; returns the metrics (on the main process; {} elsewhere)."""
        from accelerate.utils import gather_object
        from trl.models import unwrap_model_for_generation

        trainer = self.trainer
        if trainer is None:
            raise RuntimeError("MathEvalCallback is not bound to a trainer: pass trainer= or call bind(trainer)")
        acc = trainer.accelerator
        tokenizer = trainer.processing_class
        ds3 = getattr(trainer.args, "ds3_gather_for_generation", True)
        metrics: dict[str, float] = {}
        with unwrap_model_for_generation(trainer.model_wrapped, acc, gather_deepspeed3_params=ds3) as model:
            for name, ds in self.benchmarks.items():
                shard = ds.shard(num_shards=acc.num_processes, index=acc.process_index, contiguous=True)
                prompts = list(shard["prompt"])
                common = dict(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, seed=self.seed)
                greedy = [c[0] for c in generate_completions(model, tokenizer, prompts, **common)] if prompts else []
                sampled = (generate_completions(model, tokenizer, prompts, num_samples=self.k, do_sample=True,
                                                temperature=self.temperature, **common)
                           if self.k > 1 and prompts else None)
                greedy = gather_object(greedy)
                sampled = gather_object(sampled) if self.k > 1 else None
                if acc.is_main_process:
                    golds = [str(a) for a in ds["answer"]]
                    records = score_samples(greedy, sampled, golds, self.k, self.last_number_fallback)
                    for key, value in summarise(records, self.k).items():
                        if key != "n":
                            metrics[f"eval/{name}/{key}"] = value
        return metrics

    def _log_now(self, state) -> None:
        metrics = self.evaluate()
        self._last_step = state.global_step
        if metrics:
            self.trainer.log(metrics)

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None:
            raise RuntimeError("MathEvalCallback is not bound to a trainer: pass trainer= or call bind(trainer)")
        self._log_now(state)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self._every(args, state) == 0:
            metrics = self.evaluate()
            self._last_step = state.global_step
            # logged with this step's training metrics, in the trainer's own logging row
            for key, value in metrics.items():
                self.trainer._metrics["train"][key].append(value)
            control.should_log = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self._last_step != state.global_step:
            self._log_now(state)


class WallClock(TrainerCallback, ExportableState):
    """A run's wall time over all its segments: a run resumed from a checkpoint adds to the time saved with it.

    Kept in ``trainer_state.json`` (``stateful_callbacks["WallClock"]``: ``seconds`` and ``segments``) at
    each checkpoint and at the end of training, where :mod:`grpo_ext.report` reads it. TRL's own
    ``train_runtime`` covers the last ``train()`` call only. Time a segment spent after its last
    checkpoint is not counted when the process is killed (nothing saves it); an interrupted demo saves
    a checkpoint first. :class:`grpo_ext.GRPOTrainer` adds it by itself.
    """

    def __init__(self, seconds: float = 0.0, segments: int = 0):
        self.previous = float(seconds)  # the segments before this one
        self.segments = int(segments)
        self._start: float | None = None

    @property
    def seconds(self) -> float:
        return self.previous + (time.time() - self._start if self._start is not None else 0.0)

    @seconds.setter
    def seconds(self, value: float) -> None:
        # transformers restores a stateful callback's saved attributes by setting them
        # (restore_callback_states_from_checkpoint): the saved total becomes the earlier segments' time
        self.previous, self._start = float(value), None

    def state(self) -> dict:
        return {"args": {}, "attributes": {"seconds": round(self.seconds, 3), "segments": self.segments}}

    def on_train_begin(self, args, state, control, **kwargs):
        saved = (state.stateful_callbacks or {}).get(type(self).__name__) if state.global_step > 0 else None
        if isinstance(saved, list):
            saved = saved[-1] if saved else None
        attributes = (saved or {}).get("attributes", {})
        self.previous = float(attributes.get("seconds", 0.0))
        self.segments = int(attributes.get("segments", 0)) + 1
        self._start = time.time()

    def on_train_end(self, args, state, control, **kwargs):
        if state.stateful_callbacks is None:
            state.stateful_callbacks = {}
        state.stateful_callbacks[type(self).__name__] = self.state()
