"""Stage 1: find the final answer of a completion, or of a gold answer, as text.

The answer forms, in the table :data:`FORMS` (name, whether it is a marker, an example):

========================  ======  ================================================================
form                      marker  example / rule
========================  ======  ================================================================
``boxed``                 yes     ``\\boxed{\\frac{1}{2}}``, ``\\fbox{}``, ``\\boxed 5``; boxes joined only by
                                  "and" / "or" / commas / ``\\quad`` / a short label form one list
``gsm8k``                 yes     ``#### 72``
``final_line``            yes     a last line ``A: 72``, ``Final answer: 72`` or ``**72**``
``answer_is``             yes     "the (final) answer is 72", "the answer (arabic numerals) is 72",
                                  "answer: 72"; French "la réponse est", German "die Antwort ist",
                                  Spanish "la respuesta es", Italian, Portuguese, Russian, Japanese
``chinese``               yes     "答案是 72", "答案为 72", "答案：72"
``whole``                 no      the completion is only an answer: ``(x-2)(x+2)``, ``\\dfrac{1}{3}``
``math_verify``           no      math-verify's own extraction over the text (in the sandbox)
``last_number``           no      the last number, unless it is part of a larger expression
========================  ======  ================================================================

**The last statement wins.** Every occurrence of every marker form is a candidate; the one that
starts last in the text is the answer (a ``\\boxed{}`` inside "the answer is \\boxed{5}" starts
after the phrase, so the box's content is taken). A statement that states nothing answer-like
("this answer is not possible", "I hope the answer is clear") is passed over for an earlier one.
The non-marker forms are tried in the table's order only when no marker is found; the strict mode
(:func:`extract_marked_answer`) stops after the markers.

A stated answer is cleaned: the first ``$...$`` span, or the text up to the end of its sentence,
without filler ("Therefore", "for sure"); a sentence "The volume of $ABCD$ is 120" keeps what
follows its last "is".

**The last-number fallback never takes a number that is part of a larger expression**: a
denominator, a radicand, an exponent or a base, a factor of a product, a term of a sum, the left
side of an equation (``\\frac{1+\\sqrt{5}}{2}``, ``2^{10}``, ``3 \\times 4``, ``12 = x``): there it
finds nothing.

Gold answers are read as generously (:func:`read_gold`): a bare answer is taken whole (``$125$
miles``, ``(D) Alina``, ``$21,16$ or $11$``), a marked one by its marker (an unclosed ``\\boxed{`` of
a gold runs to the end), and a reference solution like a completion.

Model output is untrusted: every regex here is anchored or bounded so that a megabyte of hostile
text costs linear time, and answers longer than :data:`MAX_ANSWER_CHARS` are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .guard import MATH_WORDS
from .normalize import repair_escapes

#: Answers longer than this (after extraction) are not answers but attacks or rambling.
MAX_ANSWER_CHARS = 2000
#: Answer patterns other than ``\boxed`` are searched in this many trailing characters only.
TAIL_CHARS = 20_000


@dataclass(frozen=True)
class AnswerForm:
    name: str
    marker: bool  #: counted by the strict mode and by format_reward
    example: str


FORMS = (
    AnswerForm("boxed", True, "so $x = \\boxed{\\frac{1}{2}}$"),
    AnswerForm("gsm8k", True, "48 + 24 = 72\n#### 72"),
    AnswerForm("final_line", True, "48 + 24 = 72\nA: 72"),
    AnswerForm("answer_is", True, "Therefore, the answer (arabic numerals) is 72."),
    AnswerForm("chinese", True, "所以一共有 72 个。答案是 72"),
    AnswerForm("whole", False, "(x-2)(x+2)"),
    AnswerForm("math_verify", False, "so the total is $72$ in all"),
    AnswerForm("last_number", False, "she sold 48 and 24, so 72"),
)
#: The answer forms, in the table's order (the order of the fallbacks; markers compete by position).
ANSWER_FORMS = tuple(f.name for f in FORMS)
#: The marker forms: what the strict mode accepts.
MARKER_FORMS = tuple(f.name for f in FORMS if f.marker)

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_GSM8K_RE = re.compile(r"####\s*([^\n]{1,200})")
#: (keyword that must appear in the lower-cased text, pattern): the keyword check skips most patterns cheaply.
_ANSWER_IS_RES = tuple((key, re.compile(p, re.IGNORECASE)) for key, p in (
    ("answer", r"\banswers?\b[*_]*\s*(?:\([^()\n]{0,40}\)\s*)?(?:is|are|would\s+be|should\s+be|will\s+be|=|:)\s*[*_]*"
               r"\s*:?\s*([^\n]{1,300})"),
    ("ponse", r"\br[ée]ponse(?:\s+finale)?\s*(?:est|:)\s*:?\s*([^\n]{1,300})"),
    ("antwort", r"\bantwort\s*(?:ist|lautet|:)\s*:?\s*([^\n]{1,300})"),
    ("respuesta", r"\brespuesta(?:\s+final)?\s*(?:es|:)\s*:?\s*([^\n]{1,300})"),
    ("risposta", r"\brisposta(?:\s+finale)?\s*(?:è|e'|:)\s*:?\s*([^\n]{1,300})"),
    ("resposta", r"\bresposta(?:\s+final)?\s*(?:é|:)\s*:?\s*([^\n]{1,300})"),
    ("ответ", r"ответ\s*(?::|—|–|-|равен|будет)\s*([^\n]{1,300})"),
    ("答え", r"答え\s*(?:は|：|:)\s*([^\n]{1,300})"),
))
_ZH_ANSWER_RE = re.compile(r"答案\s*(?:是|为|為|应为|應為|:|：)\s*[:：]?\s*([^\n]{1,300})")
_FINAL_LINE_RE = re.compile(r"^\s*(?:A\s*[:：]\s|(?:Ans|Answer|Final answer)\s*[:：])\s*(.{1,300}?)\s*$", re.IGNORECASE)
_BOLD_LINE_RE = re.compile(r"^\s*\*\*([^*\n]{1,200})\*\*\s*\.?\s*$")
_LAST_NUMBER_RE = re.compile(rf"(?<![A-Za-z\d.])(?:{_NUMBER})")  # not digits inside a word ("AZYUK2A")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９＋－．／，％＝（）\u2212", "0123456789+-./,%=()-")

#: How many boxes, from the last one back, are tried when the later ones are unbalanced or empty.
_MAX_BOXES_TRIED = 8
_MAX_LISTED_BOXES = 16
#: The text between two boxes that state one answer list: short, with a conjunction, no correction.
_MAX_LIST_GAP = 40
_GAP_CLEAN_RE = re.compile(r"\\(?:quad|qquad|text|mbox|textnormal|mathrm)\b|\\[()\[\],;!: ]|[${}$*~]")
_GAP_JOIN_RE = re.compile(r"^[\s,;&]*$|(?<![a-z])(?:and|or)(?![a-z])|[,;&]", re.IGNORECASE)
_GAP_CORRECTION_RE = re.compile(
    r"\b(?:actually|wait|correct\w*|but|not|no|instead|wrong|mistake|oops|rather|so|therefore|thus|hence|"
    r"then|final\w*|answer|becomes?|gives?)\b", re.IGNORECASE)


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


def _box_start_before(text: str, end: int) -> int:
    return max(text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS)


def _box_at(text: str, start: int, *, unclosed_to_end: bool = False) -> tuple[int, int, str] | None:
    """The box that starts at ``start``: (content start, end, content), or None when it is unbalanced."""
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    i = start + len(cmd)
    if i < len(text) and text[i] == "{":
        close = _matching_brace(text, i)
        if close is not None:
            return i + 1, close + 1, text[i + 1 : close]
        if unclosed_to_end:
            return i + 1, len(text), text[i + 1 :].rstrip().rstrip("}$").strip()
        return None
    m = re.match(r" +([^\s$]{1,200})", text[i : i + 210])
    if m:
        return i + m.start(1), i + m.end(1), m.group(1)
    return None


def _joins_boxes(gap: str) -> bool:
    """Whether the text between two boxes makes them one answer list ("\\quad \\text{and} \\quad", ", ")."""
    if len(gap) > 2 * _MAX_LIST_GAP:
        return False
    cleaned = _GAP_CLEAN_RE.sub(" ", gap).strip()
    if len(cleaned) > _MAX_LIST_GAP or _GAP_CORRECTION_RE.search(cleaned):
        return False
    return bool(_GAP_JOIN_RE.search(cleaned)) or not cleaned


def _box_candidates(text: str, *, unclosed_to_end: bool = False) -> list[tuple[int, str]]:
    """(position, answer) for the last few box groups; boxes that form one list are joined by commas."""
    found: list[tuple[int, str]] = []
    start, tries = _box_start_before(text, len(text)), 0
    while start >= 0 and tries < _MAX_BOXES_TRIED:
        tries += 1
        box = _box_at(text, start, unclosed_to_end=unclosed_to_end and not found)
        if box is None or not box[2].strip():
            start = _box_start_before(text, start)
            continue
        position, group, first = box[0], [box[2]], start
        while len(group) < _MAX_LISTED_BOXES:
            previous = _box_start_before(text, first)
            if previous < 0:
                break
            earlier = _box_at(text, previous)
            if earlier is None or earlier[1] > first or not _joins_boxes(text[earlier[1]: first]):
                break
            group.append(earlier[2])
            first = previous
        items = [item.strip() for item in group[::-1]]
        deduped = [item for i, item in enumerate(items) if i == 0 or item != items[i - 1]]
        found.append((position, ", ".join(deduped)))
        start = _box_start_before(text, first)
    return found


_FILLER_RE = re.compile(
    r"^(?:therefore|thus|then|so|hence|simply|just|clearly|definitely|exactly|for\s+sure|indeed|that|equal\s+to|"
    r"given\s+by|option|choice)\b[\s,:]*", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"\.\s|\.$|。|；|;|!\s|\?\s|\s(?:because|since|as|which|where|when|given)\s|,\s(?:which|so)\s")
#: A stated answer that is a sentence: "The volume of $ABCD$ is 120" -> the part after the last "is" / "=".
_PROSE_ANSWER_RE = re.compile(r"^.*(?:\bis\b|=)\s*(.+)$", re.IGNORECASE)
_MATH_SPAN_RE = re.compile(r"^(\$\$?)(.+?)\1|^\\\((.+?)\\\)|^\\\[(.+?)\\\]", re.S)


def _clean_statement(ans: str) -> str:
    """The answer part of a stated answer: "$12$ dollars." -> "$12$"; "for sure D, it can't be A" stays."""
    ans = ans.strip().strip("*_").strip().lstrip(":").strip()
    for _ in range(3):
        stripped = _FILLER_RE.sub("", ans).strip()
        if stripped == ans:
            break
        ans = stripped
    m = _MATH_SPAN_RE.match(ans)
    if m:
        return m.group(0).strip()
    ans = _SENTENCE_END_RE.split(ans, maxsplit=1)[0]
    if len(re.findall(r"[A-Za-z]{2,}", re.sub(r"\$[^$]*\$|\\[A-Za-z]+", "", ans))) >= 3:
        prose = _PROSE_ANSWER_RE.match(ans)  # more words than an answer with a unit has: a sentence
        if prose:
            ans = prose.group(1)
    return ans.strip().strip("*").strip()


def _answer_like(ans: str) -> bool:
    """Whether a stated answer states something: a number, LaTeX, a relation or an option letter."""
    return bool(re.search(r"[\d\\=<>^]|(?<![A-Za-z])[A-E](?![A-Za-z])", ans))


_CHECKING_RE = re.compile(r"\b(?:check|checking|verify|verifying|confirm|confirming|test|testing|double-check|"
                          r"plug|plugging|substitut\w*)\b[^.\n]*$", re.IGNORECASE)


def _statements(pattern: re.Pattern, text: str, offset: int) -> list[tuple[int, str]]:
    found = []
    for m in pattern.finditer(text):
        if _CHECKING_RE.search(text[max(0, m.start() - 40): m.start()]):
            continue  # "We may check our answer: 17 * 44 = 748": a check, not a statement
        answer, start = m.group(1), m.start(1)
        found.append((offset + start, _clean_statement(answer)))
        for _ in range(3):  # "Final Answer: The final answer is 7": each statement inside is a candidate too
            inner = pattern.search(answer)
            if inner is None:
                break
            answer, start = inner.group(1), start + inner.start(1)
            found.append((offset + start, _clean_statement(answer)))
    return found


def _final_line(tail: str, offset: int) -> list[tuple[int, str]]:
    stripped = tail.rstrip()
    line_start = stripped.rfind("\n") + 1
    m = _FINAL_LINE_RE.match(stripped[line_start:]) or _BOLD_LINE_RE.match(stripped[line_start:])
    if not m:
        return []
    answer = m.group(1).strip().strip("*").strip()  # "A: **18**"
    inner = _FINAL_LINE_RE.match(answer) or _ANSWER_IS_RES[0][1].match(answer)  # "**Final answer: 18**"
    return [(offset + line_start + m.start(1), _clean_statement(inner.group(1) if inner else answer))]


def _candidates(text: str, forms: tuple[str, ...], *, gold: bool = False) -> list[tuple[int, int, str, str]]:
    """Every stated answer of ``forms``: (position, form rank, form, answer)."""
    offset = max(0, len(text) - TAIL_CHARS)
    tail = text[offset:]
    found: list[tuple[int, int, str, str]] = []
    for rank, form in enumerate(forms):
        if form == "boxed":
            hits = _box_candidates(text, unclosed_to_end=gold)
        elif form == "gsm8k":
            hits = [(offset + m.start(1), m.group(1)) for m in _GSM8K_RE.finditer(tail)] if "####" in tail else []
        elif form == "final_line":
            hits = _final_line(tail, offset)
        elif form == "answer_is":
            lower = tail.lower()
            hits = [hit for key, pattern in _ANSWER_IS_RES if key in lower for hit in _statements(pattern, tail, offset)]
        elif form == "chinese":
            hits = _statements(_ZH_ANSWER_RE, tail, offset) if "答案" in tail else []
        else:
            continue
        found += [(pos, -rank, form, ans.strip()) for pos, ans in hits
                  if ans.strip() and len(ans.strip()) <= MAX_ANSWER_CHARS]
    return found


#: Forms that state an answer whatever it says (a box, "####", a final "A:" line); a phrase "the answer is"
#: must state something answer-like to count.
_EXPLICIT_FORMS = ("boxed", "gsm8k", "final_line")


def _pick(candidates: list[tuple[int, int, str, str]]) -> tuple[str | None, str | None]:
    if not candidates:
        return None, None
    candidates.sort()
    usable = [c for c in candidates if c[2] in _EXPLICIT_FORMS or _answer_like(c[3])]
    _, _, form, answer = (usable or candidates)[-1]
    return answer, form


def extract_marked_answer_with_form(text: str, *, last_number_fallback: bool = False) -> tuple[str | None, str | None]:
    """The answer stated in a marker form (the last statement wins) and its form, or ``(None, None)``;
    with ``last_number_fallback``, the last number when no marker is found."""
    if not isinstance(text, str) or not text:
        return None, None
    text = text.replace("\x00", "")
    answer, form = _pick(_candidates(text, MARKER_FORMS))
    if answer is None and last_number_fallback:
        answer = last_number(text)
        form = "last_number" if answer is not None else None
    return answer, form


def extract_marked_answer(text: str, *, last_number_fallback: bool = False) -> str | None:
    """The final answer of a completion stated in a marker form (the strict mode), or None.

    Returns:
        The raw answer text (not yet normalised; see :func:`grpo_ext.verify.normalize_answer`), or None.
    """
    return extract_marked_answer_with_form(text, last_number_fallback=last_number_fallback)[0]


def find_answer(text: str, form: str) -> str | None:
    """The answer stated in one form (one of :data:`ANSWER_FORMS`, but ``math_verify``), or None."""
    if form not in ANSWER_FORMS or form == "math_verify":
        raise ValueError(f"unknown answer form {form!r}; known: {[f for f in ANSWER_FORMS if f != 'math_verify']}")
    if not isinstance(text, str) or not text:
        return None
    text = text.replace("\x00", "")
    if form == "whole":
        return whole_answer(text)
    if form == "last_number":
        return last_number(text)
    return _pick(_candidates(text, (form,)))[0]


# ----- the non-marker forms ----------------------------------------------------------------------
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_TEXT_ARG_RE = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{[^{}]*\}")
_BARE_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_GLUED_CONJUNCTION_RE = re.compile(r"(?<=[\d)}])(?:or|and)(?=[A-Z\\(\d-])")
_WRAPPERS_RE = re.compile(r"^(?:\$\$?|\\\(|\\\[)\s*(.*?)\s*(?:\$\$?|\\\)|\\\])$", re.S)


def prose_words(s: str) -> list[str]:
    """The words of ``s`` outside LaTeX commands and math names: what makes it a sentence."""
    s = _COMMAND_RE.sub(" ", _TEXT_ARG_RE.sub(" ", s))
    return [w for w in _BARE_WORD_RE.findall(s) if w.lower() not in MATH_WORDS]


def whole_answer(text: str) -> str | None:
    """The completion itself when it is only an answer (no prose, one line, at most 300 characters)."""
    s = text.strip()
    if not s or len(s) > 300 or "\n" in s:
        return None
    m = _WRAPPERS_RE.match(s)
    inner = _GLUED_CONJUNCTION_RE.sub(" , ", m.group(1) if m else s)
    if not inner or "####" in inner or any(cmd in inner for cmd in _BOX_COMMANDS) or prose_words(inner):
        return None
    return s if re.search(r"[\dA-Za-z\\]", inner) else None


_EXPRESSION_BEFORE = ("^", "_", "/", "*", "{", "<", ">", "√", "\\frac", "\\sqrt", "\\times", "\\cdot",
                      "\\div", "\\pm", "×", "÷", "\\binom", "\\over", "\\log", "\\ln", "\\pmod", "\\bmod", "\\mod",
                      "% of", "percent of")
_EXPRESSION_AFTER = ("^", "/", "*", "}", "!", "=", "\\times", "\\cdot", "\\div", "\\sqrt", "\\pi", "×", "÷", "_", "√", "²",
                     "³", "½", "¼", "¾", ">", "<", "\\over", "\\pmod", "\\bmod", "\\mod", "squared", "cubed",
                     "th power", "st power", "nd power", "rd power")
#: Words between two numbers that make them one expression: 3 x 4, 7 mod 3, 1 over 2, 1 in 6, 2 out of 3.
_WORD_OPERATOR_BEFORE_RE = re.compile(r"[\d}]\s*(?:x|mod|over|in|out of|to the)$")
_WORD_OPERATOR_AFTER_RE = re.compile(r"^(?:x|mod|over|in|out of)\s*\d")
#: A bound or an exclusion before a number: "at least 45" does not state 45.
_BOUND_BEFORE_RE = re.compile(r"(?:\bat least|\bat most|\bmore than|\bless than|\bfewer than|\bgreater than|\bup to|"
                              r"\bnot|\bexcept|\bover|\bunder|\bbelow|\babove|\bminus|\bnegative)$", re.IGNORECASE)


def _part_of_expression(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 12): start].rstrip()
    after = text[end: end + 12]
    if after[:1].isalpha() and not after[1:2].isalpha():  # 2x
        return True
    after = after.lstrip()
    if before.endswith(_EXPRESSION_BEFORE) or after.startswith(_EXPRESSION_AFTER):
        return True
    if _WORD_OPERATOR_BEFORE_RE.search(before) or _WORD_OPERATOR_AFTER_RE.match(after):
        return True
    if _BOUND_BEFORE_RE.search(text[max(0, start - 16): start].rstrip()):
        return True
    raw_before = text[max(0, start - 12): start]
    if raw_before.endswith(("}", "|")) or re.search(r"\d\s*:\s*$", raw_before):  # \frac{..}2, |x|2, the 4 of 3:4
        return True
    if re.match(r"[+\-]\s*[\w\\(]", after) or re.match(r":\s*\d", after):  # 3 + x, 7:32
        return True
    if before.endswith(("+", "-")) and re.search(r"[\w)}]\s*[+\-]$", before):  # a term of a sum
        return True
    return False


def number_in_expression(text: str, answer: str) -> bool:
    """Whether ``answer``, a bare number, stands in the last place ``text`` states it as part of a larger
    expression (math-verify's extraction over plain text reads ``2^{10}`` as ``2``, ``2x`` as ``2``)."""
    if not _LAST_NUMBER_RE.fullmatch(answer.strip()):
        return False
    tail = text[-TAIL_CHARS:]
    at = tail.rfind(answer.strip())
    return at >= 0 and _part_of_expression(tail, at, at + len(answer.strip()))


def last_number(text: str) -> str | None:
    """The last number of ``text``, or None when there is none or it is part of a larger expression."""
    offset = max(0, len(text) - TAIL_CHARS)
    # LaTeX thousands separators (10,\!080 and 10{,}080) are a comma: the number is 10080, not 080
    tail = text[offset:].translate(_FULL_WIDTH).replace(",\\!", ",").replace("{,}", ",")
    last = None
    for last in _LAST_NUMBER_RE.finditer(tail):
        pass
    if last is None or _part_of_expression(tail, last.start(), last.end()):
        return None
    return last.group(0)


# ----- gold answers ------------------------------------------------------------------------------
_SENTENCE_RE = re.compile(r"[.!?]\s+[A-Z]")


def is_bare_gold(gold: str) -> bool:
    """A gold that is an answer, not a text around one: short, at most four words of prose, no sentences."""
    return len(gold) <= 500 and len(prose_words(gold)) <= 4 and not _SENTENCE_RE.search(gold)


def read_gold(gold: str) -> tuple[str | None, bool]:
    """The answer a gold states, read without the sandbox: (answer, whether it is final).

    A marked gold gives its marker's answer (an unclosed ``\\boxed{`` runs to the end); a bare one is
    itself. Otherwise ``(None, False)``: read it like a completion (math-verify's extraction, then
    the last number).
    """
    s = repair_escapes(re.sub(r"\s+", " ", gold.replace("\x00", "")).strip())
    if not s:
        return None, True
    answer, _ = _pick(_candidates(s, MARKER_FORMS, gold=True))
    if answer is not None:
        return answer, True
    if is_bare_gold(s):
        return s, True
    return None, False


__all__ = [
    "ANSWER_FORMS", "FORMS", "MARKER_FORMS", "MAX_ANSWER_CHARS", "TAIL_CHARS", "AnswerForm",
    "extract_marked_answer", "extract_marked_answer_with_form", "find_answer", "is_bare_gold",
    "last_number", "number_in_expression", "prose_words", "read_gold", "whole_answer",
]
