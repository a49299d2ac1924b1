"""accuracy_reward: 1.0 when a completion's final answer is equivalent to the gold answer."""

from __future__ import annotations

import functools
import logging
from typing import Any

from .. import verify
from ..verify.verdicts import EQUAL, GOLD_UNPARSEABLE
from ._common import completion_text

logger = logging.getLogger(__name__)

_LOGGED_COUNTERS = ("symbolic", "timeouts", "worker_failures", "cache_hits", "rejected", "unparseable_golds")
#: The no-answer warning looks at this many completions at least, and fires above this share.
NO_ANSWER_WINDOW, NO_ANSWER_WARN_SHARE = 64, 0.5
_window = {"completions": 0, "no_answer": 0, "warned": False}


def _watch_no_answer(total: int, missing: int, strict: bool) -> None:
    """Warn once per process when most completions over a window state no answer at all."""
    _window["completions"] += total
    _window["no_answer"] += missing
    if _window["completions"] < NO_ANSWER_WINDOW:
        return
    share = _window["no_answer"] / _window["completions"]
    _window["completions"] = _window["no_answer"] = 0
    if share > NO_ANSWER_WARN_SHARE and not _window["warned"]:
        _window["warned"] = True
        fix = ("strict=True accepts only \\boxed{}, '#### N', 'The answer is N', '答案是 N' and a final 'A: N' line: "
               "drop strict (make_accuracy_reward(strict=False), recipe reward_strict: false) or "
               if strict else "")
        logger.warning(
            "accuracy_reward: %.0f%% of the last completions state no answer that can be extracted, so they all score "
            "0 and the policy gets no signal from them (logged as verify/no_answer). The prompt probably does not ask "
            "for a final answer in a recognisable form: %sask for one in the prompt (grpo_ext.data's templates end "
            "with 'put your final answer within \\boxed{}'), or give the completions more max_completion_length if "
            "they are cut off before the answer.", 100 * share, fix)


def accuracy_reward(
    completions: list[Any],
    answer: list[str | None] | None = None,
    *,
    solution: list[str | None] | None = None,
    strict: bool = False,
    last_number_fallback: bool = False,
    **kwargs: Any,
) -> list[float | None]:
    """1.0 when the final answer extracted from a completion is equivalent to the gold, else 0.0.

    TRL reward signature: ``completions`` are strings or conversational message lists, ``answer``
    is the dataset's gold final-answer column; TRL's and Open-R1's ``solution`` column (a reference
    solution, or a LaTeX gold) is used when there is no ``answer``. The whole batch is extracted and
    verified at once (:mod:`grpo_ext.verify`).

    - The answer is extracted as :func:`grpo_ext.verify.extract_answers` does: the marker forms (the
      last statement wins), a completion that is only an answer, math-verify's extraction over the
      whole completion, then the last number that is not part of an expression; with
      ``strict=True`` the marker forms only (a reward that enforces the answer format).
    - The gold is read as generously and as safely (:func:`grpo_ext.verify.read_golds`): ``$..$``,
      ``\\boxed{}``, units, a short sentence or a whole reference solution.
    - A completion without an extractable answer scores 0.0 and is counted in ``verify/no_answer``
      (the share of this batch); when more than half of the completions over a window of 64 have
      none, a warning names the likely cause and the fix, once.
    - A gold that cannot be parsed scores 0.0 for every completion (never 1.0: that would reward
      anything), with a logged warning and the ``verify/unparseable_golds`` counter.
    - A gold of ``None`` means the reward does not apply to that row: the result is ``None``
      (TRL's convention), and TRL leaves the row out of the group baseline.

    TRL passes no options to a reward function: bind them with :func:`make_accuracy_reward` (or
    ``get_reward_funcs(["accuracy"], strict=True)``, or a recipe's ``reward_strict``).

    Args:
        solution: TRL's column of reference solutions (or LaTeX golds), read like a completion; used
            when ``answer`` is not given.
        strict: accept only the marker forms.
        last_number_fallback: in strict mode, also accept the last number (the default mode always does).
        kwargs: TRL passes the other dataset columns and ``log_metric``; the verification counters
            of this batch are logged through it as ``verify/<counter>``.
    """
    if answer is None:
        answer = solution
    if answer is None:
        raise ValueError(
            "accuracy_reward needs the gold answers: the dataset must have an 'answer' column (the gold final "
            "answer as a string) or TRL's 'solution' column. grpo_ext.data.load_math_dataset produces 'answer'."
        )
    if len(answer) != len(completions):
        raise ValueError(f"got {len(completions)} completions but {len(answer)} gold answers")
    before = verify.stats()
    predictions = verify.extract_answers([completion_text(c) for c in completions], strict=strict,
                                         last_number_fallback=last_number_fallback)
    missing = sum(p is None for p in predictions)
    _watch_no_answer(len(predictions), missing, strict)
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
        log_metric("verify/no_answer", missing / max(len(predictions), 1))
    return rewards


accuracy_reward.uses_verifier = True  # GRPOTrainer starts the verification workers early for it


def make_accuracy_reward(**options: Any):
    """:func:`accuracy_reward` with ``options`` (``strict``, ``last_number_fallback``) bound, for TRL.

    TRL calls a reward function with the completions and the dataset columns only; this returns one
    that carries the options and keeps the name TRL logs (``rewards/accuracy_reward/mean``).
    """
    unknown = sorted(set(options) - {"strict", "last_number_fallback"})
    if unknown:
        raise ValueError(f"unknown accuracy_reward option(s) {unknown}; known: ['last_number_fallback', 'strict']")
    return functools.update_wrapper(functools.partial(accuracy_reward, **options), accuracy_reward)
