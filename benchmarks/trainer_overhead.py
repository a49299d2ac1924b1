"""Time grpo_ext.GRPOTrainer against stock trl.GRPOTrainer on the same tiny model and config.

Both trainers run in this one process on the same locally built model, data, seed and config (the
paper's loss: loss_type="grpo", beta 0.04, k3), in ABBA order (stock, ours, ours, stock, ...) so that a
drift of the machine's speed during the run cancels out. Prints a table of seconds per optimizer
step, the median of the paired ratios ours / stock (target: at most 1.03), and grpo-ext's own
Python time per step from a profile of one more run (what the ratio should converge to).

    python benchmarks/trainer_overhead.py [--steps 40] [--repeats 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
import trl
from datasets import Dataset

import grpo_ext
from grpo_ext.tiny import build_char_tokenizer, build_tiny_model


def digit_share_reward(completions, **kwargs):
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def run_once(trainer_cls, config_cls, model_dir, tokenizer, dataset, steps, out):
    args = config_cls(
        output_dir=out, per_device_train_batch_size=32, num_generations=8, max_completion_length=8,
        max_steps=steps, learning_rate=1e-4, beta=0.04, loss_type="grpo", bf16=False,
        gradient_checkpointing=False, use_cpu=True, report_to="none", logging_steps=1_000_000,
        save_strategy="no", seed=0, disable_tqdm=True, model_init_kwargs={"dtype": "float32"},
    )
    trainer = trainer_cls(model=model_dir, reward_funcs=digit_share_reward, args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=4)
    opts = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    tokenizer = build_char_tokenizer()
    model_dir = tempfile.mkdtemp(prefix="tiny-model-")
    build_tiny_model(tokenizer).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    dataset = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(100) for b in range(100)])
    out = tempfile.mkdtemp()

    trainers = {"trl.GRPOTrainer": (trl.GRPOTrainer, trl.GRPOConfig),
                "grpo_ext.GRPOTrainer": (grpo_ext.GRPOTrainer, grpo_ext.GRPOConfig)}
    timings = {name: [] for name in trainers}
    run_once(trl.GRPOTrainer, trl.GRPOConfig, model_dir, tokenizer, dataset, 3, out)  # warm-up
    for repeat in range(opts.repeats):
        order = list(trainers) if repeat % 2 == 0 else list(reversed(trainers))
        for name in order:
            timings[name].append(run_once(*trainers[name], model_dir, tokenizer, dataset, opts.steps, out))

    print(f"\n{opts.steps} steps x {opts.repeats} repeats (ABBA order), batch 32 (4 prompts x 8), completions <= 8 "
          "tokens, CPU")
    print("| trainer | median s/step | runs (s/step) |\n|---|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.4f} | {', '.join(f'{v:.4f}' for v in values)} |")
    ratios = [ours / stock for ours, stock in zip(timings["grpo_ext.GRPOTrainer"], timings["trl.GRPOTrainer"])]
    own = own_seconds_per_step(model_dir, tokenizer, dataset, opts.steps, out)
    stock = statistics.median(timings["trl.GRPOTrainer"])
    print(f"\npaired ratios grpo_ext / trl: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"grpo-ext's own code: {own * 1000:.2f} ms/step = {own / stock:.2%} of a stock step (profiled)")
    print(f"ratio grpo_ext / trl = {statistics.median(ratios):.3f} (median of pairs; target <= 1.03)")


def own_seconds_per_step(model_dir, tokenizer, dataset, steps, out) -> float:
    """Seconds per step spent in grpo_ext's own functions (outside the TRL methods they call)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    run_once(grpo_ext.GRPOTrainer, grpo_ext.GRPOConfig, model_dir, tokenizer, dataset, steps, out)
    profile.disable()
    stats = pstats.Stats(profile).stats
    package = os.path.dirname(grpo_ext.__file__)
    own = sum(tottime for (path, _, name), (_, _, tottime, _, _) in stats.items()
              if path.startswith(package) and name != "__init__")
    return own / steps


if __name__ == "__main__":
    main()
