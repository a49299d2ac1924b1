"""The paper's comparison in miniature (figure 6): outcome, process, iterative outcome and iterative
process supervision on the demo's two-step task, with the same budget of generated tokens.

For each seed: one supervised warm-up on ``a+b+c=`` -> ``a+b=x\\nx+c=y`` (the process demo's), then
four GRPO runs from that same model (the process demo's settings: lr 1e-4, 64 completions per step,
8 per prompt, beta 0.04, k3, English prompts only):

- outcome: ``accuracy_reward``;
- process: ``accuracy_reward`` plus the step checker's reward per line (the paper's process
  supervision with a perfect process reward);
- iterative outcome: a learned outcome reward model (from the warmed-up policy) plus
  ``accuracy_reward``, retrained on the policy's labelled samples before and after each of 2 stages;
- iterative process: ``accuracy_reward`` plus a learned process reward model (the warmed-up policy
  reading a step tag), retrained on Math-Shepherd's automatic labels (``--prm_rollouts`` continuations
  of each step's prefix by the current policy) before and after each of 2 stages.

**The budget** is counted in generated tokens at their maximum length (20 per completion): the
non-iterative runs spend it all on GRPO (``--grpo_steps`` x 64 completions); the iterative runs
also spend it on the reward model's samples (``--rm_questions`` x 4 per update, 3 updates) and, for
process supervision, on the annotation's continuations (per sample, one per non-final step x
``--prm_rollouts``), and get the GRPO steps that are left.

Prints, per seed and as mean and spread (min, max) over seeds, the change of greedy top-1 and of
step correctness on the held-out questions, English (trained) and Chinese (not trained); and, for
the iterative runs, how far the learned reward model agrees with the truth as the policy moves
(process: the share of held-out steps where it agrees with the step checker).

    python benchmarks/supervision_comparison.py [--seeds 0 1 2] [--grpo_steps 150] [--work_dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

VARIANTS = ("outcome", "process", "iterative outcome", "iterative process")
LENGTH = 20  # the two-step task's max_completion_length
METRICS = ("en_top1", "en_steps", "zh_top1", "zh_steps")


def budget_steps(opts, variant: str, batch: int) -> int:
    """GRPO steps a variant gets out of the budget of ``opts.grpo_steps`` x ``batch`` completions."""
    budget = opts.grpo_steps * batch * LENGTH
    if not variant.startswith("iterative"):
        return opts.grpo_steps
    updates = opts.iterations + 1
    spent = updates * opts.rm_questions * 4 * LENGTH
    if variant == "iterative process":
        spent += updates * opts.rm_questions * 4 * 1 * opts.prm_rollouts * LENGTH  # two steps: one prefix each
    return max(opts.iterations, (budget - spent) // (batch * LENGTH))


def run_seed(seed: int, opts) -> dict:
    import torch

    from grpo_ext.demo import IN_DOMAIN, OUT_OF_DOMAIN, DemoConfig, _both, _pairs, grpo, iterative_grpo, warm_up
    from grpo_ext.tiny import build_char_tokenizer, build_tiny_model

    base = DemoConfig.for_supervision("process", seed=seed, output_dir=os.path.join(opts.work_dir, f"seed{seed}"),
                                      sample_k=0, progress=False, rm_questions=opts.rm_questions,
                                      prm_rollouts=opts.prm_rollouts, iterations=opts.iterations,
                                      rm_lr=opts.rm_lr, rm_steps=opts.rm_steps)
    torch.manual_seed(seed)
    train, held = _pairs(seed, base.eval_pairs, steps_task=True)
    tokenizer = build_char_tokenizer()
    warm_dir = os.path.join(base.output_dir, "warmup-model")
    model = warm_up(base, train, tokenizer, build_tiny_model(tokenizer, seed=seed))
    model.save_pretrained(warm_dir)
    tokenizer.save_pretrained(warm_dir)

    def scores(m, cfg):
        both = _both(m, tokenizer, held, cfg, "")
        return {"en_top1": both[IN_DOMAIN]["top1"], "en_steps": both[IN_DOMAIN]["steps"],
                "zh_top1": both[OUT_OF_DOMAIN]["top1"], "zh_steps": both[OUT_OF_DOMAIN]["steps"]}

    out = {"before": scores(model, base), "steps": {}, "seconds": {}, "log": {}}
    for variant in VARIANTS:
        supervision = variant.split()[-1]
        steps = budget_steps(opts, variant, base.grpo_batch_size)
        cfg = dataclasses.replace(base, supervision=supervision, steps_task=True, grpo_steps=steps,
                                  iterative=variant.startswith("iterative"),
                                  output_dir=os.path.join(base.output_dir, variant.replace(" ", "-")))
        torch.manual_seed(seed)
        start = time.perf_counter()
        if cfg.iterative:
            loop = iterative_grpo(cfg, train, held, tokenizer, warm_dir)
            policy = loop.trainer.model
            out["log"][variant] = loop.log
        else:
            policy = grpo(cfg, train, held, tokenizer, warm_dir, watch=False).model
        out["seconds"][variant] = time.perf_counter() - start
        out["steps"][variant] = steps
        out[variant] = scores(policy, cfg)
    return out


def _spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{100 * mean:+.1f} [{100 * min(values):+.1f}, {100 * max(values):+.1f}]"


def table(results: dict[int, dict], opts) -> str:
    lines = ["| seed | run | GRPO steps | English top-1 | English steps right | Chinese top-1 | Chinese steps right |",
             "|---|---|---|---|---|---|---|"]
    for seed, r in results.items():
        v = r["before"]
        lines.append(f"| {seed} | before | - | " + " | ".join(f"{100 * v[m]:.1f}" for m in METRICS) + " |")
        for variant in VARIANTS:
            v = r[variant]
            lines.append(f"| {seed} | {variant} | {r['steps'][variant]} | "
                         + " | ".join(f"{100 * v[m]:.1f}" for m in METRICS) + " |")
    lines += ["", f"Change from before, mean [min, max] over {len(results)} seed(s), in points:", "",
              "| run | English top-1 | English steps right | Chinese top-1 | Chinese steps right |", "|---|---|---|---|---|"]
    for variant in VARIANTS:
        cells = [_spread([r[variant][m] - r["before"][m] for r in results.values()]) for m in METRICS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "The learned reward models, per update (iteration -1: before RL), mean over seeds:", "",
              "| run | iteration | policy samples right | RM accuracy after update | agreement with the step checker |",
              "|---|---|---|---|---|"]
    for variant in ("iterative outcome", "iterative process"):
        logs = [r["log"][variant] for r in results.values()]
        for k in range(min(len(log) for log in logs)):
            rows = [log[k] for log in logs]
            agree = [m.get("iterative/prm_reference_agreement") for m in rows]
            lines.append(f"| {variant} | {int(rows[0]['iterative/iteration'])} | "
                         f"{100 * statistics.mean(m['iterative/policy_sample_accuracy'] for m in rows):.1f} | "
                         f"{100 * statistics.mean(m['iterative/rm_accuracy'] for m in rows):.1f} | "
                         + (f"{100 * statistics.mean(agree):.1f}" if None not in agree else "-") + " |")
    budget = opts.grpo_steps * 64 * LENGTH
    lines += ["", f"Budget: {budget:,} generated tokens at most per run ({opts.grpo_steps} GRPO steps x 64 x {LENGTH})."]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--grpo_steps", type=int, default=150, help="the budget, in GRPO steps of 64 completions")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--rm_questions", type=int, default=100)
    p.add_argument("--rm_steps", type=int, default=100)
    p.add_argument("--rm_lr", type=float, default=1e-4)
    p.add_argument("--prm_rollouts", type=int, default=4)
    p.add_argument("--work_dir", default="supervision-comparison")
    opts = p.parse_args()
    os.makedirs(opts.work_dir, exist_ok=True)
    results = {}
    for seed in opts.seeds:
        results[seed] = run_seed(seed, opts)
        with open(os.path.join(opts.work_dir, "results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    print(table(results, opts))


if __name__ == "__main__":
    main()
