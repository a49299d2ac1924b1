"""The verification pipeline: extract, normalise, decide exactly, decide symbolically; caches and counters.

- :func:`extract_answers_with_form`: the marker forms (:mod:`~grpo_ext.verify.extract`), then a
  completion that is only an answer, then math-verify's extraction in the sandbox, then the last
  number.
- :func:`judge`: gold answers are read generously (:func:`~grpo_ext.verify.extract.read_gold`, or like
  a completion when they are a whole reference solution), both sides normalised
  (:mod:`~grpo_ext.verify.normalize`), decided exactly where possible (:mod:`~grpo_ext.verify.exact`),
  and the rest by math-verify in the sandbox (:mod:`~grpo_ext.verify.sandbox`,
  :mod:`~grpo_ext.verify.symbolic`) after the whitelist (:mod:`~grpo_ext.verify.guard`).

Verdicts are cached per (prediction, gold) pair, except those that do not describe the pair (a
timeout, a crashed worker). Both caches are bounded and :func:`clear_cache` empties them.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

from .exact import Plan, decide
from .extract import (MAX_ANSWER_CHARS, TAIL_CHARS, extract_marked_answer_with_form, last_number, number_in_expression,
                      read_gold, whole_answer)
from .guard import nesting_depth, symbolic_rejection, text_rejection
from .normalize import normalize_answer
from .sandbox import CRASHED, get_pool
from .verdicts import EQUAL, GOLD_UNPARSEABLE, NOT_EQUAL, TIMEOUT

CACHE_SIZE = 65_536
#: Entries of the cache of math-verify's extraction (keyed by a digest of the text, not the text).
EXTRACT_CACHE_SIZE = 65_536
GOLD_CACHE_SIZE = 8_192
#: Lists inside lists inside ... are decided this deep at most.
_MAX_DEPTH = 4


@dataclass
class VerificationStats:
    """Counters since the last :func:`reset_stats` (this process only)."""

    verifications: int = 0  #: (prediction, gold) pairs judged
    fast_path: int = 0  #: decided without symbolic algebra
    extracted_by_math_verify: int = 0  #: answers no marker gave, found by math-verify's extraction
    no_answer: int = 0  #: completions with no extractable answer
    symbolic: int = 0  #: sent to the sandbox
    cache_hits: int = 0
    timeouts: int = 0  #: sandbox overruns (worker killed; verdict: not equivalent, not cached)
    worker_failures: int = 0  #: pairs whose worker died on them twice (verdict: not equivalent, not cached)
    rejected: int = 0  #: predictions refused by the whitelist or the size limits
    unparseable_golds: int = 0


_stats = VerificationStats()
_lock = threading.Lock()


class _LRU:
    """A bounded mapping that forgets its least recently used entries."""

    def __init__(self, size: int):
        self.size, self.data = size, OrderedDict()

    def get(self, key):
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def __contains__(self, key) -> bool:
        return key in self.data

    def put(self, key, value) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()


_verdicts = _LRU(CACHE_SIZE)
_extractions = _LRU(EXTRACT_CACHE_SIZE)  # digest -> (answer or "",)
_golds = _LRU(GOLD_CACHE_SIZE)


def stats() -> dict[str, int]:
    """A snapshot of the verification counters."""
    with _lock:
        return asdict(_stats)


def reset_stats() -> None:
    """Zero the counters (the caches are kept)."""
    global _stats
    with _lock:
        _stats = VerificationStats()


def clear_cache() -> None:
    """Forget every cached verdict, extraction and gold reading."""
    with _lock:
        _verdicts.clear()
        _extractions.clear()
        _golds.clear()
    _normalized.cache_clear()
    from .deepseek import clear_cache as clear_deepseek_cache

    clear_deepseek_cache()


def _count(**increments: int) -> None:
    """Add to several counters under one lock acquisition."""
    with _lock:
        for field, n in increments.items():
            setattr(_stats, field, getattr(_stats, field) + n)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _math_verify_extract(texts: list[str]) -> list[str | None]:
    """math-verify's extraction of each text's tail, in the sandbox, cached by digest."""
    tails = [t.replace("\x00", "")[-TAIL_CHARS:] for t in texts]
    keys = [_digest(t) for t in tails]
    with _lock:
        known = {k: _extractions.get(k) for k in keys if k in _extractions}
    todo = {k: t for k, t in zip(keys, tails) if k not in known}
    if todo:
        found = get_pool().extract(list(todo.values()))
        with _lock:
            for k, answer in zip(todo, found):
                known[k] = (answer or "",)
                _extractions.put(k, known[k])
    return [known[k][0] or None for k in keys]


def extract_answers_with_form(texts: list[str], *, strict: bool = False,
                              last_number_fallback: bool = False) -> list[tuple[str | None, str | None]]:
    """The final answer of each completion and the form it was found in, or ``(None, None)``.

    Order: the marker forms, the last statement winning (:mod:`grpo_ext.verify.extract`); then the
    whole completion when it is only an answer (``"whole"``); then math-verify's extraction over the
    text, run in the sandbox (``"math_verify"``); then the last number that is not part of a larger
    expression (``"last_number"``). With ``strict=True`` only the markers count (plus the last number
    when ``last_number_fallback``): for rewards that enforce the answer format. Sandbox results are
    cached per text, so the repeated completions of a group cost one extraction.
    """
    results = [extract_marked_answer_with_form(t, last_number_fallback=strict and last_number_fallback)
               if isinstance(t, str) else (None, None) for t in texts]
    if strict:
        return results
    missing = []
    for i, (answer, _) in enumerate(results):
        text = texts[i]
        if answer is not None or not isinstance(text, str) or not text.strip():
            continue
        whole = whole_answer(text.replace("\x00", ""))
        if whole is not None:
            results[i] = (whole, "whole")
        elif text_rejection(text[-TAIL_CHARS:]) is not None:  # code shapes never reach math-verify's parser
            results[i] = _last_number(text)
        else:
            missing.append(i)
    found = _math_verify_extract([texts[i] for i in missing]) if missing else []
    by_math_verify = 0
    for i, answer in zip(missing, found):
        if answer is not None and len(answer) <= MAX_ANSWER_CHARS and not number_in_expression(texts[i], answer):
            results[i] = (answer, "math_verify")
            by_math_verify += 1
        else:
            results[i] = _last_number(texts[i])
    _count(extracted_by_math_verify=by_math_verify)
    return results


def _last_number(text: str) -> tuple[str | None, str | None]:
    number = last_number(text.replace("\x00", ""))
    return (number, "last_number") if number is not None else (None, None)


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


def read_golds(golds: list[str | None]) -> list[str | None]:
    """The answer each gold states (:func:`~grpo_ext.verify.extract.read_gold`; a reference solution
    without a marker is read like a completion), or None for a missing or empty gold."""
    out: list[str | None] = [None] * len(golds)
    unread: dict[str, list[int]] = {}
    for i, gold in enumerate(golds):
        if not isinstance(gold, str) or not gold.strip():
            continue
        key = gold if len(gold) <= 256 else _digest(gold)
        with _lock:
            cached = _golds.get(key)
        if cached is not None:
            out[i] = cached[0]
            continue
        answer, final = read_gold(gold)
        if final:
            out[i] = answer
            with _lock:
                _golds.put(key, (answer,))
        else:
            unread.setdefault(gold, []).append(i)
    if unread:
        texts = list(unread)
        for text, (answer, _) in zip(texts, extract_answers_with_form(texts)):
            for i in unread[text]:
                out[i] = answer
            with _lock:
                _golds.put(text if len(text) <= 256 else _digest(text), (answer,))
    return out


#: A group's samples share their gold and repeat answers: normalise each string once (at most 8,192 of
#: at most MAX_ANSWER_CHARS characters are kept, about 16 MB at worst).
_normalized = functools.lru_cache(maxsize=8192)(normalize_answer)


def _gold_is_sane(gold: str) -> bool:
    return bool(gold) and len(gold) <= MAX_ANSWER_CHARS and nesting_depth(gold) is not None


_RELATION_RE = re.compile(r"\\(?:ge|le|geq|leq|neq|ne|to|Rightarrow|implies|rightarrow|mapsto)\b|!=|[<>≥≤≠→⇒]")
_NAME_LHS_RE = re.compile(r"\s*[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z]\))?\s*(?:<|>|\\le|\\ge|\\ne|!=|≤|≥|≠)")


def _relation_against_a_value(pred: str, gold: str) -> bool:
    r"""An inequality or an arrow (``\ge 12``, ``x > 3``, ``12 \to 15``) is not a value: it never equals a gold
    that holds none (unless it names a variable on its left and holds one relation; the interval rules read
    those). Equations are not this rule's: ``3! \times 5! = 720`` and ``a+b = -1`` state their value on the
    right (the chain rule and math-verify read them); nor is ``\approx``."""
    if _RELATION_RE.search(gold) or not _RELATION_RE.search(pred):
        return False
    return not (_NAME_LHS_RE.match(pred) and len(_RELATION_RE.findall(pred)) == 1)


def _decide_many(pairs: list[tuple[str, str]], depth: int = 0) -> tuple[list[str], set[int]]:
    """Verdicts for normalised (prediction, gold) pairs: cache, exact decisions and their plans, then
    the sandbox; and the indices whose verdict does not describe the pair (a timeout or a crash on the
    way), which are not cached."""
    verdicts: list[str | None] = [None] * len(pairs)
    to_sandbox: dict[tuple[str, str], list[int]] = {}
    plans: list[tuple[int, Plan]] = []
    fast = rejected = hits = 0
    for i, (pred, gold) in enumerate(pairs):
        with _lock:
            cached = _verdicts.get((pred, gold))
        if cached is not None:
            hits += 1
            verdicts[i] = cached
            continue
        if not _gold_is_sane(gold):
            verdicts[i] = GOLD_UNPARSEABLE
            continue
        decision = decide(pred, gold) if depth <= _MAX_DEPTH else None
        if isinstance(decision, str):
            fast += 1
            verdicts[i] = decision
        elif isinstance(decision, Plan):
            plans.append((i, decision))
        elif symbolic_rejection(pred) is not None and symbolic_rejection(gold) is None:
            rejected += 1
            verdicts[i] = NOT_EQUAL
        elif _relation_against_a_value(pred, gold):
            fast += 1
            verdicts[i] = NOT_EQUAL
        else:
            to_sandbox.setdefault((pred, gold), []).append(i)

    uncacheable: set[int] = set()
    if plans:
        sub_verdicts, sub_uncacheable = _decide_many([pair for _, plan in plans for pair in plan.pairs], depth + 1)
        start = 0
        for i, plan in plans:
            end = start + len(plan.pairs)
            verdicts[i] = plan.verdict(sub_verdicts[start:end])
            if sub_uncacheable.intersection(range(start, end)):
                uncacheable.add(i)
            start = end

    if to_sandbox:
        keys = list(to_sandbox)
        timeouts = failures = 0
        for key, verdict in zip(keys, get_pool().run(keys)):
            if verdict in (TIMEOUT, CRASHED):
                timeouts += verdict == TIMEOUT
                failures += verdict == CRASHED
                uncacheable.update(to_sandbox[key])
                verdict = NOT_EQUAL
            for i in to_sandbox[key]:
                verdicts[i] = verdict
        _count(symbolic=len(keys), timeouts=timeouts, worker_failures=failures)
    _count(fast_path=fast, rejected=rejected, cache_hits=hits)

    with _lock:
        for i, (pair, verdict) in enumerate(zip(pairs, verdicts)):
            if i not in uncacheable:
                _verdicts.put(pair, verdict)
    return verdicts, uncacheable  # type: ignore[return-value]


def judge(predictions: list[str | None], golds: list[str | None]) -> list[str]:
    """Verdicts (``"equal"``, ``"not_equal"``, ``"gold_unparseable"``) for raw answer strings.

    A prediction is an extracted answer; a gold may be a bare answer, a marked one or a whole
    reference solution (:func:`read_golds`). A None or empty gold is unparseable; a None
    prediction is not equal.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"got {len(predictions)} predictions but {len(golds)} gold answers")
    gold_answers = read_golds(list(golds))
    pairs = [
        (_normalized(p) if isinstance(p, str) and len(p) <= MAX_ANSWER_CHARS else "",
         _normalized(g) if isinstance(g, str) and len(g) <= MAX_ANSWER_CHARS else "")
        for p, g in zip(predictions, gold_answers)
    ]
    verdicts, _ = _decide_many(pairs)
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
