"""The demo beside another torch process: how much slower, under which thread settings.

A shortened demo runs alone, then beside a competitor (another torch process training a small
model with its default threads, started first and kept busy), once per setting:

- ``default``: torch's defaults (as many OpenMP threads as cores, libgomp's spin-then-sleep wait);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep at once instead of spinning);
- ``1 thread``: ``OMP_NUM_THREADS=1``;
- ``grpo-ext``: what ``grpo-ext demo`` does by itself (no variable set by hand).

Each run is a fresh process; the table gives its wall time (the demo's own ``wall_seconds``) and its
slowdown against the same setting alone. A fair share of a 2-core machine is 2x. With ``--abba``
(two settings) the runs alone go in A B B A order and each setting's time alone is the mean of its
two, so that a drift of the machine during the runs falls on both alike.

    python benchmarks/demo_contention.py            # about 10 minutes on 2 cores
    python benchmarks/demo_contention.py --settings default,grpo-ext --abba
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

DEMO = ["--warmup_steps", "150", "--grpo_steps", "60", "--eval_pairs", "200", "--sample_k", "4", "--quiet"]
SETTINGS = {
    "default": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": None, "GRPO_EXT_THREADS": "torch"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": None, "GRPO_EXT_THREADS": "torch"},
    "1 thread": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": None, "GRPO_EXT_THREADS": "torch"},
    "spin 2k": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "2000", "GRPO_EXT_THREADS": "torch"},
    "spin 20k": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "20000", "GRPO_EXT_THREADS": "torch"},
    "spin 200k": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "200000", "GRPO_EXT_THREADS": "torch"},
    "grpo-ext": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": None, "GRPO_EXT_THREADS": None},
}
COMPETITOR = """
import torch, time
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256))
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(64, 256)
print("ready", flush=True)
while True:
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


_RUNS = itertools.count()


def _env(setting: dict) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name, value in setting.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


def run_demo(setting: dict, folder: str) -> float:
    """Wall seconds of one fresh demo run (a new folder each time: a finished run would not be run again)."""
    folder = f"{folder}-{next(_RUNS)}"
    out = subprocess.run([sys.executable, "-m", "grpo_ext.cli", "demo", "--output_dir", folder, *DEMO],
                         env=_env(setting), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the demo failed:\n{out.stderr[-2000:]}")
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
        return float(json.load(f)["wall_seconds"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, from {list(SETTINGS)}")
    p.add_argument("--abba", action="store_true", help="two settings: run them alone in A B B A order")
    opts = p.parse_args()
    names = [n.strip() for n in opts.settings.split(",")]
    if opts.abba and len(names) != 2:
        p.error("--abba takes two settings")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if opts.abba:
            a, b = names
            times = {a: [], b: []}
            for n in (a, b, b, a):
                times[n].append(run_demo(SETTINGS[n], os.path.join(tmp, "alone")))
            alone = {n: sum(t) / len(t) for n, t in times.items()}
            print("alone, A B B A: " + "; ".join(f"{n}: {', '.join(f'{x:.1f}' for x in t)} s" for n, t in times.items()))
        else:
            alone = {n: run_demo(SETTINGS[n], os.path.join(tmp, "alone")) for n in names}
        competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], stdout=subprocess.PIPE, text=True,
                                      env=_env({}))
        try:
            competitor.stdout.readline()  # ready
            time.sleep(2)
            for n in names:
                beside = run_demo(SETTINGS[n], os.path.join(tmp, "beside"))
                rows.append((n, alone[n], beside, beside / alone[n]))
        finally:
            competitor.kill()
            competitor.wait()
    print(f"demo: {' '.join(DEMO)}; {os.cpu_count()} CPUs; competitor: a small torch training loop, default threads")
    print("| setting | alone (s) | beside another torch process (s) | slowdown |")
    print("|---|---|---|---|")
    for n, a, b, r in rows:
        print(f"| {n} | {a:.1f} | {b:.1f} | {r:.2f}x |")


if __name__ == "__main__":
    main()
