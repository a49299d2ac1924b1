"""Answer extraction and equivalence for math rewards, bounded in time and memory for any input.

- :func:`extract_answer` finds a completion's final answer: the marker forms first (``\\boxed{}``,
  ``#### N``, "The answer is N", "答案是 N", a final ``A: N`` line; :mod:`grpo_ext.verify.extract`),
  then math-verify's own extraction over the whole completion (in the sandbox), then the last
  number. ``strict=True`` stops after the markers. :func:`extract_answers` does a batch at once.
- :func:`is_equivalent` / :func:`are_equivalent` decide whether a prediction equals the gold
  answer. Exact paths first (numbers, fractions, percentages, multiple-choice letters, text,
  order-insensitive answer lists), then math-verify (``parse(gold)``, ``parse(pred)``,
  ``verify(gold, pred)``) inside killable, memory-capped worker processes
  (:mod:`grpo_ext.verify.sandbox`), and only for input that passed a whitelist
  (:mod:`grpo_ext.verify.guard`). Results are cached per (prediction, gold) pair.
- :func:`stats` returns counters a trainer can log: verifications, timeouts, cache hits,
  unparseable golds.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

from .extract import MAX_ANSWER_CHARS, TAIL_CHARS, extract_marked_answer_with_form, find_answer, normalize_answer
from .fast import as_unordered_list, choice_letter, exact_value, is_text_answer, parse_rational, rationals_equal
from .guard import nesting_depth, symbolic_rejection, text_rejection
from .sandbox import EQUAL, GOLD_UNPARSEABLE, NOT_EQUAL, TIMEOUT, configure, get_pool

CACHE_SIZE = 65_536
MAX_LIST_ITEMS = 16


@dataclass
class VerificationStats:
    """Counters since the last :func:`reset_stats` (this process only)."""

    verifications: int = 0  #: (prediction, gold) pairs judged
    fast_path: int = 0  #: decided without symbolic algebra
    extracted_by_math_verify: int = 0  #: answers no marker gave, found by math-verify's extraction
    no_answer: int = 0  #: completions with no extractable answer
    symbolic: int = 0  #: sent to the sandbox
    cache_hits: int = 0
    timeouts: int = 0  #: sandbox overruns (worker killed; verdict: not equivalent)
    rejected: int = 0  #: predictions refused by the whitelist or the size limits
    unparseable_golds: int = 0


_stats = VerificationStats()
_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
_lock = threading.Lock()


def stats() -> dict[str, int]:
    """A snapshot of the verification counters."""
    with _lock:
        return asdict(_stats)


def reset_stats() -> None:
    """Zero the counters (the cache is kept)."""
    global _stats
    with _lock:
        _stats = VerificationStats()


def clear_cache() -> None:
    """Forget cached verdicts."""
    with _lock:
        _cache.clear()


def _count(**increments: int) -> None:
    """Add to several counters under one lock acquisition."""
    with _lock:
        for field, n in increments.items():
            setattr(_stats, field, getattr(_stats, field) + n)


_extract_cache: OrderedDict[str, str | None] = OrderedDict()
_BARE_NUMBER_RE = re.compile(r"-?\d{1,50}(?:\.\d{1,50})?")


def _last_number(text: str) -> tuple[str | None, str | None]:
    number = find_answer(text, "last_number")
    return (number, "last_number") if number is not None else (None, None)


def extract_answers_with_form(texts: list[str], *, strict: bool = False,
                              last_number_fallback: bool = False) -> list[tuple[str | None, str | None]]:
    """The final answer of each completion and the form it was found in, or ``(None, None)``.

    Order: the marker forms (:mod:`grpo_ext.verify.extract`), then math-verify's extraction over the
    whole completion, run in the sandbox (form ``"math_verify"``), then the last number (form
    ``"last_number"``). With ``strict=True`` only the markers count (plus the last number when
    ``last_number_fallback``): for rewards that enforce the answer format. Every answer math-verify
    extracts is therefore found by the default mode. Sandbox results are cached per text, so the
    repeated completions of a group cost one extraction.
    """
    results = [extract_marked_answer_with_form(t, last_number_fallback=strict and last_number_fallback)
               if isinstance(t, str) else (None, None) for t in texts]
    if strict:
        return results
    missing = []
    for i, (answer, _) in enumerate(results):
        if answer is not None or not isinstance(texts[i], str) or not texts[i].strip():
            continue
        if _BARE_NUMBER_RE.fullmatch(texts[i].strip()):  # what math-verify extracts from a bare number: itself
            results[i] = (texts[i].strip(), "math_verify")
        elif text_rejection(texts[i][-TAIL_CHARS:]) is not None:  # code shapes never reach math-verify's parser
            results[i] = _last_number(texts[i])
        else:
            missing.append(i)
    tails = {i: texts[i].replace("\x00", "")[-TAIL_CHARS:] for i in missing}
    with _lock:
        known = {i: _extract_cache[tails[i]] for i in missing if tails[i] in _extract_cache}
    todo = sorted({tails[i] for i in missing if i not in known})
    found = dict(zip(todo, get_pool().extract(todo)))
    with _lock:
        for text, answer in found.items():
            _extract_cache[text] = answer
            if len(_extract_cache) > CACHE_SIZE:
                _extract_cache.popitem(last=False)
    by_math_verify = 0
    for i in missing:
        answer = known[i] if i in known else found[tails[i]]
        if answer is not None and len(answer) <= MAX_ANSWER_CHARS:
            results[i] = (answer, "math_verify")
            by_math_verify += 1
        else:
            results[i] = _last_number(texts[i])
    _count(extracted_by_math_verify=by_math_verify)
    return results


def extract_answers(texts: list[str], *, strict: bool = False, last_number_fallback: bool = False) -> list[str | None]:
    """:func:`extract_answers_with_form` without the forms; counts ``no_answer`` in :func:`stats`."""
    answers = [a for a, _ in extract_answers_with_form(texts, strict=strict, last_number_fallback=last_number_fallback)]
    _count(no_answer=sum(a is None for a in answers))
    return answers


def extract_answer(text: str, *, strict: bool = False, last_number_fallback: bool = False) -> str | None:
    """The final answer of a completion, or None when it gives none (see :func:`extract_answers_with_form`).

    Args:
        text: a completion (untrusted model output).
        strict: accept only the marker forms (``\\boxed{}``, ``#### N``, "The answer is N", "答案是 N",
            a final ``A: N`` line), as a reward that enforces the format wants.
        last_number_fallback: in strict mode, also accept the last number of the text (the default
            mode always ends with it).

    Returns:
        The raw answer text (not yet normalised; see :func:`normalize_answer`), or None.
    """
    return extract_answers([text], strict=strict, last_number_fallback=last_number_fallback)[0]


def _gold_is_sane(gold: str) -> bool:
    return bool(gold) and len(gold) <= MAX_ANSWER_CHARS and nesting_depth(gold) is not None


def _fast_verdict(pred: str, gold: str) -> str | None:
    """A verdict reached without symbolic algebra, or None to ask the sandbox."""
    if not _gold_is_sane(gold):
        return GOLD_UNPARSEABLE
    if not pred:
        return NOT_EQUAL
    if pred == gold:
        return EQUAL
    letter = choice_letter(gold)
    if letter is not None:
        return EQUAL if choice_letter(pred) == letter else NOT_EQUAL
    if is_text_answer(gold):
        return NOT_EQUAL  # text answers compare as text, already unequal
    g, p = parse_rational(gold), parse_rational(pred)
    if g is not None and p is not None:
        return EQUAL if rationals_equal(p, g) else NOT_EQUAL
    if "\\text" not in gold and pred.replace(" ", "") == gold.replace(" ", ""):
        return EQUAL  # the same LaTeX up to spacing
    # radicals, multiples of pi, tuples, intervals, matrices, written exactly (a decimal against an
    # irrational goes to math-verify, which compares numbers to a precision)
    g, p = (exact_value(gold), exact_value(pred)) if "." not in gold + pred else (None, None)
    if g is not None and p is not None:
        return EQUAL if g == p else NOT_EQUAL
    return None


def _judge_many(pairs: list[tuple[str, str]]) -> list[str]:
    """Verdicts for normalised (prediction, gold) pairs: cache, fast path, lists, then the sandbox."""
    verdicts: list[str | None] = [None] * len(pairs)
    to_sandbox: dict[tuple[str, str], list[int]] = {}
    lists: list[tuple[int, list[str], list[str]]] = []
    fast = rejected = 0
    for i, (pred, gold) in enumerate(pairs):
        with _lock:
            cached = _cache.get((pred, gold))
            if cached is not None:
                _cache.move_to_end((pred, gold))
                _stats.cache_hits += 1
        if cached is not None:
            verdicts[i] = cached
            continue
        verdict = _fast_verdict(pred, gold)
        if verdict is not None:
            fast += 1
            verdicts[i] = verdict
            continue
        gold_items, pred_items = as_unordered_list(gold), as_unordered_list(pred)
        if gold_items is not None and len(gold_items) <= MAX_LIST_ITEMS:
            if pred_items is None or len(pred_items) != len(gold_items):
                verdicts[i] = NOT_EQUAL
            else:
                lists.append((i, pred_items, gold_items))
            continue
        if symbolic_rejection(pred) is not None and symbolic_rejection(gold) is None:
            rejected += 1
            verdicts[i] = NOT_EQUAL
            continue
        to_sandbox.setdefault((pred, gold), []).append(i)

    if lists:  # order-insensitive: a perfect matching of items by equivalence
        item_pairs = [(p, g) for _, preds, golds in lists for g in golds for p in preds]
        item_verdicts = iter(_judge_many(item_pairs))
        for i, preds, golds in lists:
            matrix = [[next(item_verdicts) for _ in preds] for _ in golds]
            if any(v == GOLD_UNPARSEABLE for row in matrix for v in row):
                verdicts[i] = GOLD_UNPARSEABLE
            else:
                verdicts[i] = EQUAL if _perfect_matching(matrix) else NOT_EQUAL

    if to_sandbox:
        keys = list(to_sandbox)
        timeouts = 0
        for key, verdict in zip(keys, get_pool().run(keys)):
            if verdict == TIMEOUT:
                timeouts += 1
                verdict = NOT_EQUAL
            for i in to_sandbox[key]:
                verdicts[i] = verdict
        _count(symbolic=len(keys), timeouts=timeouts)
    _count(fast_path=fast, rejected=rejected)

    with _lock:
        for pair, verdict in zip(pairs, verdicts):
            _cache[pair] = verdict
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return verdicts  # type: ignore[return-value]


def _perfect_matching(matrix: list[list[str]]) -> bool:
    n = len(matrix)
    match_of_pred: dict[int, int] = {}

    def assign(g: int, seen: set[int]) -> bool:
        for p in range(n):
            if matrix[g][p] == EQUAL and p not in seen:
                seen.add(p)
                if p not in match_of_pred or assign(match_of_pred[p], seen):
                    match_of_pred[p] = g
                    return True
        return False

    return all(assign(g, set()) for g in range(n))


def judge(predictions: list[str | None], golds: list[str | None]) -> list[str]:
    """Verdicts (``"equal"``, ``"not_equal"``, ``"gold_unparseable"``) for raw answer strings.

    A None or empty gold is unparseable; a None prediction is not equal.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"got {len(predictions)} predictions but {len(golds)} gold answers")
    pairs = [
        (normalize_answer(p) if isinstance(p, str) and len(p) <= MAX_ANSWER_CHARS else "",
         normalize_answer(g) if isinstance(g, str) else "")
        for p, g in zip(predictions, golds)
    ]
    verdicts = _judge_many(pairs)
    _count(verifications=len(pairs), unparseable_golds=sum(v == GOLD_UNPARSEABLE for v in verdicts))
    return verdicts


def are_equivalent(predictions: list[str | None], golds: list[str | None]) -> list[bool]:
    """:func:`is_equivalent` for many pairs at once, spread over the sandbox's workers."""
    return [v == EQUAL for v in judge(predictions, golds)]


def is_equivalent(prediction: str, gold: str) -> bool:
    """True when ``prediction`` is mathematically equivalent to ``gold`` (two answer strings).

    Never evaluates model text as Python; bounded in time and memory for any input (a pair that
    overruns the sandbox's timeout or memory cap is not equivalent). False when the gold cannot be
    parsed.
    """
    return are_equivalent([prediction], [gold])[0]


__all__ = [
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
    "reset_stats",
    "stats",
]
