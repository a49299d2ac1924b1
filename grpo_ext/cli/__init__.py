"""``grpo-ext train | eval | demo | report | tiny-model``: YAML recipes through ``trl.TrlParser``, benchmark evaluation, the CPU demo.

    grpo-ext train recipes/tiny/grpo.yaml [--field value ...] [--dry_run true]
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml -m grpo_ext.cli train RECIPE.yaml
    grpo-ext eval --model PATH --datasets gsm8k,cmath [--dataset_path gsm8k=FILE] [--k 4]
    grpo-ext demo [--output_dir grpo-ext-demo] [--seed 0]
    grpo-ext report RUN_DIR [OTHER_RUN_DIR]           (also writes RUN_DIR/report.html)
    grpo-ext doctor RUN_DIR                           (exit 1 when it finds something)
    grpo-ext tiny-model DIR [--tokenizer deepseek|char]

Every flag is accepted dashed or underscored (--output-dir, --output_dir). --verbose, with any
command, also shows the third-party messages that are kept out by default.
"""

from __future__ import annotations

import importlib
import sys

from ._common import RecipeError, quiet_third_party
from ._threads import share_the_cpu

#: command -> module of this package; only the chosen one is imported (torch and TRL load lazily).
COMMANDS = {"train": "train", "eval": "eval", "demo": "demo", "report": "report", "doctor": "doctor",
            "tiny-model": "tiny_model"}


def underscore_flags(argv: list[str]) -> list[str]:
    """``--output-dir x`` -> ``--output_dir x``: every flag in both spellings, as TRL's own CLI accepts them."""
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name, sep, value = arg[2:].partition("=")
            arg = "--" + name.replace("-", "_") + sep + value
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = underscore_flags(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        return 0
    verbose = "--verbose" in argv
    quiet_third_party(verbose)
    if "torch" not in sys.modules and not {"-h", "--help"} & set(argv):  # before torch starts OpenMP; not for help
        share_the_cpu()
    command = importlib.import_module(f".{COMMANDS[argv[0]]}", __name__)
    args = [a for a in argv[1:] if a != "--verbose"]
    try:
        return command.run(args, verbose=verbose) if argv[0] == "demo" else command.run(args)
    except RecipeError as err:
        print(f"grpo-ext {argv[0]}: {err}", file=sys.stderr)
        return 2
