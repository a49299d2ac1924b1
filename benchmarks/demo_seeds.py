"""The demo's table over several seeds (mean, min, max), and the paper's figure 7 in miniature.

Each seed is a fresh ``grpo-ext demo --seed N`` process with the default settings (its output in
``.bench-cache/demo-seeds/seed-N``). Two tables come out:

1. greedy top-1 before -> after GRPO, English (in domain) and Chinese (out of domain): what the
   README's demo table shows for seed 0;
2. figure 7 in miniature: maj@16 and pass@16 (16 samples at temperature 0.7) before -> after.
   DeepSeekMath found that RL lifts maj@K but not pass@K ("RL makes the output distribution more
   robust, not the fundamental capability"); the table says whether the miniature does.

The package versions used are printed first: the numbers depend on them and on the CPU's
floating-point kernels (README).

    python benchmarks/demo_seeds.py                 # seeds 0-4, about 12 minutes on 2 cores
    python benchmarks/demo_seeds.py --seeds 0,1,2   # figure 7 over 3 seeds, about 6 minutes
    python benchmarks/demo_seeds.py --seeds 0,1,2 --reuse   # the tables again from the runs above
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from importlib.metadata import version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".bench-cache", "demo-seeds")
SIDES = (("in_domain", "English (in domain)"), ("out_of_domain", "Chinese (out of domain)"))


def run_seed(seed: int, extra: list[str], reuse: bool = False) -> dict:
    folder = os.path.join(CACHE, f"seed-{seed}")
    if reuse and os.path.isfile(os.path.join(folder, "results.json")):
        with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
            return json.load(f)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-m", "grpo_ext.cli", "demo", "--seed", str(seed), "--output_dir", folder,
                          "--resume", "false", "--quiet", *extra], env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"seed {seed} failed:\n{out.stderr[-3000:]}")
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def spread(values: list[float]) -> str:
    """mean [min, max] in points."""
    pts = [100 * v for v in values]
    return f"{statistics.mean(pts):.1f} [{min(pts):.1f}, {max(pts):.1f}]"


def delta_spread(before: list[float], after: list[float]) -> str:
    """The per-seed gains, as mean [min, max] in points."""
    return spread([a - b for b, a in zip(before, after)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    p.add_argument("--reuse", action="store_true", help="take a seed's results from an earlier run of this script "
                   "(.bench-cache/demo-seeds/seed-N) instead of running it again")
    p.add_argument("demo_flags", nargs=argparse.REMAINDER, help="more flags for grpo-ext demo (after --)")
    opts = p.parse_args()
    seeds = [int(s) for s in opts.seeds.split(",")]
    extra = [a for a in opts.demo_flags if a != "--"]
    versions = ", ".join(f"{name} {version(name)}" for name in ("torch", "transformers", "trl", "accelerate",
                                                                 "datasets", "math-verify"))
    print(f"{versions}; Python {platform.python_version()}; {os.cpu_count()} CPUs ({platform.machine()})")
    results = {}
    for seed in seeds:
        results[seed] = run_seed(seed, extra, opts.reuse)
        r = results[seed]
        line = ", ".join(f"{label.split()[0]} {100 * r[side]['before']:.1f} -> {100 * r[side]['after']:.1f}"
                         for side, label in SIDES)
        print(f"seed {seed}: {line} ({r['wall_seconds']:.0f} s)", flush=True)

    print(f"\n## Greedy top-1 over {len(seeds)} seeds ({', '.join(map(str, seeds))}): mean [min, max], points\n")
    print("| form | before | after | delta |")
    print("|---|---|---|---|")
    for side, label in SIDES:
        before = [results[s][side]["before"] for s in seeds]
        after = [results[s][side]["after"] for s in seeds]
        print(f"| {label} | {spread(before)} | {spread(after)} | {delta_spread(before, after)} |")
    walls = [results[s]["wall_seconds"] for s in seeds]
    print(f"\nwall time per seed: {statistics.mean(walls):.0f} s [{min(walls):.0f}, {max(walls):.0f}]")

    if all("sampled" in results[s] for s in seeds):
        k = results[seeds[0]]["sampled"]["k"]
        temp = results[seeds[0]]["sampled"]["temperature"]
        print(f"\n## Figure 7 in miniature: maj@{k} and pass@{k} ({k} samples at temperature {temp}), "
              f"{len(seeds)} seeds: mean [min, max], points\n")
        print("| form | metric | before | after | delta | seeds where it rose |")
        print("|---|---|---|---|---|---|")
        for side, label in SIDES:
            for metric in (f"maj@{k}", f"pass@{k}"):
                before = [results[s]["sampled"][side][metric]["before"] for s in seeds]
                after = [results[s]["sampled"][side][metric]["after"] for s in seeds]
                rose = sum(a > b for b, a in zip(before, after))
                print(f"| {label} | {metric} | {spread(before)} | {spread(after)} | {delta_spread(before, after)} | "
                      f"{rose} of {len(seeds)} |")


if __name__ == "__main__":
    main()
