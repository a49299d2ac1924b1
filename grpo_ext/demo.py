"""The embedded default: DeepSeekMath's result in miniature, on a laptop CPU, with no network.

The paper trained RL only on English math data (GSM8K + MATH) and saw gains in domain and out of
domain (Chinese CMATH). In miniature:

1. build a ~1M-parameter character-level model locally;
2. supervised warm-up (``trl.SFTTrainer``) on 2-digit addition in BOTH forms, English ``12+34=``
   and Chinese ``12加34等于``;
3. evaluate greedy top-1 on held-out pairs in both forms;
4. GRPO (``grpo_ext.GRPOTrainer``, the paper's loss and KL, ``accuracy_reward``) on the ENGLISH
   form only;
5. evaluate again and print the paper-style table: in domain (English) and out of domain
   (Chinese), before -> after; write the plots (accuracy before/after, training reward, and the
   run report of :mod:`grpo_ext.report` with both forms' accuracy during GRPO).

Both evaluations also draw ``sample_k`` (16) samples per question at temperature 0.7 and report
maj@16 and pass@16: the paper's figure 7 (RL lifted maj@K but not pass@K) in miniature.

Ctrl-C during a training stage finishes the step, saves a checkpoint and stops
(:class:`DemoInterrupted`); the same command again resumes that stage, and the stages already
finished are not redone (``output_dir/demo_state.json``). A finished run is redone from the start.

With ``supervision="process"`` (``grpo-ext demo --supervision process``) the task has two steps,
``12+34+5=`` answered ``12+34=46\n46+5=51``, the warm-up teaches that form, and GRPO adds the
paper's process supervision: every line is scored by the programmatic step checker
(:func:`grpo_ext.rewards.process.step_check_reward`, against the reference solution) and the token
advantages are the outcome advantage plus the process advantage. The table then also reports step
correctness: the share of reference steps the greedy completions get right.

Everything is seeded: the same ``--seed`` gives the same numbers on the same machine.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict

import torch
from datasets import Dataset
from transformers import TrainerCallback

from .data.synthetic import Problem, render
from .evaluation import evaluate, plot_comparison
from .iterative import _last_checkpoint

from .demo_config import (  # noqa: F401  (re-exported: grpo_ext.demo is where users look for them)
    FORMS, IN_DOMAIN, OUT_OF_DOMAIN, OUTPUTS, PROCESS_DEFAULTS, STATE_FILE, SUPERVISIONS, TOTAL_PAIRS, DemoConfig,
    DemoConfigError, DemoInterrupted,
)


def _pairs(seed: int, eval_pairs: int, steps_task: bool = False) -> tuple[list[tuple], list[tuple]]:
    """(train, held-out) operand tuples: (a, b) pairs, plus a one-digit third operand c for the two-step task.

    Held-out questions never share their (a, b) pair with a training question.
    """
    pairs = [(a, b) for a in range(100) for b in range(100)]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    if not 0 < eval_pairs < len(pairs):
        raise ValueError(f"eval_pairs must be between 1 and {len(pairs) - 1}, got {eval_pairs}")
    if steps_task:
        pairs = [(a, b, rng.randint(1, 9)) for a, b in pairs]
    return pairs[eval_pairs:], pairs[:eval_pairs]


def _rows(items, language):
    rows = []
    for start, *operands in items:
        problem = Problem(start=start, ops=[("+", x) for x in operands])
        style = "compact" if len(operands) == 1 else "steps"
        prompt, solution = render(problem, language, style)
        rows.append({"prompt": prompt, "answer": str(problem.answer), "solution": solution, "source": language})
    return rows


def step_correctness(completions: list[str], solutions: list[str]) -> float:
    """Share of the reference solutions' steps that the completions get right (strict step checker)."""
    from .rewards.process import step_check_reward

    steps = [[line.strip() for line in c.split("\n") if line.strip()] for c in completions]
    scores = step_check_reward(completions, steps, solution=solutions)
    right = total = 0
    for row, solution in zip(scores, solutions):
        n = len(solution.splitlines())
        right += sum(row[:n])
        total += n
    return right / max(total, 1)


def _accuracy(model, tokenizer, held, language, cfg) -> dict[str, float]:
    """Greedy top-1 (and step correctness on the two-step task) on the held-out questions, and with
    ``sample_k``: maj@k and pass@k of that many samples per question at ``sample_temperature``."""
    ds = Dataset.from_list(_rows(held, language))
    k = max(cfg.sample_k, 1)
    result = evaluate(model, tokenizer, ds, k=k, temperature=cfg.sample_temperature, max_new_tokens=cfg.completion_length,
                      batch_size=500, seed=cfg.seed, last_number_fallback=True, keep_samples=True, group_by=())
    metrics = {key: result["metrics"][key] for key in ("top1", f"maj@{k}", f"pass@{k}") if key in result["metrics"]}
    if cfg.steps_task:
        metrics["steps"] = step_correctness([r["greedy"] for r in result["records"]], ds["solution"])
    return metrics


def _both(model, tokenizer, held, cfg, label: str) -> dict[str, dict[str, float]]:
    out = {}
    with _bar(cfg, total=len(FORMS), desc=label, unit="form") as bar:
        for name, language in FORMS.items():
            out[name] = _accuracy(model, tokenizer, held, language, cfg)
            bar.update(1)
    return out


# ----- progress, quiet output, Ctrl-C --------------------------------------------------------
@contextmanager
def _bar(cfg: DemoConfig, **kwargs):
    from tqdm.auto import tqdm

    bar = tqdm(disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr, **kwargs)
    try:
        yield bar
    finally:
        bar.close()


class StageBar(TrainerCallback):
    """One progress bar for a training stage, with its latest ``metric`` (instead of TRL's bar and log dicts)."""

    def __init__(self, cfg: DemoConfig, desc: str, metric: str, interrupt: "GracefulInterrupt | None" = None):
        self.cfg, self.desc, self.metric, self.interrupt = cfg, desc, metric, interrupt
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.desc, unit="step",
                        disable=not self.cfg.progress, dynamic_ncols=True, file=sys.stderr)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and isinstance(logs.get(self.metric), (int, float)):
            self.bar.set_postfix({self.metric: f"{logs[self.metric]:.3g}"}, refresh=False)

    def on_save(self, args, state, control, **kwargs):
        if self.interrupt is not None and self.interrupt.requested:  # the run stops right after this save
            self.on_train_end(args, state, control)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class GracefulInterrupt(TrainerCallback):
    """Ctrl-C while a trainer runs: finish the step, save a checkpoint, raise :class:`DemoInterrupted`.

    Outside a training stage, or on a second Ctrl-C, it stops at once (``KeyboardInterrupt``); the
    stages already finished are kept either way. Used as a context manager around the whole run.
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.stage = ""
        self.training = self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

    def _on_sigint(self, signum, frame):
        if not self.training or self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\nCtrl-C: stopping the {self.stage} after this step and saving a checkpoint "
              "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True  # the trainer saves a checkpoint right after this step (on_save below)

    def on_save(self, args, state, control, **kwargs):
        if self.requested:
            self.training = False
            raise DemoInterrupted(self.stage, state.global_step, state.max_steps, self.output_dir)

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False


def _drop_checkpoints(run_dir: str) -> None:
    """A finished stage's resume points are not needed any more (and would look like a run to ``report``)."""
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            if name.startswith("checkpoint-"):
                shutil.rmtree(os.path.join(run_dir, name))


def _stage_callbacks(trainer, cfg: DemoConfig, interrupt: GracefulInterrupt | None, desc: str, metric: str):
    """Our bar instead of transformers' (its tqdm bar and printed log dicts), the Ctrl-C handling, the wall clock."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from .callbacks import WallClock

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StageBar(cfg, desc, metric, interrupt))
    if not any(isinstance(cb, WallClock) for cb in trainer.callback_handler.callbacks):
        trainer.add_callback(WallClock())
    if interrupt is not None:
        trainer.add_callback(interrupt)


def _cpu_args(cfg: DemoConfig, **kw):
    from transformers import TrainingArguments

    # transformers 5.24 renamed gradient_checkpointing (and warns about the old name): the new one where it exists
    new = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    return dict(bf16=False, use_cpu=True, report_to="none", save_strategy="no", seed=cfg.seed, disable_tqdm=True,
                **{"activation_checkpointing" if new else "gradient_checkpointing": False}, **kw)


# ----- stages --------------------------------------------------------------------------------
def warm_up(cfg: DemoConfig, train_pairs, tokenizer, model, interrupt: GracefulInterrupt | None = None):
    """Supervised warm-up on both forms mixed (the model must answer before RL can reward it).

    Resumes from the newest checkpoint in ``output_dir/warmup`` (an interrupted run leaves one).
    """
    from trl import SFTConfig, SFTTrainer

    target = "solution" if cfg.steps_task else "answer"
    rows = [{"prompt": r["prompt"], "completion": r[target]} for lang in ("en", "zh") for r in _rows(train_pairs, lang)]
    random.Random(cfg.seed).shuffle(rows)
    args = SFTConfig(
        output_dir=os.path.join(cfg.output_dir, "warmup"), max_steps=cfg.warmup_steps,
        per_device_train_batch_size=cfg.warmup_batch_size, learning_rate=cfg.warmup_lr, lr_scheduler_type="constant",
        logging_steps=max(1, cfg.warmup_steps // 10), **_cpu_args(cfg),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    _stage_callbacks(trainer, cfg, interrupt, "warm-up", "loss")
    trainer.train(resume_from_checkpoint=_last_checkpoint(args.output_dir))
    return trainer.model


def grpo(cfg: DemoConfig, train_pairs, held, tokenizer, model_path, *, reward_funcs=None, output_dir=None,
         steps=None, watch=True, train=True, interrupt: GracefulInterrupt | None = None, process_reward_funcs=None):
    """GRPO on the English form only, with the paper's loss (grpo), beta and k3 KL.

    A MathEvalCallback follows both forms on up to 200 held-out pairs every tenth of the run
    (without touching the training RNG stream), for the report's accuracy curves. Returns the
    trainer, trained (resumed from the newest checkpoint in its output_dir, if any), or with
    ``train=False`` ready to train (the iterative loop trains it).
    """
    from .callbacks import MathEvalCallback
    from .config import GRPOConfig
    from .rewards import get_reward_funcs
    from .trainer import GRPOTrainer

    steps = steps or cfg.grpo_steps
    args = GRPOConfig(
        output_dir=output_dir or os.path.join(cfg.output_dir, "grpo"), max_steps=steps,
        per_device_train_batch_size=cfg.grpo_batch_size, num_generations=cfg.num_generations,
        max_completion_length=cfg.completion_length, temperature=1.0, learning_rate=cfg.grpo_lr, lr_scheduler_type="constant",
        beta=cfg.beta, loss_type="grpo", kl_estimator="k3", use_bias_correction_kl=False,  # eq. 3 as written
        logging_steps=10, model_init_kwargs={"dtype": "float32"}, supervision=cfg.supervision,
        process_reward="step_check", step_separator="\n", **_cpu_args(cfg),
    )
    callbacks = []
    if watch:
        forms = {lang: Dataset.from_list(_rows(held[:200], lang)) for lang in ("en", "zh")}
        callbacks.append(MathEvalCallback({"english": forms["en"], "chinese": forms["zh"]},
                                          eval_steps=max(1, steps // 10), max_new_tokens=cfg.completion_length,
                                          batch_size=500, last_number_fallback=True))
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=reward_funcs or get_reward_funcs(["accuracy"], last_number_fallback=True),
        args=args,
        train_dataset=Dataset.from_list(_rows(train_pairs, "en")),
        processing_class=tokenizer,
        callbacks=callbacks,
        process_reward_funcs=process_reward_funcs,
    )
    _stage_callbacks(trainer, cfg, interrupt, "GRPO", "reward")
    if train:
        trainer.train(resume_from_checkpoint=_last_checkpoint(args.output_dir))
    return trainer


def iterative_grpo(cfg: DemoConfig, train_pairs, held, tokenizer, warm_dir: str,
                   interrupt: GracefulInterrupt | None = None):
    """DeepSeekMath's iterative RL in miniature, with a learned outcome or process reward model.

    The reward model starts from the warmed-up policy (the paper initialises its reward model from the
    SFT model): its body with a fresh scoring head (outcome), or the whole causal LM, reading a step
    tag ``@`` and answering ``+`` / ``-`` (process, Math-Shepherd's format). It is trained on the
    warmed-up policy's labelled samples first, then again after each of ``iterations`` GRPO stages on
    fresh samples of the changed policy, with 10% replayed history. Outcome: the policy's reward is the
    reward model's probability plus ``accuracy_reward`` (with ``rm_only`` the reward model alone, as
    in the paper; a 1M-parameter reward model is then hacked within one stage: README). Process: the
    step rewards come from the learned process reward model, labelled by Math-Shepherd's estimate
    (``prm_rollouts`` continuations of each step's prefix by the current policy), beside
    ``accuracy_reward`` as the outcome reward; the step checker only measures how far the labels and
    the model agree with it. Returns the loop (its ``log`` and last ``trainer``); an interrupted loop
    continues where it stopped.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from .iterative import IterativeConfig, IterativeGRPO
    from .rewards import get_reward_funcs
    from .rewards.models import OutcomeRewardModel, ProcessRewardModel
    from .rewards.process import step_check_reward

    process = cfg.supervision == "process"
    if process:
        rm = ProcessRewardModel(AutoModelForCausalLM.from_pretrained(warm_dir), tokenizer, step_tag="@",
                                good_token="+", bad_token="-", learning_rate=cfg.rm_lr, batch_size=64, max_length=96)
    else:
        body = AutoModelForSequenceClassification.from_pretrained(warm_dir, num_labels=1)
        rm = OutcomeRewardModel(body, tokenizer, learning_rate=cfg.rm_lr, batch_size=64)
    questions = Dataset.from_list(_rows(train_pairs[: cfg.rm_questions], "en"))
    steps = max(1, cfg.grpo_steps // cfg.iterations)
    gold = [] if cfg.rm_only else get_reward_funcs(["accuracy"], last_number_fallback=True)

    def factory(model, reward_model, output_dir):
        if process:
            return grpo(cfg, train_pairs, held, tokenizer, model, reward_funcs=gold or None, output_dir=output_dir,
                        steps=steps, watch=False, train=False, interrupt=interrupt, process_reward_funcs=[reward_model])
        return grpo(cfg, train_pairs, held, tokenizer, model, reward_funcs=[reward_model, *gold],
                    output_dir=output_dir, steps=steps, watch=False, train=False, interrupt=interrupt)

    loop = IterativeGRPO(factory, warm_dir, rm, questions, IterativeConfig(
        output_dir=os.path.join(cfg.output_dir, "iterative"), iterations=cfg.iterations, policy_steps=steps,
        rm_samples=4, rm_steps=cfg.rm_steps, initial_rm_steps=cfg.rm_steps, max_new_tokens=cfg.completion_length,
        last_number_fallback=True, seed=cfg.seed, supervision=cfg.supervision, prm_rollouts=cfg.prm_rollouts,
        prm_labels=cfg.prm_labels), reference_reward=step_check_reward if process else None)
    loop.run(resume=True)
    return loop


# ----- the run -------------------------------------------------------------------------------
def _open_run(cfg: DemoConfig) -> dict:
    """The run's saved progress: an unfinished run with the same settings is resumed; else a fresh start."""
    path = os.path.join(cfg.output_dir, STATE_FILE)
    if cfg.resume and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if not saved.get("finished"):
            settings = cfg.settings()
            changed = [k for k in settings if saved.get("config", {}).get(k) != settings[k]]
            if changed:
                k = changed[0]
                raise DemoConfigError(
                    f"{cfg.output_dir}/ holds an unfinished demo run with other settings ({k} "
                    f"{saved['config'].get(k)!r} there, {settings[k]!r} here): rerun with its settings to resume it, "
                    "or add --resume false to start over (or pass another --output_dir)")
            saved["resumed"] = True
            return saved
    if os.path.isdir(cfg.output_dir) and os.listdir(cfg.output_dir) and not any(
            os.path.exists(os.path.join(cfg.output_dir, name)) for name in (STATE_FILE, "results.json")):
        raise DemoConfigError(f"{cfg.output_dir}/ exists and holds no demo run: pass another --output_dir (the demo "
                              "clears its own folder before a fresh start, and nothing else)")
    for name in OUTPUTS:  # a fresh start: no stale checkpoint or stage of an earlier run is picked up
        target = os.path.join(cfg.output_dir, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
    os.makedirs(cfg.output_dir, exist_ok=True)
    run = {"config": cfg.settings(), "done": [], "seconds": {}, "segments": 0, "finished": False}
    _save_run(cfg, run)
    return run


def _save_run(cfg: DemoConfig, run: dict) -> None:
    path = os.path.join(cfg.output_dir, STATE_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in run.items() if k != "resumed"}, f, indent=2)
    os.replace(path + ".tmp", path)


@contextmanager
def _timed(cfg: DemoConfig, run: dict, stage: str):
    """Adds this segment's time in ``stage`` to the run's (kept on Ctrl-C too); marks it done on success."""
    start = time.time()
    try:
        yield
    finally:
        run["seconds"][stage] = round(run["seconds"].get(stage, 0.0) + time.time() - start, 1)
        _save_run(cfg, run)
    run["done"].append(stage)
    _save_run(cfg, run)


def run_demo(cfg: DemoConfig | None = None) -> dict:
    """Run the miniature experiment; returns (and writes to ``output_dir/results.json``) its results.

    Ctrl-C stops a training stage after a saved checkpoint (:class:`DemoInterrupted`); the same call
    again resumes it. A finished run is redone from the start.
    """
    cfg = cfg or DemoConfig()
    cfg.validate()
    with GracefulInterrupt(cfg.output_dir) as interrupt:
        return _run(cfg, interrupt)


def _run(cfg: DemoConfig, interrupt: GracefulInterrupt) -> dict:
    from transformers import AutoModelForCausalLM

    from .report import make_report, plot_reward_curve
    from .tiny import build_char_tokenizer, build_tiny_model

    run = _open_run(cfg)
    run["segments"] += 1
    if run.get("resumed"):
        _say(cfg, f"resuming the unfinished run in {cfg.output_dir}/ (finished: {', '.join(run['done']) or 'none'}; "
                  "--resume false starts over)")
    torch.manual_seed(cfg.seed)
    train_pairs, held = _pairs(cfg.seed, cfg.eval_pairs, cfg.steps_task)
    tokenizer = build_char_tokenizer()
    warm_dir = os.path.join(cfg.output_dir, "warmup-model")
    k = max(cfg.sample_k, 1)
    sampled = f" and {k} samples per question (maj@{k}, pass@{k})" if cfg.sample_k else ""

    done = " (done in an earlier segment)"
    _say(cfg, f"[1/4] supervised warm-up on both forms: {cfg.warmup_steps} steps" + (done * ("warmup" in run["done"])))
    if "warmup" in run["done"]:
        model = AutoModelForCausalLM.from_pretrained(warm_dir)
    else:
        interrupt.stage = "warm-up"
        with _timed(cfg, run, "warmup"):
            model = warm_up(cfg, train_pairs, tokenizer, build_tiny_model(tokenizer, seed=cfg.seed), interrupt)
            model.save_pretrained(warm_dir)
            tokenizer.save_pretrained(warm_dir)
        shutil.rmtree(os.path.join(cfg.output_dir, "warmup"), ignore_errors=True)  # only its resume points

    _say(cfg, f"[2/4] evaluating on {cfg.eval_pairs} held-out pairs per form: greedy top-1{sampled}")
    with _timed(cfg, run, "eval_before"):
        before = _both(model, tokenizer, held, cfg, "evaluating before GRPO")

    grpo_dir = os.path.join(cfg.output_dir, "grpo")
    model_dir = os.path.join(cfg.output_dir, "model")
    if cfg.iterative:
        grpo_dir = os.path.join(cfg.output_dir, "iterative", f"iteration-{cfg.iterations - 1}", "policy-run")
        _say(cfg, f"[3/4] iterative GRPO on the English form only: {cfg.iterations} iterations of "
                  f"{max(1, cfg.grpo_steps // cfg.iterations)} steps against a learned reward model"
                  + done * ("grpo" in run["done"]))
    else:
        _say(cfg, f"[3/4] GRPO on the English form only: {cfg.grpo_steps} steps" + done * ("grpo" in run["done"]))
    if "grpo" in run["done"]:
        trained = AutoModelForCausalLM.from_pretrained(model_dir)
        if cfg.iterative:
            with open(os.path.join(cfg.output_dir, "iterative_log.json"), encoding="utf-8") as f:
                log = json.load(f)
    else:
        interrupt.stage = "GRPO"
        with _timed(cfg, run, "grpo"):
            if cfg.iterative:
                loop = iterative_grpo(cfg, train_pairs, held, tokenizer, warm_dir, interrupt)
                trainer, log = loop.trainer, loop.log
                with open(os.path.join(cfg.output_dir, "iterative_log.json"), "w", encoding="utf-8") as f:
                    json.dump(log, f)
            else:
                trainer = grpo(cfg, train_pairs, held, tokenizer, warm_dir, interrupt=interrupt)
            trainer.save_model(model_dir)
            tokenizer.save_pretrained(model_dir)
            trainer.state.save_to_json(os.path.join(grpo_dir, "trainer_state.json"))
            trained = trainer.model
        _drop_checkpoints(grpo_dir)
    with open(os.path.join(grpo_dir, "trainer_state.json"), encoding="utf-8") as f:
        log_history = json.load(f)["log_history"]

    _say(cfg, "[4/4] evaluating again")
    with _timed(cfg, run, "eval_after"):
        after = _both(trained, tokenizer, held, cfg, "evaluating after GRPO")

    results = {
        "supervision": cfg.supervision,
        "in_domain": {"before": before[IN_DOMAIN]["top1"], "after": after[IN_DOMAIN]["top1"]},
        "out_of_domain": {"before": before[OUT_OF_DOMAIN]["top1"], "after": after[OUT_OF_DOMAIN]["top1"]},
        "wall_seconds": round(sum(run["seconds"].values()), 1),
        "warmup_seconds": run["seconds"].get("warmup", 0.0),
        "grpo_seconds": run["seconds"].get("grpo", 0.0),
        "segments": run["segments"],
        "config": asdict(cfg),
        "torch_threads": torch.get_num_threads(),
    }
    if cfg.sample_k:
        results["sampled"] = {"k": k, "temperature": cfg.sample_temperature, **{
            side: {f"{m}@{k}": {"before": before[form][f"{m}@{k}"], "after": after[form][f"{m}@{k}"]}
                   for m in ("maj", "pass")}
            for side, form in (("in_domain", IN_DOMAIN), ("out_of_domain", OUT_OF_DOMAIN))}}
    if cfg.iterative:
        results["iterative"] = log
    if cfg.steps_task:
        results["step_correctness"] = {
            "in_domain": {"before": before[IN_DOMAIN]["steps"], "after": after[IN_DOMAIN]["steps"]},
            "out_of_domain": {"before": before[OUT_OF_DOMAIN]["steps"], "after": after[OUT_OF_DOMAIN]["steps"]},
        }

    title = "Miniature DeepSeekMath: GRPO on English only"
    if cfg.supervision == "process":
        title += ", process supervision"
    if cfg.iterative:
        title += ", iterative RL"
    rows = demo_rows(before, after)
    table = demo_table(rows)
    if cfg.iterative:
        table += "\n\n" + iterative_table(log)
    plot_comparison([(f"{form.split(' (')[0]}\n{metric}", b, a) for form, metric, b, a in rows],
                    os.path.join(cfg.output_dir, "accuracy.png"), metric="held-out", title=title)
    plot_reward_curve(log_history, os.path.join(cfg.output_dir, "reward.png"))
    make_report([grpo_dir], output=os.path.join(cfg.output_dir, "report"))
    with open(os.path.join(cfg.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({**results, "table": table}, f, indent=2)
    run["finished"] = True
    _save_run(cfg, run)
    results["table"] = table
    resumed = f" over {run['segments']} segments" if run["segments"] > 1 else ""
    print("\n" + table + f"\nwall time {results['wall_seconds']:.0f} s{resumed}; results, model and plots in "
          f"{cfg.output_dir}/", flush=True)
    return results


def demo_rows(before: dict, after: dict) -> list[tuple[str, str, float, float]]:
    """(form, metric, before, after) for every form and metric measured, top-1 first."""
    names = {"top1": "top-1 (greedy)", "steps": "steps right (greedy)"}
    return [(form, names.get(metric, metric), value, after[form][metric])
            for form in before for metric, value in before[form].items()]


def demo_table(rows: list[tuple[str, str, float, float]]) -> str:
    """The paper-style table: form, metric, before -> after, delta, in points."""
    lines = ["| form | metric | before | after | delta |", "|---|---|---|---|---|"]
    lines += [f"| {form} | {metric} | {100 * b:.1f} | {100 * a:.1f} | {100 * (a - b):+.1f} |"
              for form, metric, b, a in rows]
    return "\n".join(lines)


def iterative_table(log: list[dict]) -> str:
    """The reward model's side of an iterative run, one row per update (iteration -1: before RL)."""
    rows = ["| iteration | policy samples right | RM accuracy before -> after update | RM pair ranking | replayed |",
            "|---|---|---|---|---|"]
    process = bool(log) and "iterative/annotation_tokens" in log[0]
    if process:  # step-level accuracy; the automatic labels and the model against the step checker
        rows[0] += " labels = checker | PRM = checker | annotation tokens / sample |"
        rows[1] += "---|---|---|"
    for m in log:
        row = (f"| {int(m['iterative/iteration'])} | {100 * m['iterative/policy_sample_accuracy']:.1f} | "
               f"{100 * m['iterative/rm_accuracy_before']:.1f} -> {100 * m['iterative/rm_accuracy']:.1f} | "
               f"{100 * m['iterative/rm_policy_agreement']:.1f} | {100 * m['iterative/replay_fraction']:.0f}% |")
        if process:
            row += (f" {100 * m.get('iterative/annotation_reference_agreement', float('nan')):.1f} |"
                    f" {100 * m.get('iterative/prm_reference_agreement', float('nan')):.1f} |"
                    f" {m['iterative/annotation_tokens_per_sample']:.0f} |")
        rows.append(row)
    return "\n".join(rows)


def _say(cfg: DemoConfig, message: str) -> None:
    if cfg.progress:
        print(message, flush=True)
