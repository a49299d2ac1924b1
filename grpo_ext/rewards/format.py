"""format_reward: 1.0 when a completion states a final answer in the expected form."""

from __future__ import annotations

from typing import Any

from ..verify.extract import MARKER_FORMS, extract_marked_answer, find_answer
from ._common import completion_text

FORMATS = ("any",) + MARKER_FORMS


def format_reward(completions: list[Any], *, form: str = "any", **kwargs: Any) -> list[float]:
    """1.0 when the completion gives a final answer in ``form``, else 0.0.

    Args:
        form: ``"boxed"`` (``\\boxed{...}``, the DeepSeekMath prompt's instruction), ``"gsm8k"``
            (``#### N``), ``"answer_is"`` ("The answer is N"), ``"chinese"`` ("答案是 N"), or
            ``"any"`` of these. A bare trailing number never counts.
    """
    if form not in FORMATS:
        raise ValueError(f"format_reward form must be one of {list(FORMATS)}, got {form!r}")
    rewards = []
    for completion in completions:
        text = completion_text(completion)
        answer = extract_marked_answer(text) if form == "any" else find_answer(text, form)
        rewards.append(0.0 if answer is None else 1.0)
    return rewards
