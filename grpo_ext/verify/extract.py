"""Final-answer extraction and normalisation: pure string work, linear in the input's length.

Marker forms, in order (the first form found wins; within a form, the LAST occurrence in the text):

1. ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces), or ``\\boxed 5``.
2. GSM8K's ``#### N``.
3. A final line that states the answer: ``A: N``, ``Ans: N``, ``Final answer: N``, or a whole line in
   bold, ``**N**`` (GPT-3's GSM8K solutions end in ``A: 18``; chat models bold the result). It is the
   completion's last word, so it wins over an earlier sentence.
4. English "the (final) answer is N" (also "answer: N").
5. Chinese "答案是 N" / "答案为 N" / "答案：N".
6. ``last_number``: the last number in the text.

:func:`grpo_ext.verify.extract_answer` runs 1-5, then math-verify's own extraction over the whole
completion (in the sandbox), then 6; its strict mode stops after 5. This module is the pure string
part: :func:`extract_marked_answer` is the strict mode.

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
_LAST_NUMBER_RE = re.compile(rf"(?<![A-Za-z])(?:{_NUMBER})")  # not digits inside a word ("AZYUK2A")
_FINAL_LINE_RE = re.compile(r"^\s*(?:A|Ans|Final answer|Final Answer|FINAL ANSWER)\s*[:：]\s*(.{1,300}?)\s*$")
_BOLD_LINE_RE = re.compile(r"^\s*\*\*([^*\n]{1,200})\*\*\s*\.?\s*$")

_THIN_SPACES = str.maketrans({"\u2009": " ", "\u202f": " ", "\u00a0": " ", "\u2007": " "})
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


#: Text allowed between boxes that together state one answer list: "\\boxed{3}, \\boxed{5}", "... and ...".
_BETWEEN_LISTED_BOXES_RE = re.compile(r"^[\s$,;]*(?:and|or|,)?[\s$,;]*$")
_MAX_LISTED_BOXES = 16


def _box_before(text: str, end: int) -> tuple[int, int] | None:
    """The last balanced ``\\boxed{...}`` / ``\\fbox{...}`` that ends before ``end``: (start, closing brace)."""
    start = max(text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    i = start + len(cmd)
    if i < len(text) and text[i] == "{":
        close = _matching_brace(text, i)
        if close is not None and close < end:
            return start, close
    return None


def _listed_boxes(text: str, last: tuple[int, int]) -> list[str]:
    """The contents of the boxes that, with the last one, form a list: only commas, "and", "$" between them."""
    items, (start, close) = [], last
    while len(items) < _MAX_LISTED_BOXES:
        items.append(text[text.index("{", start) + 1 : close])
        previous = _box_before(text, start)
        if previous is None or not _BETWEEN_LISTED_BOXES_RE.match(text[previous[1] + 1 : start]):
            break
        start, close = previous
    return items[::-1]


def _last_boxed(text: str) -> str | None:
    last = _box_before(text, len(text))
    if last is not None:
        items = _listed_boxes(text, last)
        if len(items) > 1:
            return ", ".join(items)
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


#: A stated answer that is a sentence: "The volume of $ABCD$ is 120" -> the part after the last "is" / "=".
_PROSE_ANSWER_RE = re.compile(r"^.*(?:\bis\b|=)\s*(.+)$", re.IGNORECASE)  # answers are <= 300 characters


def _clean_sentence_answer(ans: str) -> str:
    # "The answer is $12$ dollars." -> "$12$ dollars"; keep LaTeX inside $...$ whole
    ans = ans.strip().strip("*").strip()  # markdown bold around the answer: "**18**"
    if ans.startswith("$"):
        end = ans.find("$", 1)
        if end > 0:
            return ans[: end + 1]
    ans = re.split(r"\.\s|\.$|。|；|;", ans, maxsplit=1)[0]  # a decimal point never has a space after it
    ans = re.sub(r"^(?:therefore|thus|then|so|hence|simply|just)\b[\s,:]*", "", ans.strip(), flags=re.IGNORECASE)
    if len(re.findall(r"[A-Za-z]{2,}", re.sub(r"\$[^$]*\$|\\[A-Za-z]+", "", ans))) >= 3:
        prose = _PROSE_ANSWER_RE.match(ans)  # more words than an answer with a unit has: a sentence
        if prose:
            ans = prose.group(1)
    return ans.strip().strip("*").strip()


#: The answer forms :func:`extract_marked_answer_with_form` reports, in extraction order.
ANSWER_FORMS = ("boxed", "gsm8k", "final_line", "answer_is", "chinese", "last_number")
#: The marker forms: what the strict mode accepts.
MARKER_FORMS = ANSWER_FORMS[:-1]


def extract_marked_answer(text: str, *, last_number_fallback: bool = False) -> str | None:
    """The final answer of a completion stated in a marker form (strict mode), or None.

    Args:
        text: a completion (untrusted model output).
        last_number_fallback: also accept the last number of the text when no marker form is present.

    Returns:
        The raw answer text (not yet normalised; see :func:`normalize_answer`), or None.
    """
    return extract_marked_answer_with_form(text, last_number_fallback=last_number_fallback)[0]


def _last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    last = None
    for last in pattern.finditer(text[-TAIL_CHARS:]):
        pass
    return last


def _sentence(pattern: re.Pattern):
    def find(text: str) -> str | None:
        m = _last_match(pattern, text)
        if not m:
            return None
        answer = m.group(1)
        for _ in range(3):  # "Final Answer: The final answer is 7": the innermost statement
            inner = _last_match(pattern, answer)
            if inner is None:
                break
            answer = inner.group(1)
        return _clean_sentence_answer(answer)

    return find


def _gsm8k(text: str) -> str | None:
    m = _last_match(_GSM8K_RE, text)
    return m.group(1) if m else None


def _final_line(text: str) -> str | None:
    tail = text[-TAIL_CHARS:].rstrip()
    last = tail[tail.rfind("\n") + 1:]
    m = _FINAL_LINE_RE.match(last) or _BOLD_LINE_RE.match(last)
    if not m:
        return None
    answer = m.group(1).strip().strip("*").strip()  # "A: **18**"
    inner = _FINAL_LINE_RE.match(answer) or _EN_ANSWER_RE.match(answer)  # "**Final answer: 18**"
    return _clean_sentence_answer(inner.group(1) if inner else answer)


def _last_number(text: str) -> str | None:
    m = _last_match(_LAST_NUMBER_RE, text.translate(_FULL_WIDTH))
    return m.group(0) if m else None


_FINDERS = {
    "boxed": _last_boxed,
    "gsm8k": _gsm8k,
    "answer_is": _sentence(_EN_ANSWER_RE),
    "chinese": _sentence(_ZH_ANSWER_RE),
    "final_line": _final_line,
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


def extract_marked_answer_with_form(text: str, *, last_number_fallback: bool = False) -> tuple[str | None, str | None]:
    """:func:`extract_marked_answer` and the form it was found in (one of :data:`ANSWER_FORMS`)."""
    forms = ANSWER_FORMS if last_number_fallback else MARKER_FORMS
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
_DECIMAL_COMMA_RE = re.compile(r"^[-+]?(?:0,\d+|\d+,\d{1,2}|\d+,\d{4,})$")
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
    s = answer.replace("\x00", "").strip().translate(_FULL_WIDTH).translate(_THIN_SPACES)
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("\\thinspace", "\\,").replace("\\\\", "\x01")  # keep row breaks "\\\\" whole
    for sp in ("\\!", "\\,", "\\;", "\\:", "\\ ", "~", "\\quad", "\\qquad"):
        s = s.replace(sp, " " if sp in ("\\ ", "~", "\\quad", "\\qquad") else "")
    s = s.replace("\x01", "\\\\")
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
    if _DECIMAL_COMMA_RE.match(s):  # "1,22", "0,111", "1000,99": a decimal comma, never thousands
        s = s.replace(",", ".")
    elif _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    s = s.rstrip(".").strip()
    if re.fullmatch(r"[A-Za-z][A-Za-z ]*", s):  # a word answer: case does not matter
        s = " ".join(s.lower().split())
    return s
