"""Fail at import, with a clear message, when the installed trl is outside the supported range.

grpo-ext overrides private methods of ``trl.GRPOTrainer`` (``_calculate_rewards``,
``_generate_and_score_completions``, ``_get_per_token_logps_and_entropies``, ``_compute_loss``), and
TRL changes those between minor releases: an unsupported trl would train silently wrong.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

TRL_MIN = "1.16.0"
TRL_MAX_EXCLUSIVE = "1.17.0"
TRL_RANGE = f"trl>={TRL_MIN},<{TRL_MAX_EXCLUSIVE}"


def check_trl_version(installed: str | None = None) -> None:
    """Raise ImportError unless ``installed`` (default: the installed trl) is in the supported range."""
    if installed is None:
        try:
            installed = version("trl")
        except PackageNotFoundError as err:
            raise ImportError(f"grpo-ext needs trl; install it with: pip install '{TRL_RANGE}'") from err
    if not Version(TRL_MIN) <= Version(installed) < Version(TRL_MAX_EXCLUSIVE):
        raise ImportError(
            f"grpo-ext supports {TRL_RANGE}, but trl {installed} is installed. grpo-ext overrides private methods of "
            f"trl.GRPOTrainer that change between minor releases. Install a supported version: "
            f"pip install '{TRL_RANGE}'"
        )
