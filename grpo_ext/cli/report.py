"""``grpo-ext report RUN_DIR [OTHER_RUN_DIR]``: a run's curves and summary from its trainer_state.json."""

from __future__ import annotations


from ._common import OneLineParser, RecipeError


# ----- report --------------------------------------------------------------------------------
def report_command(argv: list[str]) -> int:
    p = OneLineParser(prog="grpo-ext report", description=(
        "Curves (reward, benchmark accuracy, KL, length, clipping, zero-variance groups, advantages, learning "
        "rate) and a summary of a run, from its trainer_state.json; two runs are overlaid."))
    p.add_argument("run_dirs", nargs="+", help="a training output_dir (two to compare)")
    p.add_argument("--output", default=None, help="output path without extension (default RUN_DIR/report)")
    opts = p.parse_args(argv)
    from ..report import make_report

    try:
        paths = make_report(opts.run_dirs, opts.output)
    except (FileNotFoundError, ValueError) as err:
        raise RecipeError(str(err)) from err
    print(open(paths["markdown"], encoding="utf-8").read())
    print(f"wrote {paths['png']}, {paths['markdown']} and {paths['html']} (open it in a browser: it needs no network)")
    return 0


run = report_command
