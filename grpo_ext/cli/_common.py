"""What every command shares; imports nothing heavy, so ``grpo-ext --help`` stays fast."""

from __future__ import annotations

import argparse
import logging
import warnings


class RecipeError(ValueError):
    """A recipe or its overrides are wrong; the message says what and how to fix it."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (what is wrong, and where the flags are listed), exit status 2, and
    which takes no abbreviation of a flag (``--steps`` is not ``--steps_task``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


#: logger name -> message starts that third-party packages print on import or set-up and that ask
#: nothing of a grpo-ext user (dropped unless --verbose)
KNOWN_NOISE = {
    # bitsandbytes on an AVX-512 CPU without the optional `kernels` package: its own fallback is used
    "bitsandbytes.backends.cpu.ops": ("Failed to load CPU gemm_4bit_forward",),
    # DeepSpeed imported on a machine without an accelerator: it picks the CPU, which is what runs
    "DeepSpeed": ("Setting accelerator to CPU",),
}
#: FutureWarnings raised inside TRL 1.16 on every run (its own call to a renamed transformers property)
KNOWN_FUTURE_WARNINGS = (r"`is_gradient_checkpointing` is deprecated",)


class _DropKnownNoise(logging.Filter):
    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_third_party(verbose: bool = False) -> None:
    """Keep the known third-party noise (:data:`KNOWN_NOISE`) out of a command's output unless ``verbose``.

    Only these messages are dropped; every other warning of those packages still shows.
    """
    if verbose:
        return
    for name, starts in KNOWN_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnownNoise) for f in logger.filters):  # once per process
            logger.addFilter(_DropKnownNoise(starts))
    for pattern in KNOWN_FUTURE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=FutureWarning)
