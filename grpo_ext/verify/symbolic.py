"""Stage 4: decide symbolically with math-verify, and its extraction over whole texts.

These functions run only inside a sandbox worker (:mod:`grpo_ext.verify._worker`, started by
:mod:`grpo_ext.verify.sandbox`), which bounds them in time and memory. They import math-verify and
:mod:`grpo_ext.verify.guard` only, never the ``grpo_ext`` package (which pulls in torch), and apply
the guard's whitelist again before math-verify's parser (whose plain expressions go through sympy's
``parse_expr``) sees any text.
"""

from __future__ import annotations

import functools

if __package__:
    from .guard import symbolic_rejection, text_rejection
else:  # imported by the worker script: this file's folder is on sys.path
    from guard import symbolic_rejection, text_rejection


@functools.lru_cache(maxsize=1)
def _configs():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [LatexExtractionConfig(), ExprExtractionConfig()]


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> tuple:
    """math-verify's parse of an answer, cached: a group's samples share the gold and repeat answers."""
    from math_verify import parse

    parsed = parse(f"${text}$", extraction_config=_configs(), parsing_timeout=None)
    if not parsed:
        parsed = parse(text, extraction_config=_configs(), parsing_timeout=None)
    return tuple(parsed)


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
    if not verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None):
        return "not_equal"
    # math-verify compares numbers to a fixed precision, so 1/2004! "equals" 1/2006!. When both
    # sides were written exactly (no decimal point) and are rationals, compare them exactly.
    if "." not in pred and "." not in gold:
        g, p = _exact_rational(gold_parsed[0]), _exact_rational(pred_parsed[0])
        if g is not None and p is not None and g != p:
            return "not_equal"
    return "equal"


def close_symbolically(a: str, b: str) -> str:
    """DeepSeek-Math's ``symbolic_equal``: ``"equal"`` when ``simplify(a - b) == 0`` or the two numeric
    values are within 1e-3 (absolute), else ``"not_equal"`` (also when either side is refused by the
    whitelist or does not parse to a sympy expression)."""
    import math

    from sympy import Basic, N, simplify

    if symbolic_rejection(a) is not None or symbolic_rejection(b) is not None:
        return "not_equal"
    try:
        x, y = _parse(a), _parse(b)
    except MemoryError:
        raise
    except Exception:
        return "not_equal"
    if not x or not y or not isinstance(x[0], Basic) or not isinstance(y[0], Basic):
        return "not_equal"
    x, y = x[0], y[0]
    try:
        if simplify(x - y) == 0:
            return "equal"
    except MemoryError:
        raise
    except Exception:
        pass
    try:
        if math.isclose(float(N(x)), float(N(y)), abs_tol=1e-3):
            return "equal"
    except MemoryError:
        raise
    except Exception:
        pass
    return "not_equal"


def extract(text: str) -> str | None:
    """The answer math-verify's own extraction finds in a whole completion (its matched text), or None."""
    from math_verify import parse

    if text_rejection(text) is not None:
        return None
    parsed = parse(text, parsing_timeout=None)
    if len(parsed) < 2 or not isinstance(parsed[-1], str):
        return None
    return parsed[-1]


#: Answer shapes a worker parses while idle after start-up. math-verify's LaTeX parser (ANTLR) builds
#: its prediction tables lazily: the first expression of a shape costs 20-200 ms, later ones a few ms.
_WARM_UP_PAIRS = (
    ("\\frac{1}{2}", "0.5"), ("(x+1)^2", "x^2+2x+1"), ("\\sqrt{8}", "2\\sqrt{2}"), ("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2"),
    ("3\\pi", "\\frac{6\\pi}{2}"), ("-\\frac{\\pi}{6}", "1 \\cdot (-\\frac{\\pi}{6})"), ("(3, \\frac{\\pi}{2})", "(3,\\pi/2)"),
    ("[1, 2)", "[1,2)"), ("(-\\infty, 3] \\cup (5, \\infty)", "(-\\infty,3]\\cup(5,\\infty)"), ("\\{1, 2\\}", "1, 2"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
    ("3+4i", "4i+3"), ("x^5 - x^4 + x^3 - 1", "1 \\cdot (x^5 - x^4 + x^3 - 1)"), ("2x - 3y + 4", "4 + 2x - 3y"),
    ("x \\le 3", "x \\leq 3"), ("y = 2x + 3", "y=3+2x"), ("\\log_2 8", "3"), ("e^{2x}", "e^{x} \\cdot e^{x}"),
    ("\\sin(x)", "\\sin x"), ("10!", "3628800"), ("\\binom{5}{2}", "10"), ("a_{n+1}", "a_{n+1}"),
    ("\\frac{x+1}{x-1}", "\\dfrac{x+1}{x-1}"), ("\\sqrt[3]{27}", "3"), ("\\$12.50", "12.5"), ("50\\%", "0.5"),
    ("\\text{(C)}", "C"), ("\\left( 1, 2 \\right)", "(1, 2)"), ("6 \\times 10^{3}", "6000"), ("|x - 2|", "|2 - x|"),
)


def warm_up() -> None:
    """Import and run each path once, so that the first request pays no import or first-use cost."""
    judge("\\frac{1}{2}", "0.5")
    close_symbolically("\\frac{1}{2}", "\\sqrt{1/4}")
    extract("so the total is $\\frac{3}{4}$ in all")


def warm_up_shapes():
    """One step per common answer shape (a generator): the worker runs them while it is idle."""
    for pred, gold in _WARM_UP_PAIRS:
        try:
            judge(pred, gold)
        except Exception:  # a shape this math-verify version cannot parse: nothing to warm
            pass
        yield


__all__ = ["close_symbolically", "extract", "judge", "warm_up", "warm_up_shapes"]
