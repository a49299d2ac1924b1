"""Stage 2: normalise an extracted answer, stripping what graders agree is not part of it.

Pure, bounded string work on answers of at most :data:`grpo_ext.verify.extract.MAX_ANSWER_CHARS`
characters. What is removed or rewritten, in order:

- whitespace of any kind (a gold may hold newlines) becomes one space; NUL bytes go; full-width
  digits and operators become ASCII; thin and no-break spaces become spaces;
- math delimiters ``$``, ``\\$``, ``\\(``, ``\\)``, ``\\[``, ``\\]``; ``\\left`` / ``\\right``;
  ``\\dfrac`` / ``\\tfrac`` become ``\\frac``; ``\\textnormal``, ``\\textrm``, ``\\mathrm``, ``\\mbox``
  become ``\\text``;
- thousands written ``11,\\!111``, ``1{,}000`` or with thin spaces become plain digits;
- spacing commands (``\\!``, ``\\,``, ``\\quad``, ``~`` ...);
- degree marks (``^\\circ``, ``°``); a comma after one separates two items (``90^\\circ,60^\\circ``);
- percent words (``28 percent``, ``percentage``, ``pct``) become ``%``;
- "and" / "or" between the items of a mathematical answer (``\\text{ and }``, ``1 or 2``) become a
  comma: the answer is a list;
- a trailing period, ``\\text{unit}`` and unit words after a number, Chinese unit characters;
- a leading ``x \\in``; braces around the whole answer (``{2, 3, 5}``); an unbraced signed
  exponent gets its braces (``10^-5`` -> ``10^{-5}``), so no parser drops its sign;
- the Chinese forms "3分之2" (2/3) and "百分之50" (50%);
- a sentence that states one number and otherwise only words ("There are 45 rodents") becomes
  the number; a word answer is lower-cased.

Decimal commas are not rewritten here: ``1,22`` is a decimal only when the other side of the
comparison is a single number, and a list otherwise (:mod:`grpo_ext.verify.exact` decides).
"""

from __future__ import annotations

import re

from .guard import MATH_WORDS

_THIN_SPACES = str.maketrans({"\u2009": " ", "\u202f": " ", "\u00a0": " ", "\u2007": " ", "\u3000": " "})
_FULL_WIDTH = str.maketrans("０１２３４５６７８９＋－．／，％＝（）：\u2212", "0123456789+-./,%=():-")
_WHITESPACE_RE = re.compile(r"\s+")
#: A number followed by a scale word (5 million, 5 \text{ thousand}) is that many powers of ten.
_SCALE_RE = re.compile(r"(\d(?:[\d.,]*\d)?)\s*(?:\\text\s*\{\s*)?(thousand|million|billion|trillion)s?\b\s*\}?",
                       re.IGNORECASE)
_SCALES = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_MIXED_SLASH_RE = re.compile(r"(-?\d+)\s+(\d+)\s*/\s*(\d+)")
_SPACED_DIGITS_RE = re.compile(r"-?\d+(?:\.\d+)?(?:\s+-?\d+(?:\.\d+)?)+")
_PYTHON_POWER_RE = re.compile(r"(?<=[\w)\]}])\s*\*\*\s*(?=[\w(\[{\\-])")
_TEXT_ALIASES_RE = re.compile(r"\\(?:textnormal|textrm|textsf|textup|mathrm|mbox|hbox)\b")
_THOUSANDS_SPACING_RE = re.compile(r"(\d)(?:\{,\}|,\s*\\!|,\\,|\\,|\\!|\{\s*,\s*\})\s*(?=\d{3}(?!\d))")
_DEGREE_THEN_COMMA_RE = re.compile(r"(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\degree)\s*,\s*")
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\degree\b|\\circ\b")
_PERCENT_WORD_RE = re.compile(
    r"(?<=[\d}])\s*(?:\\text\s*\{\s*)?(?:percentage|percent|per\s+cent|pct)(?:s)?\b\s*\}?", re.IGNORECASE)
_TEXT_CONJUNCTION_RE = re.compile(r"\\text\s*\{\s*,?\s*(?:and|or)\s*\}", re.IGNORECASE)
#: "and" / "or" as a separate token (not inside a word; "1orW" counts, "order" does not).
_BARE_CONJUNCTION_RE = re.compile(r"\s*,?\s*(?<![A-Za-z\\])(?:and|or)(?![a-z])\s*")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|mathbf|operatorname)\s*\{([^{}]*)\}")
_TEXT_UNIT_RE = re.compile(r"^(.*?)\s*\\text\s*\{\s*[a-zA-Z .]*\}(?:\s*\^\s*\{?[23]\}?)?$")
_UNIT_WORDS = (
    "dollars|dollar|cents|cent|units|unit|degrees|degree|cm|mm|km|m|meters|meter|metres|metre|inches|inch|feet|"
    "foot|ft|miles|mile|hours|hour|hrs|hr|minutes|minute|mins|min|seconds|second|secs|sec|days|day|weeks|week|"
    "months|month|years|year|kg|g|grams|gram|pounds|pound|lbs|lb|ounces|ounce|oz|liters|liter|litres|litre|l|"
    "ml|gallons|gallon|quarts|quart|cups|cup|people|persons|students|apples|pages|times|points|marbles|books|"
    "cookies|dogs|cats|eggs|boxes|bottles|tickets|sq|square|cubic|per|each|total|in all|in total|mph|km/h"
)
_TRAILING_UNITS_RE = re.compile(
    r"^(.*?[\d}])\s*(?:(?:" + _UNIT_WORDS + r")\b\.?\s*)+(?:\^?\{?[23]\}?)?$", re.IGNORECASE
)
_THOUSANDS_RE = re.compile(r"^[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_ZH_FRACTION_RE = re.compile(r"^(\d+)分之(\d+)$")
_ZH_PERCENT_RE = re.compile(r"^百分之(\d+(?:\.\d+)?)$")
_ZH_TRAILING_RE = re.compile(r"^(.*?[\d}])\s*[\u4e00-\u9fff]{1,4}$")
_IN_PREFIX_RE = re.compile(r"^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?\s*\\in\s*")
_UNBRACED_SIGNED_EXPONENT_RE = re.compile(r"\^\s*([-+])\s*(\d+(?:\.\d+)?)")
_ESCAPED_COMMAND_RE = re.compile(r"(?<!\\)\\\\(?=(?:boxed|frac|dfrac|sqrt|text|pi|cdot|times|infty)\b)")
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?%?|-?\.\d+%?")
_PROSE_WORD_RE = re.compile(r"[A-Za-z]{2,}")
#: Names that make a number part of an expression ("2 pi"); connectives such as "in" and "and" do not.
_MATH_NAMES = MATH_WORDS - {"and", "or", "in", "le", "ge", "deg", "mod", "max", "min", "dx", "dy", "dt"}
_NEGATIONS = {"not", "no", "never", "none", "cannot", "impossible", "neither", "nor", "without"}
#: Words that change what a stated number means (its sign, scale, a bound, an operation, a doubt): a
#: sentence holding one is not that number.
_CHANGING_WORDS = _NEGATIONS | {
    "negative", "minus", "plus", "positive", "hundred", "hundreds", "thousand", "thousands", "million", "millions",
    "billion", "billions", "trillion", "lakh", "crore", "dozen", "dozens", "score", "squared", "cubed", "square",
    "cube", "root", "roots", "power", "half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fifth",
    "twice", "double", "triple", "thrice", "times", "percent", "percentage", "least", "most", "more", "less",
    "fewer", "over", "under", "below", "above", "up", "greater", "smaller", "larger", "exceeds", "exceed",
    "nearly", "almost", "maybe", "perhaps", "possibly", "probably", "unknown", "unlikely", "wrong", "false",
    "incorrect", "except", "but", "other", "besides", "reciprocal", "inverse", "opposite", "multiple", "multiples",
    "divisible", "factor", "factors", "either", "or", "between", "range", "ratio",
}


def _strip_outer_braces(s: str) -> str:
    """``{2, 3, 5}`` -> ``2, 3, 5`` when one pair of braces encloses the whole answer."""
    while len(s) >= 2 and s[0] == "{" and s[-1] == "}":
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "{"
            depth -= ch == "}"
            if depth == 0 and i < len(s) - 1:
                return s
        s = s[1:-1].strip()
    return s


def has_math(s: str) -> bool:
    """Whether ``s`` holds a digit or LaTeX: what makes a list of its parts a mathematical one."""
    return bool(re.search(r"[\d\\]", s))


def one_number_sentence(s: str) -> str | None:
    """The number of a plain sentence that states exactly one ("There are 45 rodents in total" -> 45).

    Only words around it: no operators, brackets or LaTeX, no math words (``2 pi`` stays as it is).
    """
    if len(s) > 300 or re.search(r"[\\=^_/*+<>(){}\[\]|]", s):
        return None
    numbers = _NUMBER_RE.findall(s)
    if len(numbers) != 1:
        return None
    rest = _NUMBER_RE.sub(" ", s)
    words = re.findall(r"[A-Za-z']+", rest)
    if not words or re.sub(r"[A-Za-z',.!?:;\s-]", "", rest):
        return None
    if any(w.lower() in _MATH_NAMES or w.lower() in _CHANGING_WORDS or (len(w) == 1 and w not in "aAI") for w in words):
        return None
    if "n't" in rest.lower():
        return None
    return numbers[0]


def repair_escapes(s: str) -> str:
    """``\\\\boxed`` (a doubly escaped command, as some datasets store it) -> ``\\boxed``."""
    return _ESCAPED_COMMAND_RE.sub(r"\\", s) if "\\\\" in s and "matrix" not in s and "array" not in s else s


def normalize_answer(answer: str) -> str:
    """``answer`` with what graders agree is not part of an answer stripped (see the module docstring)."""
    s = answer.replace("\x00", "").translate(_FULL_WIDTH).translate(_THIN_SPACES)
    s = _WHITESPACE_RE.sub(" ", s).strip()
    s = repair_escapes(s)
    s = _PYTHON_POWER_RE.sub("^", s)  # 2 ** 10 is 2^10 (math-verify's LaTeX parser reads it as 10)
    s = _SCALE_RE.sub(lambda m: f"{m.group(1)} \\times 10^{{{_SCALES[m.group(2).lower()]}}}", s)
    for delimiter in ("\\(", "\\)", "\\[", "\\]", "\\$", "$"):
        s = s.replace(delimiter, " " if delimiter.startswith("\\") and delimiter != "\\$" else "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    s = s.replace("\\lt", "<").replace("\\gt", ">").replace('\\"', "").replace('"', "")
    s = s.replace("\\right.", "").replace("\\left", "").replace("\\right", "")
    s = _TEXT_ALIASES_RE.sub(r"\\text", s)
    s = _THOUSANDS_SPACING_RE.sub(r"\1,", s)
    s = s.replace("\\thinspace", "\\,").replace("\\\\", "\x01")  # keep row breaks "\\\\" whole
    for sp in ("\\!", "\\,", "\\;", "\\:", "\\>", "\\ ", "~", "\\qquad", "\\quad"):
        s = s.replace(sp, " " if sp in ("\\ ", "~", "\\quad", "\\qquad") else "")
    s = s.replace("\x01", "\\\\")
    s = _DEGREE_THEN_COMMA_RE.sub(", ", s)
    s = _DEGREE_RE.sub("", s)
    s = s.replace("\\%", "%").replace("{,}", ",")
    s = _PERCENT_WORD_RE.sub("%", s)
    if has_math(s):
        s = _TEXT_CONJUNCTION_RE.sub(", ", s)
        s = _BARE_CONJUNCTION_RE.sub(", ", s).strip(" ,")
    s = _WHITESPACE_RE.sub(" ", s).strip().rstrip(".。").strip()
    # \text{...}: a unit after a number is dropped, a whole-text answer is unwrapped
    m = _TEXT_UNIT_RE.match(s)
    if m and re.search(r"\d", m.group(1)):
        s = m.group(1).strip()
    s = _TEXT_CMD_RE.sub(lambda mm: mm.group(1), s).strip()
    if len(s) <= 200:  # the unit patterns backtrack; answers with units are short
        m = _TRAILING_UNITS_RE.match(s)
        if m:
            s = m.group(1).strip()
        m = _ZH_TRAILING_RE.match(s)
        if m:
            s = m.group(1).strip()
    m = _ZH_FRACTION_RE.match(s)
    if m:
        s = f"\\frac{{{m.group(2)}}}{{{m.group(1)}}}"
    m = _ZH_PERCENT_RE.match(s)
    if m:
        s = f"{m.group(1)}%"
    s = _IN_PREFIX_RE.sub("", s)
    s = _strip_outer_braces(s)
    s = _UNBRACED_SIGNED_EXPONENT_RE.sub(r"^{\1\2}", s)
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    s = s.rstrip(".").strip()
    if _PROSE_WORD_RE.search(s):
        number = one_number_sentence(s)
        if number is not None:
            s = number
    if re.fullmatch(r"[A-Za-z][A-Za-z ]*", s):  # a word answer: case does not matter
        s = " ".join(s.lower().split())
    m = _MIXED_SLASH_RE.fullmatch(s)
    if m and int(m.group(2)) < int(m.group(3)):  # 1 1/2 is one and a half (math-verify reads (1+1)/2)
        s = f"{m.group(1)}\\frac{{{m.group(2)}}}{{{m.group(3)}}}"
    elif _SPACED_DIGITS_RE.fullmatch(s):  # 2 3 is two numbers, not 23; 12 345 is twelve thousand ...
        s = s.replace(" ", "") if re.fullmatch(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?", s) else ", ".join(s.split())
    return s


__all__ = ["has_math", "normalize_answer", "one_number_sentence", "repair_escapes"]
