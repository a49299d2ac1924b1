"""Final-answer extraction and normalisation: pure string work, linear in the input's length.

Extraction order (the first form found wins; within a form, the LAST occurrence in the text):

1. ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces), or ``\\boxed 5``.
2. GSM8K's ``#### N``.
3. English "the (final) answer is N" (also "answer: N").
4. Chinese "答案是 N" / "答案为 N" / "答案：N".
5. Only with ``last_number_fallback=True``: the last number in the text (for plain-number datasets).

Model output is untrusted: every regex here is anchored or bounded so that a megabyte of hostile
text costs linear time, and answers longer than :data:`MAX_ANSWER_CHARS` are dropped.
"""

from __future__ import annotations

import re

#: Answers longer than this (after extraction) are not answers but attacks or rambling.
MAX_ANSWER_CHARS = 2000
#: Answer patterns other than ``\boxed`` are searched in this many trailing characters only.
TAIL_CHARS = 20_000

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_GSM8K_RE = re.compile(r"####\s*([^\n]{1,200})")
_EN_ANSWER_RE = re.compile(
    r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*([^\n]{1,300})",
    re.IGNORECASE,
)
_ZH_ANSWER_RE = re.compile(r"答案\s*(?:是|为|:|：)\s*[:：]?\s*([^\n]{1,300})")
_LAST_NUMBER_RE = re.compile(_NUMBER)

_FULL_WIDTH = str.maketrans("０１２３４５６７８９＋－．／，％＝（）", "0123456789+-./,%=()")


def _matching_brace(text: str, open_idx: int) -> int | None:
    depth = 0
    for i in range(open_idx, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


#: How many boxes, from the last one back, are tried when the later ones are unbalanced.
_MAX_BOXES_TRIED = 5


def _last_boxed(text: str) -> str | None:
    best = -1
    for cmd in _BOX_COMMANDS:
        best = max(best, text.rfind(cmd))
    tries = 0
    while best >= 0 and tries < _MAX_BOXES_TRIED:
        tries += 1
        cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, best))
        i = best + len(cmd)
        if i < len(text) and text[i] == "{":
            end = _matching_brace(text, i)
            if end is not None:
                return text[i + 1 : end]
        elif i < len(text) and text[i] == " ":
            m = re.match(r" +([^\s$]{1,200})", text[i : i + 210])
            if m:
                return m.group(1)
        # unbalanced or empty box: try an earlier one
        prev = -1
        for c in _BOX_COMMANDS:
            prev = max(prev, text.rfind(c, 0, best))
        best = prev
    return None


def _clean_sentence_answer(ans: str) -> str:
    # "The answer is $12$ dollars." -> "$12$ dollars"; keep LaTeX inside $...$ whole
    ans = ans.strip()
    if ans.startswith("$"):
        end = ans.find("$", 1)
        if end > 0:
            return ans[: end + 1]
    ans = re.split(r"(?<=[^\d])\.\s|\.$|。|；|;", ans, maxsplit=1)[0]
    return ans.strip()


#: The answer forms :func:`extract_answer_with_form` reports, in extraction order.
ANSWER_FORMS = ("boxed", "gsm8k", "answer_is", "chinese", "last_number")


def extract_answer(text: str, *, last_number_fallback: bool = False) -> str | None:
    """The final answer of a completion, or None when it gives none.

    Args:
        text: a completion (untrusted model output).
        last_number_fallback: also accept the last number of the text when no explicit answer
            form is present. Meant for plain-number datasets (e.g. GSM8K-style demos); it would
            reward any completion that happens to end in the right number, so it is off by default.

    Returns:
        The raw answer text (not yet normalised; see :func:`normalize_answer`), or None.
    """
    return extract_answer_with_form(text, last_number_fallback=last_number_fallback)[0]


def _last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    last = None
    for last in pattern.finditer(text[-TAIL_CHARS:]):
        pass
    return last


def _sentence(pattern: re.Pattern):
    def find(text: str) -> str | None:
        m = _last_match(pattern, text)
        return _clean_sentence_answer(m.group(1)) if m else None

    return find


def _gsm8k(text: str) -> str | None:
    m = _last_match(_GSM8K_RE, text)
    return m.group(1) if m else None


def _last_number(text: str) -> str | None:
    m = _last_match(_LAST_NUMBER_RE, text.translate(_FULL_WIDTH))
    return m.group(0) if m else None


_FINDERS = {
    "boxed": _last_boxed,
    "gsm8k": _gsm8k,
    "answer_is": _sentence(_EN_ANSWER_RE),
    "chinese": _sentence(_ZH_ANSWER_RE),
    "last_number": _last_number,
}


def find_answer(text: str, form: str) -> str | None:
    """The answer stated in one form (one of :data:`ANSWER_FORMS`), or None."""
    if form not in _FINDERS:
        raise ValueError(f"unknown answer form {form!r}; known: {list(ANSWER_FORMS)}")
    if not isinstance(text, str) or not text:
        return None
    answer = _FINDERS[form](text.replace("\x00", ""))
    if answer is None:
        return None
    answer = answer.strip()
    return answer if answer and len(answer) <= MAX_ANSWER_CHARS else None


def extract_answer_with_form(text: str, *, last_number_fallback: bool = False) -> tuple[str | None, str | None]:
    """:func:`extract_answer` and the form it was found in (one of :data:`ANSWER_FORMS`)."""
    forms = ANSWER_FORMS if last_number_fallback else ANSWER_FORMS[:-1]
    for form in forms:
        answer = find_answer(text, form)
        if answer is not None:
            return answer, form
    return None, None


# ----- normalisation -------------------------------------------------------------------------
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}")
_UNIT_WORDS = (
    "dollars|dollar|cents|cent|units|unit|degrees|degree|cm|mm|km|m|meters|meter|metres|inches|inch|feet|foot|ft|"
    "miles|mile|hours|hour|hrs|minutes|minute|mins|seconds|second|days|day|weeks|week|years|year|kg|g|grams|"
    "pounds|pound|lbs|ounces|oz|liters|litres|l|ml|gallons|people|students|apples|pages|times|percent|points|"
    "sq|square|cubic|per"
)
_TRAILING_UNITS_RE = re.compile(
    r"^(.*?\d)\s*(?:(?:" + _UNIT_WORDS + r")\b\.?\s*)+(?:\^?\{?[23]\}?)?$", re.IGNORECASE
)
_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ZH_FRACTION_RE = re.compile(r"^(\d+)分之(\d+)$")
_ZH_PERCENT_RE = re.compile(r"^百分之(\d+(?:\.\d+)?)$")
_ZH_TRAILING_RE = re.compile(r"^(.*?[\d}])\s*[\u4e00-\u9fff]{1,4}$")


def normalize_answer(answer: str) -> str:
    """Strip what graders agree is not part of an answer.

    Removes ``$`` and ``\\$``, thousands separators, ``\\text{...}`` units and trailing unit words,
    ``^\\circ`` and ``°``, ``\\left`` / ``\\right``, spacing commands, a trailing period, Chinese
    unit characters after a number; maps ``\\dfrac`` / ``\\tfrac`` to ``\\frac``, full-width digits to
    ASCII, and the Chinese forms "3分之2" (2/3) and "百分之50" (50%).
    """
    s = answer.replace("\x00", "").strip().translate(_FULL_WIDTH)
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "")
    for sp in ("\\!", "\\,", "\\;", "\\:", "\\ ", "~", "\\quad", "\\qquad"):
        s = s.replace(sp, " " if sp in ("\\ ", "~", "\\quad", "\\qquad") else "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("°", "").replace("\\circ", "")
    s = s.replace("\\%", "%").replace("{,}", ",")
    s = s.strip().rstrip(".。").strip()
    # \text{...}: a unit after a number is dropped, a whole-text answer is unwrapped
    m = re.match(r"^(.*?)\s*\\(?:text|mbox|mathrm)\s*\{\s*[a-zA-Z .]*\}$", s)
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
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    s = s.rstrip(".").strip()
    if re.fullmatch(r"[A-Za-z][A-Za-z ]*", s):  # a word answer: case does not matter
        s = " ".join(s.lower().split())
    return s
