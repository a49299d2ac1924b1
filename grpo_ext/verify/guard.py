"""The whitelist and resource limits an answer must pass before any symbolic parser sees it.

math-verify parses LaTeX with an ANTLR grammar, but plain expressions go through sympy's
``parse_expr``, which calls ``eval``. An answer reaches either only inside the sandbox worker and
only after :func:`symbolic_rejection` returned None for it: no quotes, backticks, dunders or
attribute access, no bare words beyond a list of math names, and no shapes known to explode
(exponent towers, huge factorials, deep nesting, very long input).
"""

from __future__ import annotations

import re

MAX_SYMBOLIC_CHARS = 1000
MAX_NESTING = 40
MAX_FACTORIAL_ARG = 5000
MAX_INT_DIGITS = 400

_ALLOWED_CHARS = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-*/^_=()[]{}<>.,;:!|\\&%"
)
#: Words allowed bare in a symbolic answer (and never prose around a number).
MATH_WORDS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "lg", "exp", "sqrt", "pi", "infty", "inf", "oo", "and", "or", "mod", "pmod", "bmod",
    "det", "gcd", "lcm", "max", "min", "deg", "dx", "dy", "dt", "in", "cup", "cap", "le", "ge",
    "matrix", "pmatrix", "bmatrix", "vmatrix", "array", "cases", "align", "aligned",
}
_DENIED_SHORT = {"os", "sys", "chr", "ord", "dir", "id", "io", "pty"}
_BARE_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
# a numeric exponent that is itself raised to a power: 9^{9^9}, 2^3^4 (e^{x^2} is fine)
_TOWER_RE = re.compile(r"\^\s*\{?\s*[\d.]+\s*\}?\s*\^")
_HUGE_POWER_RE = re.compile(r"\^\s*\{?\s*[-+]?\s*\d{5,}")
_FACTORIAL_RE = re.compile(r"(\d+)\s*\}?\s*!")
_LONG_INT_RE = re.compile(r"\d{%d,}" % (MAX_INT_DIGITS + 1))


def nesting_depth(s: str) -> int | None:
    """Deepest bracket nesting of ``s``, or None when its brackets do not balance."""
    depth = best = 0
    stack = []
    for ch in s:
        if ch in "([{":
            stack.append(ch)
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            # intervals like [1, 2) mix bracket kinds: count depth only, balance by count
            if not stack:
                return None
            stack.pop()
            depth -= 1
    return best if not stack else None


def symbolic_rejection(s: str) -> str | None:
    """Why ``s`` must not be parsed symbolically, or None when it may be (inside the sandbox)."""
    if "//" in s:
        return "holds '//' (floor division or a comment)"
    if len(s) > MAX_SYMBOLIC_CHARS:
        return f"longer than {MAX_SYMBOLIC_CHARS} characters"
    bad = set(s) - _ALLOWED_CHARS
    if bad:
        return f"characters outside the whitelist: {''.join(sorted(bad))[:20]!r}"
    if "__" in s:
        return "double underscore"
    if re.search(r"\.[A-Za-z_]", s):
        return "attribute access"
    depth = nesting_depth(s)
    if depth is None:
        return "unbalanced brackets"
    if depth > MAX_NESTING:
        return f"nesting deeper than {MAX_NESTING}"
    without_commands = _COMMAND_RE.sub(" ", s)
    for word in _BARE_WORD_RE.findall(without_commands):
        low = word.lower()
        if low in _DENIED_SHORT or (len(word) >= 4 and low not in MATH_WORDS):
            return f"bare word {word[:20]!r}"
    if _TOWER_RE.search(s):
        return "exponent tower"
    if _HUGE_POWER_RE.search(s):
        return "power with an exponent of 5 or more digits"
    for m in _FACTORIAL_RE.finditer(s):
        if len(m.group(1)) > 6 or int(m.group(1)) > MAX_FACTORIAL_ARG:
            return "huge factorial"
    if _LONG_INT_RE.search(s):
        return f"integer longer than {MAX_INT_DIGITS} digits"
    return None


#: Code shapes that a whole completion must not contain before math-verify's extraction reads it.
_CODE_IN_TEXT_RE = re.compile(
    r"__|`|\blambda\b|\bimport\s+[A-Za-z_]|\bfrom\s+[A-Za-z_.]+\s+import\b|"
    r"\b(?:exec|eval|compile|getattr|setattr|delattr|globals|locals|vars|open|system|popen|subprocess|builtins|"
    r"input|breakpoint)\s*\(|\b(?:os|sys|io|shutil|pathlib)\s*\.\s*[A-Za-z_]")


def text_rejection(text: str) -> str | None:
    """Why a whole completion may not go to math-verify's extraction (its plain expressions go through
    sympy's ``parse_expr``), or None. Natural prose and LaTeX pass; code shapes do not, and such a
    completion falls back to the last number."""
    m = _CODE_IN_TEXT_RE.search(text)
    return f"code-like text {m.group(0)!r}" if m else None
