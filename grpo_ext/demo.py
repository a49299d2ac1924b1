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
    progress: bool = True


def _pairs(seed: int, eval_pairs: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    pairs = [(a, b) for a in range(100) for b in range(100)]
    random.Random(seed).shuffle(pairs)
    if not 0 < eval_pairs < len(pairs):
        raise ValueError(f"eval_pairs must be between 1 and {len(pairs) - 1}, got {eval_pairs}")
    return pairs[eval_pairs:], pairs[:eval_pairs]


def _rows(pairs, language):
    rows = []
    for a, b in pairs:
        prompt, answer = render(Problem(start=a, ops=[("+", b)]), language, "compact")
        rows.append({"prompt": prompt, "answer": answer, "source": language})
    return rows


def _accuracy(model, tokenizer, held, language) -> float:
    ds = Dataset.from_list(_rows(held, language))
    result = evaluate(model, tokenizer, ds, max_new_tokens=4, batch_size=500, last_number_fallback=True,
                      keep_samples=False, group_by=())
    return result["metrics"]["top1"]


def _both(model, tokenizer, held) -> dict[str, float]:
    return {IN_DOMAIN: _accuracy(model, tokenizer, held, "en"), OUT_OF_DOMAIN: _accuracy(model, tokenizer, held, "zh")}


def _cpu_args(cfg: DemoConfig, **kw):
    return dict(bf16=False, use_cpu=True, report_to="none", save_strategy="no", seed=cfg.seed,
                disable_tqdm=not cfg.progress, **kw)


def warm_up(cfg: DemoConfig, train_pairs, tokenizer, model):
    """Supervised warm-up on both forms mixed (the model must answer before RL can reward it)."""
    from trl import SFTConfig, SFTTrainer

    rows = [{"prompt": r["prompt"], "completion": r["answer"]} for lang in ("en", "zh") for r in _rows(train_pairs, lang)]
    random.Random(cfg.seed).shuffle(rows)
    args = SFTConfig(
        output_dir=os.path.join(cfg.output_dir, "warmup"), max_steps=cfg.warmup_steps,
        per_device_train_batch_size=cfg.warmup_batch_size, learning_rate=cfg.warmup_lr, lr_scheduler_type="constant",
        logging_steps=max(1, cfg.warmup_steps // 10), gradient_checkpointing=False, **_cpu_args(cfg),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    return trainer.model


def grpo(cfg: DemoConfig, train_pairs, held, tokenizer, model_path):
    """GRPO on the English form only, with the paper's loss (grpo), beta and k3 KL.

    A MathEvalCallback follows both forms on up to 200 held-out pairs every tenth of the run
    (without touching the training RNG stream), for the report's accuracy curves.
    """
    from .callbacks import MathEvalCallback
    from .config import GRPOConfig
    from .rewards import get_reward_funcs
    from .trainer import GRPOTrainer

    args = GRPOConfig(
        output_dir=os.path.join(cfg.output_dir, "grpo"), max_steps=cfg.grpo_steps,
        per_device_train_batch_size=cfg.grpo_batch_size, num_generations=cfg.num_generations,
        max_completion_length=4, temperature=1.0, learning_rate=cfg.grpo_lr, lr_scheduler_type="constant",
        beta=cfg.beta, loss_type="grpo", kl_estimator="k3", logging_steps=10, gradient_checkpointing=False,
        model_init_kwargs={"dtype": "float32"}, **_cpu_args(cfg),
    )
    watch = {lang: Dataset.from_list(_rows(held[:200], lang)) for lang in ("en", "zh")}
    callback = MathEvalCallback({"english": watch["en"], "chinese": watch["zh"]},
                                eval_steps=max(1, cfg.grpo_steps // 10), max_new_tokens=4, batch_size=500,
                                last_number_fallback=True)
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=get_reward_funcs(["accuracy"], last_number_fallback=True),
        args=args,
        train_dataset=Dataset.from_list(_rows(train_pairs, "en")),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.train()
    return trainer


def run_demo(cfg: DemoConfig | None = None) -> dict:
    """Run the miniature experiment; returns (and writes to ``output_dir/results.json``) its results."""
    from .report import make_report, plot_reward_curve
    from .tiny import build_char_tokenizer, build_tiny_model

    cfg = cfg or DemoConfig()
    start = time.time()
    torch.manual_seed(cfg.seed)
    os.makedirs(cfg.output_dir, exist_ok=True)
    train_pairs, held = _pairs(cfg.seed, cfg.eval_pairs)

    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, seed=cfg.seed)
    _say(cfg, f"[1/4] supervised warm-up on both forms: {cfg.warmup_steps} steps")
    model = warm_up(cfg, train_pairs, tokenizer, model)
    warm_dir = os.path.join(cfg.output_dir, "warmup-model")
    model.save_pretrained(warm_dir)
    tokenizer.save_pretrained(warm_dir)
    t_warm = time.time() - start

    _say(cfg, f"[2/4] evaluating on {cfg.eval_pairs} held-out pairs per form")
    before = _both(model, tokenizer, held)

    _say(cfg, f"[3/4] GRPO on the English form only: {cfg.grpo_steps} steps")
    t0 = time.time()
    trainer = grpo(cfg, train_pairs, held, tokenizer, warm_dir)
    t_grpo = time.time() - t0
    model_dir = os.path.join(cfg.output_dir, "model")
    trainer.save_model(model_dir)
    tokenizer.save_pretrained(model_dir)
    grpo_dir = os.path.join(cfg.output_dir, "grpo")
    trainer.state.save_to_json(os.path.join(grpo_dir, "trainer_state.json"))

    _say(cfg, "[4/4] evaluating again")
    after = _both(trainer.model, tokenizer, held)

    results = {
        "in_domain": {"before": before[IN_DOMAIN], "after": after[IN_DOMAIN]},
        "out_of_domain": {"before": before[OUT_OF_DOMAIN], "after": after[OUT_OF_DOMAIN]},
        "wall_seconds": round(time.time() - start, 1),
        "warmup_seconds": round(t_warm, 1),
        "grpo_seconds": round(t_grpo, 1),
        "config": asdict(cfg),
        "torch_threads": torch.get_num_threads(),
    }
    as_eval = lambda accs: [{"benchmark": k, "metrics": {"n": cfg.eval_pairs, "top1": v}} for k, v in accs.items()]  # noqa: E731
    table = compare_results(as_eval(before), as_eval(after), output_dir=cfg.output_dir,
                            title="Miniature DeepSeekMath: GRPO on English only")
    os.replace(os.path.join(cfg.output_dir, "comparison.png"), os.path.join(cfg.output_dir, "accuracy.png"))
    plot_reward_curve(trainer.state.log_history, os.path.join(cfg.output_dir, "reward.png"))
    make_report([grpo_dir], output=os.path.join(cfg.output_dir, "report"))
    with open(os.path.join(cfg.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    results["table"] = table
    _say(cfg, "\n" + table + f"\nwall time {results['wall_seconds']:.0f} s; results, model and plots in {cfg.output_dir}/")
    return results


def _say(cfg: DemoConfig, message: str) -> None:
    if cfg.progress:
        print(message, flush=True)
