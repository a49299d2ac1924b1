"""grpo-ext: DeepSeekMath's Group Relative Policy Optimization on top of TRL.

The public names load on first use (PEP 562), so ``import grpo_ext`` and ``grpo-ext --help`` do not
import torch or TRL until something needs them; the supported trl range is checked at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._compat import check_trl_version

check_trl_version()

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "GRPOConfig": ".config",
    "GRPOTrainer": ".trainer",
    "MathEvalCallback": ".callbacks",
    "accuracy_reward": ".rewards",
    "compare_results": ".evaluation",
    "evaluate": ".evaluation",
    "extract_answer": ".verify",
    "format_reward": ".rewards",
    "get_reward_funcs": ".rewards",
    "is_equivalent": ".verify",
    "kl_penalty": ".losses",
    "load_math_dataset": ".data",
    "outcome_advantages": ".advantages",
    "zero_variance_mask": ".advantages",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'grpo_ext' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what static tools (type checkers, the API docs) see
    from .advantages import outcome_advantages, zero_variance_mask  # noqa: F401
    from .callbacks import MathEvalCallback  # noqa: F401
    from .config import GRPOConfig  # noqa: F401
    from .data import load_math_dataset  # noqa: F401
    from .evaluation import compare_results, evaluate  # noqa: F401
    from .losses import kl_penalty  # noqa: F401
    from .rewards import accuracy_reward, format_reward, get_reward_funcs  # noqa: F401
    from .trainer import GRPOTrainer  # noqa: F401
    from .verify import extract_answer, is_equivalent  # noqa: F401
