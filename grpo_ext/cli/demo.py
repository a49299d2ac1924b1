"""``grpo-ext demo``: the miniature DeepSeekMath run on a tiny local model."""

from __future__ import annotations

import argparse
import dataclasses

from ._common import _flag


# ----- demo ----------------------------------------------------------------------------------
def demo_command(argv: list[str]) -> int:
    from ..demo import PROCESS_DEFAULTS, SUPERVISIONS, DemoConfig, run_demo

    p = argparse.ArgumentParser(prog="grpo-ext demo", description=(
        "A miniature DeepSeekMath on a tiny local model: warm-up on English + Chinese addition, GRPO on "
        "English only, accuracy before -> after in both languages. --supervision process: a two-step task with "
        "the paper's process supervision (step rewards), step correctness reported too (defaults then: "
        + ", ".join(f"{k} {v}" for k, v in PROCESS_DEFAULTS.items()) + ")."))
    for f in dataclasses.fields(DemoConfig):
        if f.name in ("progress", "supervision"):
            continue
        kind = _flag if isinstance(f.default, bool) else type(f.default)
        p.add_argument(f"--{f.name}", type=kind, default=None, help=f"default {f.default}")
    p.add_argument("--supervision", choices=list(SUPERVISIONS), default="outcome")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    opts = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}
    quiet = opts.pop("quiet")
    run_demo(DemoConfig.for_supervision(progress=not quiet, **opts))
    return 0


run = demo_command
