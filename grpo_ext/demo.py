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
import time
from dataclasses import asdict, dataclass

import torch
from datasets import Dataset

from .data.synthetic import Problem, render
from .evaluation import compare_results, evaluate

IN_DOMAIN, OUT_OF_DOMAIN = "english (in domain)", "chinese (out of domain)"


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
    supervision: str = "outcome"  #: "process": the two-step task with step rewards (module docstring)
    steps_task: bool = False  #: the two-step task (always with "process"; with "outcome" for comparisons)
    iterative: bool = False  #: iterative RL: a learned reward model, retrained between GRPO stages
    iterations: int = 2  #: iterative: GRPO stages (grpo_steps is split between them)
    rm_steps: int = 100  #: iterative: reward-model steps before the first stage and after each
    rm_lr: float = 1e-4  #: iterative: the reward model's learning rate
    rm_questions: int = 400  #: iterative: training questions its samples come from
    rm_only: bool = False  #: iterative: the reward model is the only reward (the paper's); else + accuracy
    progress: bool = True

    def __post_init__(self):
        if self.supervision not in SUPERVISIONS:
            raise ValueError(f"supervision must be one of {list(SUPERVISIONS)}, got {self.supervision!r}")
        if self.supervision == "process":
            self.steps_task = True
        if self.iterative and self.supervision == "process":
            raise ValueError("the iterative demo trains an outcome reward model: use it with supervision='outcome'")

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


SUPERVISIONS = ("outcome", "process")
#: The two-step task is learnt faster in the warm-up (longer targets) and its GRPO steps cost more
#: (20 generated tokens instead of 4): these settings were measured to take about 4 minutes here.
PROCESS_DEFAULTS = {"warmup_steps": 250, "grpo_steps": 150, "grpo_lr": 1e-4}


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


def _accuracy(model, tokenizer, held, language, cfg) -> tuple[float, float | None]:
    """(top-1 accuracy, step correctness or None) of greedy completions on the held-out questions."""
    ds = Dataset.from_list(_rows(held, language))
    result = evaluate(model, tokenizer, ds, max_new_tokens=cfg.completion_length, batch_size=500,
                      last_number_fallback=True, keep_samples=True, group_by=())
    steps = None
    if cfg.steps_task:
        steps = step_correctness([r["greedy"] for r in result["records"]], ds["solution"])
    return result["metrics"]["top1"], steps


def _both(model, tokenizer, held, cfg) -> dict[str, tuple[float, float | None]]:
    return {IN_DOMAIN: _accuracy(model, tokenizer, held, "en", cfg),
            OUT_OF_DOMAIN: _accuracy(model, tokenizer, held, "zh", cfg)}


def _cpu_args(cfg: DemoConfig, **kw):
    return dict(bf16=False, use_cpu=True, report_to="none", save_strategy="no", seed=cfg.seed,
                disable_tqdm=not cfg.progress, **kw)


def warm_up(cfg: DemoConfig, train_pairs, tokenizer, model):
    """Supervised warm-up on both forms mixed (the model must answer before RL can reward it)."""
    from trl import SFTConfig, SFTTrainer

    target = "solution" if cfg.steps_task else "answer"
    rows = [{"prompt": r["prompt"], "completion": r[target]} for lang in ("en", "zh") for r in _rows(train_pairs, lang)]
    random.Random(cfg.seed).shuffle(rows)
    args = SFTConfig(
        output_dir=os.path.join(cfg.output_dir, "warmup"), max_steps=cfg.warmup_steps,
        per_device_train_batch_size=cfg.warmup_batch_size, learning_rate=cfg.warmup_lr, lr_scheduler_type="constant",
        logging_steps=max(1, cfg.warmup_steps // 10), gradient_checkpointing=False, **_cpu_args(cfg),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    return trainer.model


def grpo(cfg: DemoConfig, train_pairs, held, tokenizer, model_path, *, reward_funcs=None, output_dir=None,
         steps=None, watch=True, train=True):
    """GRPO on the English form only, with the paper's loss (grpo), beta and k3 KL.

    A MathEvalCallback follows both forms on up to 200 held-out pairs every tenth of the run
    (without touching the training RNG stream), for the report's accuracy curves. Returns the
    trainer, trained, or with ``train=False`` ready to train (the iterative loop trains it).
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
        logging_steps=10, gradient_checkpointing=False,
        model_init_kwargs={"dtype": "float32"}, supervision=cfg.supervision, process_reward="step_check",
        step_separator="\n", **_cpu_args(cfg),
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
    )
    if train:
        trainer.train()
    return trainer


def iterative_grpo(cfg: DemoConfig, train_pairs, held, tokenizer, warm_dir: str):
    """DeepSeekMath's iterative RL in miniature, with a learned outcome reward model.

    The reward model starts from the warmed-up policy's body with a fresh scoring head (the paper
    initialises its reward model from the SFT model), is trained on the warmed-up policy's labelled
    samples first, then again after each of ``iterations`` GRPO stages on fresh samples of the
    changed policy, with 10% replayed history. The policy's reward is the reward model's
    probability plus ``accuracy_reward``; with ``rm_only`` the reward model alone, as in the paper
    (a 1M-parameter reward model is then hacked within one stage: README). Returns the loop (its
    ``log`` and last ``trainer``).
    """
    from transformers import AutoModelForSequenceClassification

    from .iterative import IterativeConfig, IterativeGRPO
    from .rewards.models import OutcomeRewardModel

    body = AutoModelForSequenceClassification.from_pretrained(warm_dir, num_labels=1)
    rm = OutcomeRewardModel(body, tokenizer, learning_rate=cfg.rm_lr, batch_size=64)
    questions = Dataset.from_list(_rows(train_pairs[: cfg.rm_questions], "en"))
    steps = max(1, cfg.grpo_steps // cfg.iterations)

    from .rewards import get_reward_funcs

    gold = [] if cfg.rm_only else get_reward_funcs(["accuracy"], last_number_fallback=True)

    def factory(model, reward_model, output_dir):
        return grpo(cfg, train_pairs, held, tokenizer, model, reward_funcs=[reward_model, *gold],
                    output_dir=output_dir, steps=steps, watch=False, train=False)

    loop = IterativeGRPO(factory, warm_dir, rm, questions, IterativeConfig(
        output_dir=os.path.join(cfg.output_dir, "iterative"), iterations=cfg.iterations, policy_steps=steps,
        rm_samples=4, rm_steps=cfg.rm_steps, initial_rm_steps=cfg.rm_steps, max_new_tokens=cfg.completion_length,
        last_number_fallback=True, seed=cfg.seed))
    loop.run(resume=False)
    return loop


def run_demo(cfg: DemoConfig | None = None) -> dict:
    """Run the miniature experiment; returns (and writes to ``output_dir/results.json``) its results."""
    from .report import make_report, plot_reward_curve
    from .tiny import build_char_tokenizer, build_tiny_model

    cfg = cfg or DemoConfig()
    start = time.time()
    torch.manual_seed(cfg.seed)
    os.makedirs(cfg.output_dir, exist_ok=True)
    train_pairs, held = _pairs(cfg.seed, cfg.eval_pairs, cfg.steps_task)

    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed=cfg.seed)
    _say(cfg, f"[1/4] supervised warm-up on both forms: {cfg.warmup_steps} steps")
    model = warm_up(cfg, train_pairs, tokenizer, model)
    warm_dir = os.path.join(cfg.output_dir, "warmup-model")
    model.save_pretrained(warm_dir)
    tokenizer.save_pretrained(warm_dir)
    t_warm = time.time() - start

    _say(cfg, f"[2/4] evaluating on {cfg.eval_pairs} held-out pairs per form")
    before = _both(model, tokenizer, held, cfg)

    t0 = time.time()
    loop = None
    if cfg.iterative:
        _say(cfg, f"[3/4] iterative GRPO on the English form only: {cfg.iterations} iterations of "
                  f"{max(1, cfg.grpo_steps // cfg.iterations)} steps against a learned reward model")
        loop = iterative_grpo(cfg, train_pairs, held, tokenizer, warm_dir)
        trainer = loop.trainer
        grpo_dir = trainer.args.output_dir
    else:
        _say(cfg, f"[3/4] GRPO on the English form only: {cfg.grpo_steps} steps")
        trainer = grpo(cfg, train_pairs, held, tokenizer, warm_dir)
        grpo_dir = os.path.join(cfg.output_dir, "grpo")
    t_grpo = time.time() - t0
    model_dir = os.path.join(cfg.output_dir, "model")
    trainer.save_model(model_dir)
    tokenizer.save_pretrained(model_dir)
    trainer.state.save_to_json(os.path.join(grpo_dir, "trainer_state.json"))

    _say(cfg, "[4/4] evaluating again")
    after = _both(trainer.model, tokenizer, held, cfg)

    results = {
        "supervision": cfg.supervision,
        "in_domain": {"before": before[IN_DOMAIN][0], "after": after[IN_DOMAIN][0]},
        "out_of_domain": {"before": before[OUT_OF_DOMAIN][0], "after": after[OUT_OF_DOMAIN][0]},
        "wall_seconds": round(time.time() - start, 1),
        "warmup_seconds": round(t_warm, 1),
        "grpo_seconds": round(t_grpo, 1),
        "config": asdict(cfg),
        "torch_threads": torch.get_num_threads(),
    }
    if loop is not None:
        results["iterative"] = loop.log
    if cfg.steps_task:
        results["step_correctness"] = {
            "in_domain": {"before": before[IN_DOMAIN][1], "after": after[IN_DOMAIN][1]},
            "out_of_domain": {"before": before[OUT_OF_DOMAIN][1], "after": after[OUT_OF_DOMAIN][1]},
        }

    def as_eval(accs):
        rows = [{"benchmark": k, "metrics": {"n": cfg.eval_pairs, "top1": v[0]}} for k, v in accs.items()]
        if cfg.steps_task:
            rows += [{"benchmark": f"{k}, steps", "metrics": {"n": cfg.eval_pairs, "top1": v[1]}}
                     for k, v in accs.items()]
        return rows

    title = "Miniature DeepSeekMath: GRPO on English only"
    if cfg.supervision == "process":
        title += ", process supervision"
    if cfg.iterative:
        title += ", iterative RL"
    table = compare_results(as_eval(before), as_eval(after), output_dir=cfg.output_dir, title=title)
    if loop is not None:
        table += "\n\n" + iterative_table(loop.log)
    os.replace(os.path.join(cfg.output_dir, "comparison.png"), os.path.join(cfg.output_dir, "accuracy.png"))
    plot_reward_curve(trainer.state.log_history, os.path.join(cfg.output_dir, "reward.png"))
    make_report([grpo_dir], output=os.path.join(cfg.output_dir, "report"))
    with open(os.path.join(cfg.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    results["table"] = table
    _say(cfg, "\n" + table + f"\nwall time {results['wall_seconds']:.0f} s; results, model and plots in {cfg.output_dir}/")
    return results


def iterative_table(log: list[dict]) -> str:
    """The reward model's side of an iterative run, one row per update (iteration -1: before RL)."""
    rows = ["| iteration | policy samples right | RM accuracy before -> after update | RM pair ranking | replayed |",
            "|---|---|---|---|---|"]
    for m in log:
        rows.append(f"| {int(m['iterative/iteration'])} | {100 * m['iterative/policy_sample_accuracy']:.1f} | "
                    f"{100 * m['iterative/rm_accuracy_before']:.1f} -> {100 * m['iterative/rm_accuracy']:.1f} | "
                    f"{100 * m['iterative/rm_policy_agreement']:.1f} | {100 * m['iterative/replay_fraction']:.0f}% |")
    return "\n".join(rows)


def _say(cfg: DemoConfig, message: str) -> None:
    if cfg.progress:
        print(message, flush=True)
