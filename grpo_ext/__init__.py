"""grpo-ext: DeepSeekMath's Group Relative Policy Optimization on top of TRL."""

from ._compat import check_trl_version

check_trl_version()

from .advantages import outcome_advantages, zero_variance_mask  # noqa: E402
from .callbacks import MathEvalCallback  # noqa: E402
from .config import GRPOConfig  # noqa: E402
from .data import load_math_dataset  # noqa: E402
from .evaluation import compare_results, evaluate  # noqa: E402
from .losses import kl_penalty  # noqa: E402
from .rewards import accuracy_reward, format_reward, get_reward_funcs  # noqa: E402
from .trainer import GRPOTrainer  # noqa: E402
from .verify import extract_answer, is_equivalent  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "GRPOConfig",
    "GRPOTrainer",
    "MathEvalCallback",
    "accuracy_reward",
    "compare_results",
    "evaluate",
    "extract_answer",
    "format_reward",
    "get_reward_funcs",
    "is_equivalent",
    "kl_penalty",
    "load_math_dataset",
    "outcome_advantages",
    "zero_variance_mask",
]
