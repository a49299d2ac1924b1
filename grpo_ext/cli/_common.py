"""What every command shares; imports nothing heavy, so ``grpo-ext --help`` stays fast."""

from __future__ import annotations

import argparse


class RecipeError(ValueError):
    """A recipe or its overrides are wrong; the message says what and how to fix it."""


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
