"""Math reward functions with TRL's signature ``f(completions, **columns) -> list[float | None]``."""

from .accuracy import accuracy_reward, make_accuracy_reward
from .format import format_reward
from .registry import get_reward_funcs, register_reward, reward_names

__all__ = ["accuracy_reward", "make_accuracy_reward", "format_reward", "get_reward_funcs", "register_reward", "reward_names"]
