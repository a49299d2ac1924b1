"""Exact answer comparisons that need no symbolic algebra: numbers, fractions, percentages,
multiple-choice letters, text answers and the splitting of answer lists.

These run in the calling process on normalised answers (:func:`grpo_ext.verify.extract.normalize_answer`)
with bounded, linear-time string work; most GSM8K and many MATH answers are decided here without
touching the sandbox.
"""

from __future__ import annotations

import re
from fractions import Fraction

_INT = r"[-+]?\d{1,400}"
_DEC = r"[-+]?(?:\d{1,400}(?:\.\d{0,400})?|\.\d{1,400})"
_DECIMAL_RE = re.compile(rf"^({_DEC})$")
_SLASH_RE = re.compile(rf"^({_INT})\s*/\s*({_INT})$")
_FRAC_RE = re.compile(rf"^([-+]?)\\frac\s*(?:\{{\s*({_INT})\s*\}}|(\d))\s*(?:\{{\s*({_INT})\s*\}}|(\d))$")
_ASSIGN_RE = re.compile(r"^[A-Za-z]\s*=\s*(?!.*=)")
_CHOICE_RE = re.compile(r"^\(?([A-Ea-e])\)?$")


def parse_rational(s: str) -> tuple[Fraction, bool] | None:
    """``s`` as an exact rational and whether it was a percentage, or None.

    Accepts integers, decimals, ``a/b``, ``\\frac{a}{b}`` / ``\\frac ab`` with a sign, a trailing
    ``%``, and a leading single-letter assignment (``x = 5``).
    """
    s = _ASSIGN_RE.sub("", s.strip()).replace(" ", "")
    percent = s.endswith("%")
    if percent:
        s = s[:-1]
    if not s or len(s) > 900:
        return None
    if m := _DECIMAL_RE.match(s):
        value = Fraction(m.group(1))
    elif m := _SLASH_RE.match(s):
        den = int(m.group(2))
        if den == 0:
            return None
        value = Fraction(int(m.group(1)), den)
    elif m := _FRAC_RE.match(s):
        num, den = int(m.group(2) or m.group(3)), int(m.group(4) or m.group(5))
        if den == 0:
            return None
        value = Fraction(num, den) * (-1 if m.group(1) == "-" else 1)
    else:
        return None
    return value, percent


def rationals_equal(pred: tuple[Fraction, bool], gold: tuple[Fraction, bool]) -> bool:
    """Equal as numbers; a percentage on one side also matches its value divided by 100."""
    (p, p_pct), (g, g_pct) = pred, gold
    if p == g:
        return True
    if p_pct and not g_pct:
        return p / 100 == g
    if g_pct and not p_pct:
        return g / 100 == p
    return False


def choice_letter(s: str) -> str | None:
    """The letter of a multiple-choice answer: ``C``, ``(C)``, ``c``; else None."""
    m = _CHOICE_RE.match(s.strip())
    return m.group(1).upper() if m else None


def is_text_answer(s: str) -> bool:
    """A word answer ("east", "odd"), compared as text rather than as mathematics."""
    return bool(re.fullmatch(r"[a-z]{3,}(?: [a-z]+)*", s))


def split_top_level(s: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets: ``"1, (2, 3)"`` -> ``["1", "(2, 3)"]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(s[start:i].strip())
            start = i + 1
    parts.append(s[start:].strip())
    return parts


def as_unordered_list(s: str) -> list[str] | None:
    """The items of an answer list: ``1, 2, 3`` or a set ``\\{1, 2, 3\\}``; None for one item.

    Tuples and intervals (``(1, 2)``, ``[1, 2)``) are ordered and are not lists here.
    """
    body = s
    if body.startswith("\\{") and body.endswith("\\}"):
        body = body[2:-2]
    items = split_top_level(body)
    if len(items) < 2 or any(not item for item in items):
        return None
    return items


# ----- exact values with radicals and pi, and tuples, intervals and matrices of them ---------------
#: Radicands up to this size are reduced to square-free form by trial division (bounded work).
_MAX_RADICAND = 10**8
_COEF = r"(?:\d{1,30}(?:\.\d{1,30})?)"
_SQRT_RE = re.compile(rf"^({_COEF})?\\sqrt(?:\{{(\d{{1,9}})\}}|(\d))$")
_PI_RE = re.compile(rf"^({_COEF})?\\pi$")
_FRAC_PARTS_RE = re.compile(r"^\\frac\{([^{}]*(?:\{[^{}]*\}[^{}]*)?)\}\{(\d{1,30})\}$")
_MATRIX_RE = re.compile(r"^\\begin\{([pbv]matrix)\}(.*)\\end\{\1\}$", re.S)


def _square_free(n: int) -> tuple[int, int] | None:
    """``n = outside**2 * inside`` with ``inside`` square-free, or None when ``n`` is too large."""
    if n > _MAX_RADICAND:
        return None
    outside, inside, f = 1, n, 2
    while f * f <= inside:
        while inside % (f * f) == 0:
            inside //= f * f
            outside *= f
        f += 1
    return outside, inside


def _scalar(s: str):
    """An exact scalar: ``("r", coef, radicand)`` for coef*sqrt(radicand) (radicand 1: rational),
    ``("pi", coef, 1)``, ``("inf", sign, 1)``; None for anything else."""
    negative = s.startswith("-")
    if negative or s.startswith("+"):
        s = s[1:]
    sign = -1 if negative else 1
    if s == "\\infty":
        return ("inf", sign, 1)
    denominator = 1
    if m := _FRAC_PARTS_RE.match(s):
        s, denominator = m.group(1), int(m.group(2))
        if denominator == 0:
            return None
        if s.startswith("-"):
            s, sign = s[1:], -sign
    if m := _SQRT_RE.match(s):
        reduced = _square_free(int(m.group(2) or m.group(3)))
        if reduced is None:
            return None
        coef = Fraction(m.group(1) or 1) * reduced[0]
        value = ("r", coef, reduced[1]) if coef else ("r", Fraction(0), 1)
    elif m := _PI_RE.match(s):
        value = ("pi", Fraction(m.group(1) or 1), 1)
    elif m := _DECIMAL_RE.match(s):
        value = ("r", Fraction(m.group(1)), 1)
    else:
        return None
    kind, coef, radicand = value
    return (kind, sign * coef / denominator, radicand)


def exact_value(s: str):
    """``s`` as an exact value comparable with ``==``, or None when it is outside these forms.

    Scalars: integers, decimals, ``c\\sqrt{n}``, ``c\\pi``, ``\\infty`` and ``\\frac{...}{d}`` of them,
    with a sign. Compounds: tuples and intervals ``(a, b]`` of scalars (brackets kept: ``(1,2)`` and
    ``[1,2)`` differ) and ``pmatrix`` / ``bmatrix`` of scalars (compared entry by entry). Work is
    linear in the length, and radicands are bounded, so it runs in the calling process.
    """
    s = s.replace(" ", "")
    if not s or len(s) > 400:
        return None
    if m := _MATRIX_RE.match(s):
        rows = [row for row in m.group(2).split("\\\\") if row]
        entries = [[_scalar(x) for x in row.split("&")] for row in rows]
        if not entries or any(x is None for row in entries for x in row):
            return None
        return ("matrix", tuple(tuple(row) for row in entries))
    if len(s) >= 5 and s[0] in "([" and s[-1] in ")]":
        items = split_top_level(s[1:-1])
        if len(items) < 2:
            return None
        values = tuple(_scalar(x) for x in items)
        if any(v is None for v in values):
            return None
        return ("seq", s[0], s[-1], values)
    return _scalar(s)
