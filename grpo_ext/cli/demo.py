"""``grpo-ext demo``: the miniature DeepSeekMath run on a tiny local model."""

from __future__ import annotations

import dataclasses
import logging
import sys

from ._common import OneLineParser, RecipeError, _flag

HIDDEN = ("progress", "supervision", "resume")


# ----- demo ----------------------------------------------------------------------------------
def demo_command(argv: list[str], verbose: bool = False) -> int:
    from ..demo_config import PROCESS_DEFAULTS, SUPERVISIONS, DemoConfig, DemoConfigError

    p = OneLineParser(prog="grpo-ext demo", allow_abbrev=False, description=(
        "A miniature DeepSeekMath on a tiny local model: warm-up on English + Chinese addition, GRPO on "
        "English only, accuracy before -> after in both languages (greedy top-1, and maj@k / pass@k of "
        "--sample_k samples as in the paper's figure 7). --supervision process: a two-step task with the "
        "paper's process supervision (step rewards), step correctness reported too (defaults then: "
        + ", ".join(f"{k} {v}" for k, v in PROCESS_DEFAULTS.items()) + "). Ctrl-C stops after a saved "
        "checkpoint; the same command again resumes."))
    for f in dataclasses.fields(DemoConfig):
        if f.name in HIDDEN:
            continue
        kind = _flag if isinstance(f.default, bool) else type(f.default)
        p.add_argument(f"--{f.name}", type=kind, default=None, metavar=kind.__name__.lstrip("_").upper(),
                       help=f"default {f.default}")
    p.add_argument("--supervision", choices=list(SUPERVISIONS), default="outcome")
    p.add_argument("--resume", type=_flag, default=None, metavar="BOOL",
                   help="continue an unfinished run in --output_dir (default true); false starts over")
    p.add_argument("--quiet", action="store_true", help="print the final table only")
    p.add_argument("--verbose", action="store_true", help="also show the libraries' own logs, warnings and bars")
    opts = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}
    quiet, verbose = opts.pop("quiet"), opts.pop("verbose") or verbose
    try:  # every knob is checked here, before any work
        cfg = DemoConfig.for_supervision(progress=not quiet, **opts)
    except DemoConfigError as err:
        raise RecipeError(str(err)) from None
    if not verbose:
        _quiet_libraries()
    if quiet:  # the final table only: the run doctor's findings still go to each stage's doctor.json
        logging.getLogger("grpo_ext.doctor").setLevel(logging.ERROR)
    return _run(cfg)


def _quiet_libraries() -> None:
    """The demo shows its own bars: the libraries' bars (dataset maps, weight loading) and logs are kept out."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _run(cfg) -> int:
    from ..demo import DemoConfigError, DemoInterrupted, run_demo

    try:
        run_demo(cfg)
    except DemoConfigError as err:  # e.g. an unfinished run with other settings in output_dir
        raise RecipeError(str(err)) from None
    except DemoInterrupted as err:
        print(f"\ngrpo-ext demo: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"\ngrpo-ext demo: interrupted; the stages already finished are kept in {cfg.output_dir}/. Run the "
              "same command again to resume.", file=sys.stderr)
        return 130
    return 0


run = demo_command
