"""``grpo-ext doctor RUN_DIR``: the run doctor on a finished or crashed run (its trainer_state.json and rollouts)."""

from __future__ import annotations

import json

from ._common import OneLineParser, RecipeError


def doctor_command(argv: list[str]) -> int:
    p = OneLineParser(prog="grpo-ext doctor", description=(
        "Reads a run's logged metrics (its trainer_state.json, or its newest checkpoint's) and its rollouts.jsonl, "
        "and says which common GRPO failure shows, from which step, the figures and the change to make. Exit "
        "status 1 when a finding lasts to the end of the run, 0 when there is none or each recovered, 2 on bad input."))
    p.add_argument("run_dir", help="a training output_dir")
    p.add_argument("--thresholds", default=None, help="thresholds to change, as JSON (grpo_ext.doctor.Thresholds), "
                   'e.g. \'{"clipped_ratio": 0.6}\'')
    opts = p.parse_args(argv)
    from ..doctor import Thresholds, diagnose

    try:
        thresholds = Thresholds.from_settings(json.loads(opts.thresholds) if opts.thresholds else None)
    except (ValueError, TypeError) as err:
        raise RecipeError(f"--thresholds: {err}") from None
    try:
        findings = diagnose(opts.run_dir, thresholds)
    except (FileNotFoundError, ValueError) as err:
        raise RecipeError(str(err)) from None
    if not findings:
        print(f"no finding in {opts.run_dir}: none of the doctor's checks fired (grpo_ext.doctor)")
        return 0
    for finding in findings:
        print(finding.line())
    active = [f for f in findings if f.recovered is None]
    if not active:
        print(f"every finding in {opts.run_dir} recovered later in the run")
    return 1 if active else 0


run = doctor_command
