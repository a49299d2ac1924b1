"""Stock trl.GRPOTrainer against grpo_ext.GRPOTrainer with zero_variance_groups "skip" and "resample".

Every run starts from the same warmed-up tiny model (the CPU demo's: supervised warm-up on 2-digit
addition), trains with GRPO on the same English prompts, seed and config (the demo's: 64 completions
per step, 8 per prompt, beta 0.04, loss_type "grpo", k3), each in its own process so that peak
memory is its own. The speed runs are repeated with 256 completions per step: with 64 completions
of 4 tokens the tiny model's passes are so short that fixed per-call costs weigh in, where at real
scale the compute that grows with the rows dominates. Two tables:

1. Speed, per optimizer step: generation (sampling and scoring) and the training phase (the loss's
   forward and backward plus the reference and old-policy log-prob passes), the share s of groups
   with zero variance, trained tokens per second and peak RSS. Target: with s >= 0.4, "skip"'s
   training phase takes at most (1 - 0.8 s) of stock TRL's.
2. Learning: greedy accuracy on held-out pairs against optimizer steps and training seconds
   (evaluation time excluded). Target: "resample" reaches stock TRL's final accuracy in at most
   0.75x its steps and 1.0x its seconds.

The learning runs start from the demo's warmed-up model (500 supervised steps); the speed runs from
a model warmed up longer (1500 steps), a late stage where most groups are all right (s is reported).

    python benchmarks/zero_variance.py [--speed_steps 40] [--curve_steps 300] [--work_dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

RUNS = {"trl": "stock trl.GRPOTrainer", "keep": "grpo_ext keep", "skip": "grpo_ext skip",
        "resample": "grpo_ext resample"}


def warm_model(work_dir: str, seed: int, steps: int = 500) -> str:
    """The demo's warmed-up model (``steps`` supervised steps), built once and cached in ``work_dir``."""
    from grpo_ext.demo import DemoConfig, _pairs, warm_up
    from grpo_ext.tiny import build_char_tokenizer, build_tiny_model

    path = os.path.join(work_dir, f"warm-model-{steps}")
    if not os.path.exists(os.path.join(path, "config.json")):
        cfg = DemoConfig(output_dir=os.path.join(work_dir, "demo"), seed=seed, warmup_steps=steps, progress=False)
        import torch

        torch.manual_seed(seed)
        train, _ = _pairs(seed, cfg.eval_pairs)
        tokenizer = build_char_tokenizer()
        model = warm_up(cfg, train, tokenizer, build_tiny_model(tokenizer, seed=seed))
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


class Timers:
    """Wraps a trainer's methods to split each optimizer step into generation and training phase."""

    def __init__(self, trainer):
        import torch

        self.step = self.generate = self.logps_no_grad = 0.0
        self.trained_tokens = self.informative_tokens = 0
        self.steps = 0

        def wrap(name, fn):
            original = getattr(trainer, name)

            def timed(*args, **kwargs):
                return fn(original, *args, **kwargs)

            setattr(trainer, name, timed)

        def generate(original, *a, **k):
            t = time.perf_counter()
            out = original(*a, **k)
            self.generate += time.perf_counter() - t
            return out

        def logps(original, *a, **k):
            t = time.perf_counter()
            out = original(*a, **k)
            if not torch.is_grad_enabled():  # reference / old-policy passes (the loss's own pass has grad)
                self.logps_no_grad += time.perf_counter() - t
            return out

        def step(original, model, inputs, *a, **k):
            t = time.perf_counter()
            out = original(model, inputs, *a, **k)
            self.step += time.perf_counter() - t
            self.steps += 1
            return out

        def loss(original, model, inputs, *a, **k):
            mask = inputs["completion_mask"].float()
            if "zero_variance_real" in inputs:
                mask = mask * inputs["zero_variance_real"].unsqueeze(1)
            self.trained_tokens += int(mask.sum())
            adv = inputs["advantages"]
            self.informative_tokens += int((mask * (adv.unsqueeze(1) if adv.dim() == 1 else adv).ne(0)).sum())
            return original(model, inputs, *a, **k)

        wrap("_generate_and_score_completions", generate)
        wrap("_get_per_token_logps_and_entropies", logps)
        wrap("training_step", step)
        wrap("compute_loss", loss)

    def summary(self) -> dict:
        n = max(self.steps, 1)
        generation = self.generate - self.logps_no_grad  # the deferred reference pass runs inside too
        return {
            "step_s": self.step / n,
            "generation_s": generation / n,
            "training_s": (self.step - generation) / n,
            "trained_tokens_per_s": self.trained_tokens / max(self.step, 1e-9),
            "informative_tokens_per_s": self.informative_tokens / max(self.step, 1e-9),
        }


def worker(opts) -> dict:
    """One training run; prints its measurements as JSON."""
    import torch
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback

    from grpo_ext import GRPOConfig, GRPOTrainer
    from grpo_ext.demo import _pairs, _rows
    from grpo_ext.evaluation import evaluate
    from grpo_ext.rewards import get_reward_funcs
    from grpo_ext.tiny import load_char_tokenizer

    torch.manual_seed(opts.seed)
    train, held = _pairs(opts.seed, 1000)
    held_ds = Dataset.from_list(_rows(held[: opts.eval_pairs], "en"))
    tokenizer = load_char_tokenizer(opts.model)
    stock = opts.worker == "trl"
    config_cls = trl.GRPOConfig if stock else GRPOConfig
    extra = {} if stock else {"zero_variance_groups": opts.worker, "max_resample_rounds": opts.max_resample_rounds}
    args = config_cls(
        output_dir=os.path.join(opts.work_dir, f"run-{opts.worker}"), max_steps=opts.steps,
        per_device_train_batch_size=opts.batch_size, num_generations=8, max_completion_length=4, temperature=1.0,
        learning_rate=3e-5, lr_scheduler_type="constant", beta=0.04, loss_type="grpo", logging_steps=1,
        gradient_checkpointing=False, bf16=False, use_cpu=True, report_to="none", save_strategy="no",
        seed=opts.seed, disable_tqdm=True, model_init_kwargs={"dtype": "float32"}, **extra)
    curve: list[dict] = []

    class Curve(TrainerCallback):
        """Greedy held-out accuracy every eval_every steps; its own time is kept out of the clock."""

        def __init__(self):
            self.start = time.perf_counter()
            self.eval_time = 0.0

        def measure(self, model, step):
            t = time.perf_counter()
            acc = evaluate(model, tokenizer, held_ds, max_new_tokens=4, batch_size=500, last_number_fallback=True,
                           keep_samples=False, group_by=())["metrics"]["top1"]
            curve.append({"step": step, "seconds": t - self.start - self.eval_time, "accuracy": acc})
            self.eval_time += time.perf_counter() - t

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.start = time.perf_counter()
            self.measure(model, 0)

        def on_step_end(self, args, state, control, model=None, **kw):
            if opts.eval_every and state.global_step % opts.eval_every == 0:
                self.measure(model, state.global_step)

    trainer_cls = trl.GRPOTrainer if stock else GRPOTrainer
    trainer = trainer_cls(model=opts.model, reward_funcs=get_reward_funcs(["accuracy"], last_number_fallback=True),
                          args=args, train_dataset=Dataset.from_list(_rows(train, "en")), processing_class=tokenizer,
                          callbacks=[Curve()] if opts.eval_every else [])
    timers = Timers(trainer)
    trainer.train()
    history = trainer.state.log_history
    zero = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
    result = timers.summary()
    result.update(run=opts.worker, steps=opts.steps, zero_variance_share=sum(zero) / max(len(zero), 1),
                  peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, curve=curve)
    print("RESULT " + json.dumps(result), flush=True)
    return result


def launch(opts, run: str, steps: int, eval_every: int, model: str, batch_size: int = 64) -> dict:
    cmd = [sys.executable, __file__, "--worker", run, "--steps", str(steps), "--eval_every", str(eval_every),
           "--model", model, "--work_dir", opts.work_dir, "--seed", str(opts.seed),
           "--max_resample_rounds", str(opts.max_resample_rounds), "--eval_pairs", str(opts.eval_pairs),
           "--batch_size", str(batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"run {run!r} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return json.loads(line[len("RESULT "):])


def speed_table(results: dict[str, dict]) -> str:
    base = results["trl"]
    lines = ["| run | zero-variance share s | step (s) | generation (s) | training phase (s) | training phase vs trl "
             "| target 1-0.8s | whole step vs trl | trained tok/s | informative tok/s | peak RSS (GB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        s = r["zero_variance_share"]
        target = f"{1 - 0.8 * s:.2f}" if run == "skip" else ""
        lines.append(f"| {RUNS[run]} | {s:.2f} | {r['step_s']:.3f} | {r['generation_s']:.3f} | {r['training_s']:.3f} | "
                     f"{r['training_s'] / base['training_s']:.2f} | {target} | {r['step_s'] / base['step_s']:.2f} | "
                     f"{r['trained_tokens_per_s']:.0f} | {r['informative_tokens_per_s']:.0f} | {r['peak_rss_gb']:.2f} |")
    share = base["generation_s"] / base["step_s"]
    lines.append(f"\nGeneration (sampling + scoring) is {share:.0%} of stock TRL's step; no mode saves it.")
    return "\n".join(lines)


def first_reaching(curve: list[dict], accuracy: float) -> dict | None:
    return next((p for p in curve if p["accuracy"] >= accuracy - 1e-12), None)


def curve_table(results: dict[str, dict]) -> str:
    base = results["trl"]
    final = base["curve"][-1]
    lines = ["| run | step | training seconds | held-out accuracy |", "|---|---|---|---|"]
    for run, r in results.items():
        for p in r["curve"]:
            lines.append(f"| {RUNS[run]} | {p['step']} | {p['seconds']:.1f} | {p['accuracy']:.3f} |")
    lines += ["", f"Stock TRL ends at {final['accuracy']:.3f} after {final['step']} steps, {final['seconds']:.1f} s.",
              "| run | reaches it at step | steps vs trl (target <= 0.75) | seconds | seconds vs trl (target <= 1.0) |",
              "|---|---|---|---|---|"]
    for run, r in results.items():
        hit = first_reaching(r["curve"], final["accuracy"])
        if hit is None:
            lines.append(f"| {RUNS[run]} | not reached in {r['steps']} steps | | | |")
        else:
            lines.append(f"| {RUNS[run]} | {hit['step']} | {hit['step'] / final['step']:.2f} | {hit['seconds']:.1f} | "
                         f"{hit['seconds'] / final['seconds']:.2f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speed_steps", type=int, default=40)
    p.add_argument("--curve_steps", type=int, default=300)
    p.add_argument("--eval_every", type=int, default=25)
    p.add_argument("--eval_pairs", type=int, default=500)
    p.add_argument("--max_resample_rounds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work_dir", default="zero-variance-bench")
    p.add_argument("--model", default=None, help="start the learning runs from this model instead of the demo's warm-up")
    p.add_argument("--speed_warmup_steps", type=int, default=1500,
                   help="supervised steps of the model the speed runs start from: a late stage, most groups all right")
    p.add_argument("--skip_curve", action="store_true", help="only the speed table")
    p.add_argument("--skip_speed", action="store_true", help="only the learning table")
    p.add_argument("--worker", choices=list(RUNS), help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch_size", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--speed_batch_sizes", type=int, nargs="+", default=[64, 256],
                   help="completions per step of the speed runs (the learning runs use the demo's 64)")
    opts = p.parse_args()
    if opts.worker:
        worker(opts)
        return
    os.makedirs(opts.work_dir, exist_ok=True)
    results = {}
    if not opts.skip_curve:
        model = opts.model or warm_model(opts.work_dir, opts.seed)
        curves = {run: launch(opts, run, opts.curve_steps, opts.eval_every, model) for run in ("trl", "resample")}
        print("## Learning (from the demo's warmed-up model)\n\n" + curve_table(curves), flush=True)
        results["curve"] = curves
    # A late stage: a longer supervised warm-up leaves most groups all right, as happens late in RL.
    late = warm_model(opts.work_dir, opts.seed, opts.speed_warmup_steps)
    for batch in [] if opts.skip_speed else opts.speed_batch_sizes:
        speed = {run: launch(opts, run, opts.speed_steps, 0, late, batch) for run in ("trl", "keep", "skip")}
        print(f"\n## Speed, {batch} completions per step (from a model warmed up for {opts.speed_warmup_steps} "
              "steps)\n\n" + speed_table(speed), flush=True)
        results[f"speed_{batch}"] = speed
    with open(os.path.join(opts.work_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
