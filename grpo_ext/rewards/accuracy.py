"""accuracy_reward: 1.0 when a completion's final answer is equivalent to the gold answer."""

from __future__ import annotations

import logging
from typing import Any

from .. import verify
from ..verify.sandbox import EQUAL, GOLD_UNPARSEABLE
from ._common import completion_text

logger = logging.getLogger(__name__)

_LOGGED_COUNTERS = ("symbolic", "timeouts", "cache_hits", "rejected", "unparseable_golds")


def accuracy_reward(
    completions: list[Any],
    answer: list[str | None] | None = None,
    *,
    last_number_fallback: bool = False,
    **kwargs: Any,
) -> list[float | None]:
    """1.0 when the final answer extracted from a completion is equivalent to the gold, else 0.0.

    TRL reward signature: ``completions`` are strings or conversational message lists, ``answer``
    is the dataset's gold final-answer column. The whole batch is verified at once in the sandbox
    pool (:mod:`grpo_ext.verify`).

    - A completion without an extractable answer scores 0.0.
    - A gold that cannot be parsed scores 0.0 for every completion (never 1.0: that would reward
      anything), with a logged warning and the ``verify/unparseable_golds`` counter.
    - A gold of ``None`` means the reward does not apply to that row: the result is ``None``
      (TRL's convention), and TRL leaves the row out of the group baseline.

    Args:
        last_number_fallback: accept the completion's last number when it states no answer in
            a recognised form (for plain-number datasets).
        kwargs: TRL passes the other dataset columns and ``log_metric``; the verification counters
            of this batch are logged through it as ``verify/<counter>``.
    """
    if answer is None:
        raise ValueError(
            "accuracy_reward needs the gold answers: the dataset must have an 'answer' column (the gold final "
            "answer as a string). grpo_ext.data.load_math_dataset produces it."
        )
    if len(answer) != len(completions):
        raise ValueError(f"got {len(completions)} completions but {len(answer)} gold answers")
    before = verify.stats()
    predictions = [verify.extract_answer(completion_text(c), last_number_fallback=last_number_fallback)
                   for c in completions]
    applicable = [i for i, gold in enumerate(answer) if gold is not None]
    verdicts = verify.judge([predictions[i] for i in applicable], [str(answer[i]) for i in applicable])
    rewards: list[float | None] = [None] * len(completions)
    bad_golds = set()
    for i, verdict in zip(applicable, verdicts):
        rewards[i] = 1.0 if verdict == EQUAL else 0.0
        if verdict == GOLD_UNPARSEABLE:
            bad_golds.add(str(answer[i])[:200])
    for gold in sorted(bad_golds):
        logger.warning("accuracy_reward: the gold answer %r cannot be parsed; its completions score 0.0", gold)

    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        after = verify.stats()
        for name in _LOGGED_COUNTERS:
            log_metric(f"verify/{name}", float(after[name] - before[name]))
    return rewards
