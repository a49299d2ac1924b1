"""Outcome against process supervision on the demo's two-step task, after the same number of steps.

For each seed: one supervised warm-up on ``a+b+c=`` -> ``a+b=x\\nx+c=y`` (both languages, the
process demo's), then two GRPO runs from that same model with the same data, seed and settings
(the process demo's: 150 steps, lr 1e-4, 64 completions per step, 8 per prompt, beta 0.04, k3):

- outcome: ``accuracy_reward`` only, every token gets the completion's advantage;
- process: the same outcome reward plus the step checker's reward per line, every token gets the
  outcome advantage plus the process advantage (DeepSeekMath, section 4.1.3).

Prints greedy top-1 accuracy and step correctness (the share of reference steps right) on the
held-out questions, English (trained) and Chinese (not trained), before and after. Accuracy only:
the process run also segments and scores steps, so its steps cost a little more time.

    python benchmarks/process_vs_outcome.py [--seeds 0 1] [--grpo_steps 150] [--work_dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time


def run_seed(seed: int, opts) -> dict:
    import torch

    from grpo_ext.demo import IN_DOMAIN, OUT_OF_DOMAIN, DemoConfig, _both, _pairs, grpo, warm_up
    from grpo_ext.tiny import build_char_tokenizer, build_tiny_model

    base = DemoConfig.for_supervision("process", seed=seed, output_dir=os.path.join(opts.work_dir, f"seed{seed}"),
                                      grpo_steps=opts.grpo_steps, sample_k=0, progress=False)
    torch.manual_seed(seed)
    train, held = _pairs(seed, base.eval_pairs, steps_task=True)
    tokenizer = build_char_tokenizer()
    model = warm_up(base, train, tokenizer, build_tiny_model(tokenizer, seed=seed))
    warm_dir = os.path.join(base.output_dir, "warmup-model")
    model.save_pretrained(warm_dir)
    tokenizer.save_pretrained(warm_dir)
    rows = {"before": _both(model, tokenizer, held, base, "before")}
    for supervision in ("outcome", "process"):
        cfg = dataclasses.replace(base, supervision=supervision, steps_task=True,
                                  output_dir=os.path.join(base.output_dir, supervision))
        torch.manual_seed(seed)
        start = time.perf_counter()
        trainer = grpo(cfg, train, held, tokenizer, warm_dir)
        seconds = time.perf_counter() - start
        rows[supervision] = _both(trainer.model, tokenizer, held, cfg, supervision)
        rows[f"{supervision}_seconds"] = seconds
    out = {}
    for key in ("before", "outcome", "process"):
        out[key] = {"en_top1": rows[key][IN_DOMAIN]["top1"], "en_steps": rows[key][IN_DOMAIN]["steps"],
                    "zh_top1": rows[key][OUT_OF_DOMAIN]["top1"], "zh_steps": rows[key][OUT_OF_DOMAIN]["steps"]}
    out["seconds"] = {s: rows[f"{s}_seconds"] for s in ("outcome", "process")}
    return out


def table(results: dict[int, dict]) -> str:
    lines = ["| seed | run | English top-1 | English steps right | Chinese top-1 | Chinese steps right |",
             "|---|---|---|---|---|---|"]
    for seed, r in results.items():
        for key in ("before", "outcome", "process"):
            v = r[key]
            lines.append(f"| {seed} | {key} | {100 * v['en_top1']:.1f} | {100 * v['en_steps']:.1f} | "
                         f"{100 * v['zh_top1']:.1f} | {100 * v['zh_steps']:.1f} |")
    if len(results) > 1:
        for key in ("outcome", "process"):
            mean = {m: sum(r[key][m] - r["before"][m] for r in results.values()) / len(results)
                    for m in ("en_top1", "en_steps", "zh_top1", "zh_steps")}
            lines.append(f"| mean change | {key} | {100 * mean['en_top1']:+.1f} | {100 * mean['en_steps']:+.1f} | "
                         f"{100 * mean['zh_top1']:+.1f} | {100 * mean['zh_steps']:+.1f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--grpo_steps", type=int, default=150)
    p.add_argument("--work_dir", default="process-vs-outcome")
    opts = p.parse_args()
    os.makedirs(opts.work_dir, exist_ok=True)
    results = {seed: run_seed(seed, opts) for seed in opts.seeds}
    print(table(results))
    with open(os.path.join(opts.work_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
