"""Pick reward functions by name, as recipes do: ``get_reward_funcs(["accuracy", "format"])``."""

from __future__ import annotations

import difflib
import functools
from typing import Any, Callable

from .accuracy import accuracy_reward
from .format import format_reward

RewardFunc = Callable[..., list]

# name -> (function, {option accepted by get_reward_funcs: keyword of the function})
_REGISTRY: dict[str, tuple[RewardFunc, dict[str, str]]] = {
    "accuracy": (accuracy_reward, {"last_number_fallback": "last_number_fallback", "strict": "strict"}),
    "format": (format_reward, {"answer_form": "form"}),
}


def register_reward(name: str, func: RewardFunc, options: dict[str, str] | None = None) -> None:
    """Make ``func`` available to :func:`get_reward_funcs` (and recipes) as ``name``.

    Args:
        options: option names that :func:`get_reward_funcs` accepts, mapped to ``func``'s keywords.
    """
    if name in _REGISTRY:
        raise ValueError(f"a reward named {name!r} is already registered")
    _REGISTRY[name] = (func, dict(options or {}))


def reward_names() -> list[str]:
    return sorted(_REGISTRY)


def get_reward_funcs(names: list[str] | str, **options: Any) -> list[RewardFunc]:
    """The reward functions called ``names``, with ``options`` bound to those that take them.

    Known names: ``accuracy`` (options ``strict``, ``last_number_fallback``), ``format`` (option
    ``answer_form``: ``any``, ``boxed``, ``gsm8k``, ``answer_is``, ``chinese``), plus any added
    with :func:`register_reward`. The returned functions keep their ``__name__`` (TRL logs
    ``rewards/<name>/mean`` from it).
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no reward function named; known: {reward_names()}")
    known_options = {opt for _, opts in _REGISTRY.values() for opt in opts}
    unknown = sorted(set(options) - known_options)
    if unknown:
        raise ValueError(f"unknown reward option(s) {unknown}; known: {sorted(known_options)}")
    funcs = []
    for name in names:
        if name not in _REGISTRY:
            close = difflib.get_close_matches(name, _REGISTRY, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown reward function {name!r}.{hint} Known: {reward_names()}")
        func, accepted = _REGISTRY[name]
        bound = {kw: options[opt] for opt, kw in accepted.items() if opt in options}
        funcs.append(functools.update_wrapper(functools.partial(func, **bound), func) if bound else func)
    return funcs
