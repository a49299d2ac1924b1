"""Answer extraction and equivalence for math rewards, bounded in time and memory for any input.

The pipeline's stages, one module each, and where each rule lives:

1. :mod:`~grpo_ext.verify.extract`: the final answer of a completion (the marker forms, the last
   statement winning; a completion that is only an answer; math-verify's extraction in the
   sandbox; the last number that is not part of an expression), and of a gold answer.
2. :mod:`~grpo_ext.verify.normalize`: what is not part of an answer (``$``, units, spacing,
   thousands separators, degree marks, percent words, "and" between items ...).
3. :mod:`~grpo_ext.verify.exact`: exact decisions in the calling process (numbers with percent and
   scientific notation, the tolerance rule for long decimals, multiple choice, text, relations and
   named assignments, lists as sets, radicals, intervals, matrices).
4. :mod:`~grpo_ext.verify.symbolic`: math-verify's ``parse`` + ``verify``, run only inside the
   killable, memory-capped workers of :mod:`~grpo_ext.verify.sandbox`, and only for input that passed
   the whitelist of :mod:`~grpo_ext.verify.guard`.

:mod:`~grpo_ext.verify.pipeline` runs them in order, with the caches and the counters
(:func:`stats`); this module only re-exports.
"""

from .exact import MAX_LIST_ITEMS, TOLERANCE_MIN_PLACES
from .extract import ANSWER_FORMS, FORMS, MARKER_FORMS, MAX_ANSWER_CHARS, TAIL_CHARS
from .normalize import normalize_answer
from .pipeline import (
    VerificationStats,
    are_equivalent,
    clear_cache,
    extract_answer,
    extract_answers,
    extract_answers_with_form,
    is_equivalent,
    judge,
    read_golds,
    reset_stats,
    stats,
)
from .sandbox import configure, warm_up
from .verdicts import EQUAL, GOLD_UNPARSEABLE, NOT_EQUAL, TIMEOUT

__all__ = [
    "ANSWER_FORMS",
    "EQUAL",
    "FORMS",
    "GOLD_UNPARSEABLE",
    "MARKER_FORMS",
    "MAX_ANSWER_CHARS",
    "MAX_LIST_ITEMS",
    "NOT_EQUAL",
    "TAIL_CHARS",
    "TIMEOUT",
    "TOLERANCE_MIN_PLACES",
    "VerificationStats",
    "are_equivalent",
    "clear_cache",
    "configure",
    "extract_answer",
    "extract_answers",
    "extract_answers_with_form",
    "is_equivalent",
    "judge",
    "normalize_answer",
    "read_golds",
    "reset_stats",
    "stats",
    "warm_up",
]
