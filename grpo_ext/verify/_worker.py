"""Sandbox worker: parses and compares answers with math-verify, one request per line on stdin.

Started by :class:`grpo_ext.verify.sandbox.VerifierPool` as ``python .../grpo_ext/verify/_worker.py
MEMORY_MB``: run as a script, so that it imports math-verify and :mod:`guard` only, never the
``grpo_ext`` package (which pulls in torch). It caps its own address space once imported, then
answers each JSON request ``{"pred", "gold"}`` with ``{"v": verdict}`` and ``{"extract": text}``
(math-verify's extraction over a whole completion) with ``{"a": answer or null}``. The parent kills it when a
request overruns its deadline.
"""

from __future__ import annotations

import json
import resource
import sys

if __package__:
    from .guard import symbolic_rejection, text_rejection
else:  # run as a script: this file's folder is on sys.path
    from guard import symbolic_rejection, text_rejection


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _parse(text: str):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    parsed = parse(f"${text}$", extraction_config=configs, parsing_timeout=None)
    if not parsed:
        parsed = parse(text, extraction_config=configs, parsing_timeout=None)
    return parsed


def _exact_rational(expr):
    from sympy import Basic

    if not isinstance(expr, Basic):
        return None
    value = expr.doit()
    return value if value.is_Rational else None


def judge(pred: str, gold: str) -> str:
    """``"equal"``, ``"not_equal"`` or ``"gold_unparseable"`` for two normalised answers."""
    from math_verify import verify

    if symbolic_rejection(gold) is not None:
        return "gold_unparseable"
    try:
        gold_parsed = _parse(gold)
    except MemoryError:
        raise
    except Exception:
        return "gold_unparseable"
    if not gold_parsed:
        return "gold_unparseable"
    if symbolic_rejection(pred) is not None:
        return "not_equal"
    pred_parsed = _parse(pred)
    if not pred_parsed:
        return "not_equal"
    if not verify(gold_parsed, pred_parsed, timeout_seconds=None):
        return "not_equal"
    # math-verify compares numbers to a fixed precision, so 1/2004! "equals" 1/2006!. When both
    # sides were written exactly (no decimal point) and are rationals, compare them exactly.
    if "." not in pred and "." not in gold:
        g, p = _exact_rational(gold_parsed[0]), _exact_rational(pred_parsed[0])
        if g is not None and p is not None and g != p:
            return "not_equal"
    return "equal"


def extract(text: str) -> str | None:
    """The answer math-verify's own extraction finds in a whole completion (its matched text), or None."""
    from math_verify import parse

    if text_rejection(text) is not None:
        return None
    parsed = parse(text, parsing_timeout=None)
    if len(parsed) < 2 or not isinstance(parsed[-1], str):
        return None
    return parsed[-1]


def handle(request: dict) -> dict:
    """One request: ``{"pred", "gold"}`` -> ``{"v": verdict}``; ``{"extract": text}`` -> ``{"a": answer}``."""
    if "extract" in request:
        return {"a": extract(request["extract"])}
    return {"v": judge(request["pred"], request["gold"])}


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # math-verify warns once about its disabled timeout: we own the timeout
    _parse("1")  # import and warm the parser before capping memory and announcing readiness
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except MemoryError:
            answer = {"v": "memory", "a": None}
        except Exception:  # a parser crash on hostile input means "no verdict / no answer", never a dead pool
            answer = {"v": "error", "a": None}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
