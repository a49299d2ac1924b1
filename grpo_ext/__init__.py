"""grpo-ext: DeepSeekMath's Group Relative Policy Optimization on top of TRL."""

from ._compat import check_trl_version

check_trl_version()

from .advantages import outcome_advantages, zero_variance_mask  # noqa: E402
from .config import GRPOConfig  # noqa: E402
from .losses import kl_penalty  # noqa: E402
from .trainer import GRPOTrainer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "GRPOConfig",
    "GRPOTrainer",
    "kl_penalty",
    "outcome_advantages",
    "zero_variance_mask",
]
