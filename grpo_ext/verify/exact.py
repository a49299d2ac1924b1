"""Stage 3: decide equivalence exactly, in the calling process, where no symbolic algebra is needed.

Rules by answer type (both sides already normalised by :mod:`grpo_ext.verify.normalize`):

- **multiple choice**: a gold letter ``C``, ``(C)`` or ``(C) text`` matches the letter the prediction
  names (``(C)``, ``C``, "for sure C, not A", "option C") or the option's text;
- **text**: word answers compare as lower-case text;
- **relations**: a chain ``z = 1 + 1 = 2`` is read as ``z = 2``; two equations with named left sides
  (``k = 45``, ``f(x) = ...``, ``S_{AB}:S = ...``, ``(x, y) = ...``) must name the same thing and agree on
  the right; an equation against a plain value is compared by its right side when its left side is a
  name or a calculation (``x = 5`` is ``5``, ``1 + 1 = 2`` is ``2``), and a gold equation with any other
  left side (``x + y = 5``) is never matched by a plain value; anything else goes to math-verify;
- **lists and sets**: items split at top-level commas and semicolons and matched as sets (every item
  of each side equals an item of the other; duplicates collapse); named assignments become tuples
  against a tuple gold (``p=5,q=2; p=7,q=2`` is ``(5,2), (7,2)``), and their right sides against plain
  values;
- **numbers**: integers, decimals (``-1.``, ``.5``), ``a/b``, ``\\frac{a}{b}``, mixed numbers
  (``2\\frac{1}{2}``), percentages, and scientific notation (``4.5e33``, ``4.5 \\times 10^{33}``,
  ``0.111*10^{-180}``) compared as exact rationals, exponents included and never computed out; a
  decimal comma (``1,22``) is read as a decimal only against a single number;
- **the tolerance rule**: a decimal written with 6 or more decimal places equals an exact value
  (fraction, radical, multiple of pi) when it is within one unit of its last written place, as a
  rounded or truncated value is (``0.0833333333333333`` is ``\\frac{1}{12}``; ``0.33`` is not
  ``\\frac{1}{3}``); with fewer places the comparison is exact;
- **exact values**: radicals, multiples of pi, and tuples, intervals and matrices of them.

:func:`decide` returns a verdict, ``None`` (ask math-verify in the sandbox), or a :class:`Plan` of
smaller pairs to decide first (the items of two lists, the right sides of two equations).
Every rule is bounded string work: linear in the answer's length, with bounded list sizes and
exponents that are compared, never raised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from .verdicts import EQUAL, GOLD_UNPARSEABLE, NOT_EQUAL

#: Lists longer than this (on either side) go to math-verify whole.
MAX_LIST_ITEMS = 32
#: A decimal needs this many decimal places before the tolerance rule applies.
TOLERANCE_MIN_PLACES = 6
#: Exponents of ten further apart than this can never be matched by mantissas of bounded length.
_MAX_EXPONENT_GAP = 1000

_DEC = r"(?:\d{1,400}(?:\.\d{0,400})?|\.\d{1,400})"
_INT = r"\d{1,400}"
_EXP = r"[-+]?\d{1,12}"
_NUMBER_RE = re.compile(
    rf"^(?P<sign>[-+]?)\s*(?:"
    rf"(?P<whole>{_INT})\s*\\frac\s*\{{\s*(?P<mnum>{_INT})\s*\}}\s*\{{\s*(?P<mden>{_INT})\s*\}}"  # 2\frac{1}{2}
    rf"|\\frac\s*(?:\{{\s*(?P<fnum>[-+]?{_INT})\s*\}}|(?P<fnum1>\d))\s*(?:\{{\s*(?P<fden>[-+]?{_INT})\s*\}}|(?P<fden1>\d))"
    rf"|(?P<snum>{_DEC})\s*/\s*(?P<sden>{_DEC})"  # 1/2, -1./3
    rf"|(?P<emant>{_DEC})\s*[eE](?P<e>{_EXP})"  # 4.5e33
    rf"|(?:(?P<mant>{_DEC})\s*(?:\\times|\\cdot|\*|×)\s*)?10\s*\^\s*(?:\{{\s*(?P<p>{_EXP})\s*\}}|(?P<p1>{_EXP}))"
    rf"|(?P<dec>{_DEC})"
    rf")\s*(?P<pct>%?)$"
)
_DECIMAL_RE = re.compile(rf"^([-+]?{_DEC})$")
_DECIMAL_COMMA_RE = re.compile(r"^[-+]?\d{1,400},\d{1,400}%?$")


@dataclass(frozen=True)
class Number:
    """``sign * mantissa * 10**exponent``, and how it was written."""

    mantissa: Fraction  #: signed
    exponent: int = 0
    percent: bool = False
    places: int | None = None  #: decimal places of a plain decimal, else None (an exact form)

    def scaled(self, k: int) -> "Number":
        return Number(self.mantissa, self.exponent + k, False, self.places)


def parse_number(s: str, *, decimal_comma: bool = False) -> Number | None:
    """``s`` as an exact :class:`Number`, or None (see the module docstring for the forms)."""
    s = s.strip()
    if not s or len(s) > 900:
        return None
    # a comma followed by a space separates items ("1, 5" is two numbers), a bare one may be decimal ("1,5")
    if decimal_comma and ", " not in s and _DECIMAL_COMMA_RE.match(s.replace(" ", "")):
        s = s.replace(" ", "").replace(",", ".")
    m = _NUMBER_RE.match(s)
    if not m:
        return None
    sign = -1 if m.group("sign") == "-" else 1
    percent = bool(m.group("pct"))
    if m.group("whole") is not None:
        num, den = int(m.group("mnum")), int(m.group("mden"))
        if den == 0 or num >= den:  # 2\frac{5}{2} is not a mixed number
            return None
        return Number(sign * (int(m.group("whole")) + Fraction(num, den)), 0, percent)
    if m.group("fnum") is not None or m.group("fnum1") is not None:
        num, den = int(m.group("fnum") or m.group("fnum1")), int(m.group("fden") or m.group("fden1"))
        return Number(sign * Fraction(num, den), 0, percent) if den else None
    if m.group("snum") is not None:
        num, den = Fraction(m.group("snum")), Fraction(m.group("sden"))
        return Number(sign * num / den, 0, percent) if den else None
    exponent = m.group("e") or m.group("p") or m.group("p1")
    if exponent is not None:
        mantissa = Fraction(m.group("emant") or m.group("mant") or 1)
        return Number(sign * mantissa, int(exponent), percent)
    text = m.group("dec")
    places = len(text.split(".", 1)[1]) if "." in text else None
    return Number(sign * Fraction(text), 0, percent, places)


def _same_value(a: Number, b: Number) -> bool:
    """``a == b`` as numbers, exponents compared without computing the powers."""
    if a.mantissa == 0 or b.mantissa == 0:
        return a.mantissa == b.mantissa
    gap = a.exponent - b.exponent
    if abs(gap) > _MAX_EXPONENT_GAP:
        return False
    return a.mantissa * Fraction(10) ** gap == b.mantissa if gap >= 0 else a.mantissa == b.mantissa * Fraction(10) ** -gap


def _value(n: Number) -> Fraction | None:
    return n.mantissa * Fraction(10) ** n.exponent if abs(n.exponent) <= _MAX_EXPONENT_GAP else None


def _within_tolerance(decimal: Number, exact: float | Fraction) -> bool:
    """The tolerance rule: a decimal of ``k >= 6`` places equals ``exact`` rounded or truncated to ``k`` places."""
    k = decimal.places
    if k is None or k < TOLERANCE_MIN_PLACES or decimal.exponent or k > 400:
        return False
    scale = 10**k
    if isinstance(exact, float):  # an irrational value, known to float precision: one unit of slack past 1e-12
        if not math.isfinite(exact):
            return False
        slack = max(Fraction(1, scale), Fraction(abs(exact)) * Fraction(1, 10**12)) if k > 12 else Fraction(1, scale)
        return abs(decimal.mantissa - Fraction(exact)) < slack
    if exact == 0 or (decimal.mantissa < 0) != (exact < 0):
        return decimal.mantissa == exact
    target, written = abs(exact) * scale, abs(decimal.mantissa) * scale
    return written in (math.floor(target), math.floor(target + Fraction(1, 2)))


def numbers_equal(pred: Number, gold: Number) -> bool:
    """Equal as numbers; a percentage on one side also matches its value divided by 100; a decimal of
    6 or more places matches an exact value within its last place (the tolerance rule)."""
    candidates = [(pred, gold)]
    if pred.percent != gold.percent:
        candidates.append((pred.scaled(-2), gold) if pred.percent else (pred, gold.scaled(-2)))
    for p, g in candidates:
        if _same_value(p, g):
            return True
        for decimal, other in ((p, g), (g, p)):
            if decimal.places is not None and (other.places is None or other.places < decimal.places):
                value = _value(other)
                if value is not None and _within_tolerance(decimal, value):
                    return True
    return False


# ----- multiple choice and text ----------------------------------------------------------------
_BARE_CHOICE_RE = re.compile(r"^\(?([A-Ea-e])\)?$")
_LABELLED_CHOICE_RE = re.compile(r"^(?:\(([A-E])\)|([A-E])[.):])\s*([A-Za-z][A-Za-z .,'-]{0,80})$")
_CHOICE_IN_TEXT_RE = re.compile(r"(?<![A-Za-z\\])\(?([A-E])\)?(?![A-Za-z])")
_NEGATED_BEFORE_RE = re.compile(r"(?:\bnot|n't|\bnor|\bexcept|\bneither|\brather than)\s+(?:be\s+|option\s+|choice\s+)?$",
                                re.IGNORECASE)


def gold_choice(gold: str) -> tuple[str, str | None] | None:
    """A gold multiple-choice answer as (letter, option text or None): ``C``, ``(C)``, ``(D) Alina``."""
    m = _BARE_CHOICE_RE.match(gold)
    if m:
        return m.group(1).upper(), None
    m = _LABELLED_CHOICE_RE.match(gold)
    if m:
        return (m.group(1) or m.group(2)), m.group(3).strip().lower()
    return None


def choice_letter(s: str) -> str | None:
    """The option a prediction names: ``C``, ``(C)``, ``(C) text``, or the first letter in its phrasing
    that is not negated ("for sure D, it can't be A or B" -> ``D``); None when it names none."""
    m = _BARE_CHOICE_RE.match(s.strip())
    if m:
        return m.group(1).upper()
    m = _LABELLED_CHOICE_RE.match(s.strip())
    if m:
        return m.group(1) or m.group(2)
    if len(s) > 300:
        return None
    for m in _CHOICE_IN_TEXT_RE.finditer(s):
        if not _NEGATED_BEFORE_RE.search(s[: m.start()]):
            return m.group(1)
    return None


def is_text_answer(s: str) -> bool:
    """A word answer ("east", "odd"), compared as text rather than as mathematics."""
    return bool(re.fullmatch(r"[a-z]{3,}(?: [a-z]+)*", s))


# ----- splitting: lists, relations, names --------------------------------------------------------
def split_top_level(s: str, seps: str = ",") -> list[str]:
    """Split on any of ``seps`` outside brackets: ``"1, (2, 3)"`` -> ``["1", "(2, 3)"]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in seps and depth == 0 and not (ch == "," and s[i - 1: i] == "\\"):
            parts.append(s[start:i].strip())
            start = i + 1
    parts.append(s[start:].strip())
    return parts


def as_unordered_list(s: str) -> list[str] | None:
    """The items of an answer list: ``1, 2, 3``, ``1; 2`` or a set ``\\{1, 2, 3\\}``; None for one item.

    Tuples and intervals (``(1, 2)``, ``[1, 2)``) are ordered and are single items here.
    """
    body = s
    if body.startswith("\\{") and body.endswith("\\}"):
        body = body[2:-2]
    items = [item for item in split_top_level(body, ",;")]
    if len(items) < 2 or any(not item for item in items):
        return None
    return items


_RELATIONS = (("\\leqslant", "<="), ("\\geqslant", ">="), ("\\leq", "<="), ("\\geq", ">="), ("\\le", "<="),
              ("\\ge", ">="), ("\\neq", "!="), ("\\ne", "!="), ("<=", "<="), (">=", ">="), ("<", "<"), (">", ">"),
              ("=", "="))


@dataclass(frozen=True)
class Relation:
    lhs: str
    op: str  #: "=", "<", "<=", ">", ">=", "!=", or "in" (rhs an interval)
    rhs: str
    chain: bool = False  #: ``a = b = c``: ``rhs`` is the last value stated


def split_relation(s: str) -> Relation | None:
    """``s`` as ``lhs op rhs`` at the top level (outside brackets), or None.

    A chain of equalities ``a = b = c`` is ``a = c`` (the last value stated); a bound on a name,
    ``0 < f(x) <= 1``, is ``f(x) in (0,1]``; any other chain is left whole (None).
    """
    if len(s) > 1000:
        return None
    parts: list[str] = []
    ops: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            for token, op in _RELATIONS:
                if s.startswith(token, i) and not (token[0] == "\\" and s[i + len(token): i + len(token) + 1].isalpha()):
                    parts.append(s[start:i].strip())
                    ops.append(op)
                    i += len(token)
                    start = i
                    break
            else:
                i += 1
                continue
            continue
        i += 1
    parts.append(s[start:].strip())
    if not ops or any(not p for p in parts):
        return None
    if all(op == "=" for op in ops):
        return Relation(parts[0], "=", parts[-1], chain=len(ops) > 1)
    if len(ops) == 2 and _VARIABLE_RE.match(parts[1]):  # 0 < f(x) <= 1: f(x) in (0, 1]
        if all(op in ("<", "<=") for op in ops):
            low, high, low_op, high_op = parts[0], parts[2], ops[0], ops[1]
        elif all(op in (">", ">=") for op in ops):
            low, high, low_op, high_op = parts[2], parts[0], ops[1], ops[0]
        else:
            return None
        interval = ("(" if low_op in ("<", ">") else "[") + f"{low},{high}" + (")" if high_op in ("<", ">") else "]")
        return Relation(parts[1], "in", interval)
    if len(ops) == 1:
        return Relation(parts[0], ops[0], parts[1])
    return None


_VAR = r"(?:[A-Za-z]|\\[a-zA-Z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:'|\^\{?\\prime\}?)*"
_NAME_RE = re.compile(
    rf"^(?:{_VAR}|[A-Z]{{2,3}}|\\angle\s*[A-Z]{{1,3}}|m\s*\\angle\s*[A-Z]{{1,3}}"  # x, x_1, AB, \angle ABC
    rf"|(?:[A-Za-z]|\\[a-z]+)(?:_\{{?\w+\}}?)?(?:\^\{{?-1\}}?)?\s*\(\s*{_VAR}(?:\s*,\s*{_VAR})*\s*\)"  # f(x), W(n), \cos(x)
    rf"|\\(?:sin|cos|tan|cot|sec|csc|log|ln)\s*{_VAR}"  # \cos x
    rf"|\(\s*{_VAR}(?:\s*,\s*{_VAR})+\s*\)"  # (x, y)
    rf"|{_VAR}\s*:\s*{_VAR}"  # S_{MBCN}:S
    rf"|\|\s*(?:{_VAR}|[A-Z]{{2,3}})\s*\|"  # |AB|
    rf"|\\frac\s*\{{\s*(?:{_VAR}|[A-Z]{{2,3}})\s*\}}\s*\{{\s*(?:{_VAR}|[A-Z]{{2,3}})\s*\}})$"  # \frac{NO}{BO}
)
_VARIABLE_RE = re.compile(rf"^(?:{_VAR}|(?:[A-Za-z]|\\[a-z]+)\s*\(\s*{_VAR}\s*\))$")
_CALCULATION_RE = re.compile(r"^[\d\s.+\-*/()^{}]*(?:(?:\\frac|\\cdot|\\times|\\div)[\d\s.+\-*/()^{}]*)*$")


def is_name(s: str) -> bool:
    """A left side that names what the answer is: a variable, a function of variables, a tuple or a
    ratio of them."""
    return bool(_NAME_RE.match(s.strip()))


def is_calculation(s: str) -> bool:
    """A left side made of numbers and operators only (``1 + 1`` in ``1 + 1 = 2``; a bare ``7`` is not)."""
    s = s.strip()
    return bool(re.search(r"\d", s) and re.search(r"[+\-*/^]|\\(?:frac|cdot|times|div)", s.lstrip("-+"))
                and _CALCULATION_RE.match(s))


def _name_key(s: str) -> str:
    """Names compare without spacing; a function's argument names do not matter (``W(n)`` is ``W(x)``)."""
    s = s.replace(" ", "").replace("{", "").replace("}", "")
    return re.sub(r"\(.*\)$", "()", s) if not s.startswith("(") else s


def _assignment_tuple(group: str) -> tuple[list[str], list[str]] | None:
    """``p=5,q=2`` -> (["p", "q"], ["5", "2"]) when every item is a named assignment."""
    items = split_top_level(group, ",")
    if len(items) < 2:
        return None
    names, values = [], []
    for item in items:
        rel = split_relation(item)
        if rel is None or rel.op != "=" or not is_name(rel.lhs):
            return None
        names.append(_name_key(rel.lhs))
        values.append(rel.rhs)
    return (names, values) if len(set(names)) == len(names) else None


def _as_tuples(s: str) -> list[str] | None:
    """Assignment groups as tuples: ``p=5,q=2;p=7,q=2`` -> ``["(5,2)", "(7,2)"]``; ``x=1, y=2`` -> ``["(1,2)"]``."""
    groups = split_top_level(s, ";")
    tuples = []
    for group in groups:
        parsed = _assignment_tuple(group)
        if parsed is None:
            return None
        tuples.append("(" + ",".join(parsed[1]) + ")")
    return tuples


def _encloses(s: str) -> bool:
    """Whether the bracket that opens ``s`` closes at its end (``(1,2)``, not ``(1,2),(3,4)``)."""
    depth = 0
    for i, ch in enumerate(s):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return i == len(s) - 1
    return False


def _is_tuple(s: str) -> bool:
    return len(s) >= 5 and s[0] == "(" and s[-1] == ")" and _encloses(s) and len(split_top_level(s[1:-1])) >= 2


# ----- the decision ----------------------------------------------------------------------------
@dataclass
class Plan:
    """Decide ``pairs`` first, then ``combine`` their verdicts: ``"same"`` (one pair, its verdict),
    ``"all"`` (every pair equal: an ordered comparison) or ``"set"`` (``pred_items`` x ``gold_items``,
    a set match)."""

    pairs: list[tuple[str, str]]
    combine: str = "same"
    shape: tuple[int, int] = field(default=(1, 1))

    def verdict(self, verdicts: list[str]) -> str:
        if self.combine == "same":
            return verdicts[0]
        if GOLD_UNPARSEABLE in verdicts:
            return GOLD_UNPARSEABLE
        if self.combine == "all":
            return EQUAL if all(v == EQUAL for v in verdicts) else NOT_EQUAL
        n_pred, n_gold = self.shape
        equal = [[verdicts[i * n_gold + j] == EQUAL for j in range(n_gold)] for i in range(n_pred)]
        every_pred = all(any(row) for row in equal)
        every_gold = all(any(equal[i][j] for i in range(n_pred)) for j in range(n_gold))
        return EQUAL if every_pred and every_gold else NOT_EQUAL


def _set_plan(pred_items: list[str], gold_items: list[str]) -> Plan:
    pairs = [(p, g) for p in pred_items for g in gold_items]
    return Plan(pairs, "set", (len(pred_items), len(gold_items)))


def _compact(s: str) -> str:
    return s.replace(" ", "")


def _list_decision(pred: str, gold: str):
    gold_items, pred_items = as_unordered_list(gold), as_unordered_list(pred)
    gold_tuples = [gold] if _is_tuple(gold) else (gold_items if gold_items and all(map(_is_tuple, gold_items)) else None)
    pred_tuples = [pred] if _is_tuple(pred) else (pred_items if pred_items and all(map(_is_tuple, pred_items)) else None)
    if gold_tuples is not None and pred_tuples is None:
        converted = _as_tuples(pred)
        if converted is not None:
            return _set_plan(converted, gold_tuples) if len(gold_tuples) > 1 or len(converted) > 1 else Plan([(converted[0], gold)])
    if pred_tuples is not None and gold_tuples is None:
        converted = _as_tuples(gold)
        if converted is not None:
            return _set_plan(pred_tuples, converted) if len(pred_tuples) > 1 or len(converted) > 1 else Plan([(pred, converted[0])])
    if gold_items is None and pred_items is None:
        return None
    gold_items, pred_items = gold_items or [gold], pred_items or [pred]
    if len(gold_items) > MAX_LIST_ITEMS or len(pred_items) > MAX_LIST_ITEMS:
        return None
    return _set_plan(pred_items, gold_items)


def _relation_decision(pred: str, gold: str):
    g, p = split_relation(gold), split_relation(pred)
    if g is None and p is None:
        return None
    if g is not None and p is not None:
        if g.op != p.op:
            return None  # a flipped inequality and its like: math-verify compares relations
        if is_name(g.lhs) and is_name(p.lhs):
            return Plan([(p.rhs, g.rhs)]) if _name_key(g.lhs) == _name_key(p.lhs) else NOT_EQUAL
        if _compact(g.lhs) == _compact(p.lhs):
            return Plan([(p.rhs, g.rhs)])
        return None
    if p is not None:  # a stated relation against a plain gold value
        if p.op in ("=", "in") and (is_name(p.lhs) or (p.op == "=" and (p.chain or is_calculation(p.lhs)))):
            return Plan([(p.rhs, gold)])
        if p.op == "=":
            return None
        return NOT_EQUAL if parse_number(gold) is not None else None
    if g.op in ("=", "in") and (is_name(g.lhs) or g.chain):  # a gold assignment (or chain): its value
        return Plan([(pred, g.rhs)])
    if g.op == "=":
        return NOT_EQUAL  # a gold equation (x + y = 5) is not answered by a plain value
    return NOT_EQUAL if parse_number(pred) is not None else None  # x > 5 against 5: no; against an interval: ask


def _ordered_pair(pred: str, gold: str):
    """A bare pair ``1, 3`` against a tuple or open interval ``(1, 3)`` of the same length: in order."""
    for bare, tup, flip in ((pred, gold, False), (gold, pred, True)):
        if _is_tuple(tup) and not _is_tuple(bare) and bare[:1] not in "([":
            items, values = split_top_level(bare, ","), split_top_level(tup[1:-1], ",")
            if len(items) == len(values) >= 2 and not any("=" in item for item in items):
                pairs = [(v, i) if flip else (i, v) for i, v in zip(items, values)]
                return Plan(pairs, "all")
    return None


def decide(pred: str, gold: str):
    """A verdict for two normalised answers, ``None`` for math-verify, or a :class:`Plan` (module docstring)."""
    if not gold:
        return GOLD_UNPARSEABLE
    if not pred:
        return NOT_EQUAL
    if pred == gold:
        return EQUAL
    choice = gold_choice(gold)
    if choice is not None:
        letter, text = choice
        return EQUAL if choice_letter(pred) == letter or (text is not None and pred == text) else NOT_EQUAL
    if is_text_answer(gold):
        return NOT_EQUAL  # text answers compare as text, already unequal
    g_num, p_num = parse_number(gold), parse_number(pred)
    if g_num is not None and p_num is None:
        p_num = parse_number(pred, decimal_comma=True)
    elif p_num is not None and g_num is None:
        g_num = parse_number(gold, decimal_comma=True)
    if g_num is not None and p_num is not None:
        return EQUAL if numbers_equal(p_num, g_num) else NOT_EQUAL
    ordered = _ordered_pair(pred, gold)
    if ordered is not None:
        return ordered
    listed = _list_decision(pred, gold)
    if listed is not None:
        return listed
    relation = _relation_decision(pred, gold)
    if relation is not None:
        return relation
    if "\\text" not in gold and _compact(pred) == _compact(gold):
        return EQUAL  # the same LaTeX up to spacing
    g_val, p_val = exact_value(gold), exact_value(pred)
    if g_val is not None and p_val is not None:
        return EQUAL if g_val == p_val else NOT_EQUAL
    for decimal, other in ((p_num, g_val), (g_num, p_val)):
        if decimal is not None and other is not None and other[0] in ("r", "pi"):
            return EQUAL if _within_tolerance(decimal, _as_float(other)) else NOT_EQUAL
    return None


def _as_float(value) -> float:
    kind, coef, radicand = value
    return float(coef) * (math.pi if kind == "pi" else math.sqrt(radicand))


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
