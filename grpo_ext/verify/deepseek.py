"""DeepSeek-Math's grading rules (``grader="deepseek"``), for reproducing the paper's table.

The rules are those DeepSeek's evaluation code (``evaluation/`` of deepseek-ai/DeepSeek-Math)
documents for its chain-of-thought runs, written here from that description; where they differ
from grpo-ext's default grader, they win only under this grader. The string work runs in the
calling process (plain string and regular-expression operations, linear in the text); the one
symbolic step (``simplify(a - b) == 0``, else numeric values within 1e-3) runs in the sandbox
workers of :mod:`grpo_ext.verify.sandbox` after the whitelist of :mod:`grpo_ext.verify.guard`,
parsed by math-verify's LaTeX parser (DeepSeek's code tries sympy's ``parse_latex`` then
``parse_expr``, which evaluates text: never here). A symbolic check that overruns the sandbox's
timeout counts as not equal.

**Extraction** (:func:`extract_answers`), first rule that applies:

1. the Minerva form ``final answer is $X$. I hope`` gives ``X``;
2. else every ``\\boxed{...}`` (brace-matched), in order;
3. else what follows the last ``he answer is``;
4. else what the last ````` ```output ````` block holds (a tool-integrated completion);
5. else the last number (``-?\\d*\\.?\\d+`` after removing commas).

Each answer keeps its first line, loses a leading ``:`` and trailing ``.`` / ``/``, and goes through
:func:`strip_string`: a trailing ``\\text{...}`` (a unit) is removed unless it is the whole answer,
``^\\circ``, ``$``, ``x\\in``, ``\\left`` / ``\\right``, ``\\cdot``, ``\\mbox{}`` and spaces are removed,
``\\dfrac`` becomes ``\\frac``, ``\\frac12`` becomes ``\\frac{1}{2}``, ``a/b`` of integers ``\\frac{a}{b}``,
``2.000`` becomes ``2``; ``%`` is kept; words (``miles``, ``dollars``) are kept.

**Benchmarks** (:func:`rules_for`): GSM8K, CMATH and MGSM-zh are graded on the last extracted answer
against the gold with its commas removed (and nothing else); MATH and MATH-500 read every box: the
gold from the reference solution by the same extraction, both sides split into items when the
question says "separated by commas" (items without brackets) or at ``\\text{ and }``, repeats
dropped, the completion's last ``len(gold)`` items kept, and every item on each side must equal some
item on the other.

**Equality** (:func:`equal`), first that holds: both sides split at ``\\cup`` and compared as item
sets; numbers within 1e-3 (commas removed); equal strings; both numbers (``%`` meaning /100): the
prediction within 1e-3 of the gold, the gold / 100 or the gold x 100, and never otherwise; both
bracketed: items compared in order, bracket kinds ignored; both ``pmatrix`` / ``bmatrix``: entry by
entry; two equations: ``lhs - rhs`` equal up to sign; an equation with a short left side (at most 2
characters: ``x=3``) against a value: its right side; else the symbolic step.

**Bounds** DeepSeek's code does not have (model output is untrusted): an answer of more than
:data:`MAX_ANSWER_CHARS` characters is no answer, a number of more than 400 characters is not a
number, at most the last :data:`MAX_BOXES` boxes are read, a list of more than :data:`MAX_ITEMS`
items equals nothing, and once a symbolic check of a completion overruns the sandbox's timeout the
rest of that completion's symbolic checks are not equal (one hostile answer costs one timeout).
"""

from __future__ import annotations

import math
import re
import threading

from .guard import symbolic_rejection
from .verdicts import EQUAL

#: Tolerance of DeepSeek's numeric comparisons (absolute).
PRECISION = 1e-3
#: Benchmarks graded on one answer; every other benchmark is graded as MATH is (all boxes).
SINGLE_ANSWER_BENCHMARKS = ("gsm8k", "cmath", "mgsm_zh")
#: Longest answer string the rules look at (a longer one is cut here before any rule).
MAX_ANSWER_CHARS = 2000
#: Items a list (boxes, commas, ``\cup`` parts) may have; a longer one is not equal to anything.
MAX_ITEMS = 32
#: Boxes read in one text (the last ones); DeepSeek's code reads all of them.
MAX_BOXES = 64

_NUMBER_RE = re.compile(r"-?\d*\.?\d+")
_TEXT_AND_RE = re.compile(r"\\text\{\s*and\s*\}")
_BRACKETED_RE = re.compile(r"(\(|\[).+(\)|\])")
_MATRIX_OPEN = ("\\begin{pmatrix}", "\\begin{bmatrix}")
_MATRIX_CLOSE = ("\\end{pmatrix}", "\\end{bmatrix}")


# ----- strip_string ----------------------------------------------------------------------------
def _fix_fracs(s: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``, ``\frac1{72}`` -> ``\frac{1}{72}``; braced fractions unchanged."""
    head, *rest = s.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if part.startswith("{"):
            out += part
            continue
        if len(part) < 2:
            return s
        a, b, tail = part[0], part[1], part[2:]
        out += "{" + a + "}" + (b + tail if b == "{" else "{" + b + "}" + tail)
    return out


def _fix_a_slash_b(s: str) -> str:
    """``3/4`` -> ``\\frac{3}{4}`` when both sides are integers written plainly (or hold ``sqrt``)."""
    parts = s.split("/")
    if len(parts) != 2 or len(s) > 100:
        return s
    a, b = parts
    try:
        a_text = a if "sqrt" in a else str(int(a))
        b_text = b if "sqrt" in b else str(int(b))
    except ValueError:
        return s
    if s != f"{a_text}/{b_text}":
        return s
    return "\\frac{" + a_text + "}{" + b_text + "}"


def _brace_argument(command: str, s: str) -> str:
    s = re.sub(r"\\" + command + r"(-?[0-9.a-zA-Z]+)", r"\\" + command + r"{\1}", s)
    return re.sub(r"\\" + command + r"\s+(\w+)$", r"\\" + command + r"{\1}", s)


def strip_string(text) -> str:
    """An answer as DeepSeek's rules normalise it (see the module docstring)."""
    s = str(text).strip()
    s = s.replace("\n", "").rstrip(".").replace("\\!", "")
    if s.startswith("\\text{") and s.endswith("}"):
        s = s.split("{", 1)[1][:-1]
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("cfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    without_unit = re.sub(r"\\text\{.*?\}$", "", s).strip()
    if without_unit and without_unit != s:
        s = without_unit
    s = s.replace("^{\\circ}", "").strip().replace("^\\circ", "").strip()
    s = re.sub(r"\{(c|m)?m\}(\^(2|3))?", "", s).strip()
    s = re.sub(r"p\.m\.$", "", s).strip()
    s = re.sub(r"(\d)\s*t$", r"\1", s).strip()
    s = s.replace("\\$", "").replace("$", "").replace("x\\in", "")
    s = s.replace("\\%", "%")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    s = s.replace("\\cdot", "")
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("+\\inity", "\\infty")
    s = s.replace("\\mathbf", "").replace("\\mathrm", "")
    s = re.sub(r"\\mbox\{.*?\}", "", s)
    if "j" in s and "i" not in s:
        s = s.replace("j", "i")
    s = re.sub(r"(?<!\d)(\d+)\.0+([^\d])", r"\1\2", s)  # anchored at the number's start: linear, same result
    s = re.sub(r"(?<!\d)(\d+)\.0+$", r"\1", s)
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    s = _brace_argument("tan", _brace_argument("sqrt", s))
    s = s.replace(" ", "")
    s = _fix_a_slash_b(_fix_fracs(s))
    return re.sub(r"(\\|,|\.)+$", "", s)


# ----- extraction ------------------------------------------------------------------------------
def boxed_contents(text: str) -> list[str]:
    """The content of every closed ``boxed{...}`` of ``text``, in order (an unclosed one gives none)."""
    found = []
    for piece in text.split("boxed{")[1:]:
        depth = 0
        for i, ch in enumerate(piece):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth < 0:
                    # a box followed by '%' keeps its closing brace, as DeepSeek's extraction does
                    found.append(piece[: i + 1] if piece[i + 1: i + 2] == "%" else piece[:i])
                    break
    return found


def extract_answers(text: str) -> list[str]:
    """Every answer DeepSeek's extraction reads in a completion (or a reference solution), stripped."""
    text = str(text)
    if "final answer is $" in text and "$. I hope" in text:
        raw = [text.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip()]
    elif "boxed" in text:
        raw = boxed_contents(text)
    elif "he answer is" in text:
        raw = [text.split("he answer is")[-1].strip()]
    elif program := _program_output(text):
        raw = [program]
    else:
        numbers = _NUMBER_RE.findall(text.replace(",", ""))
        raw = [numbers[-1]] if numbers else []
    answers = []
    for answer in raw[-MAX_BOXES:]:
        answer = answer.strip().split("\n")[0].lstrip(":").rstrip(".").rstrip("/")
        answers.append(strip_string(answer) if len(answer) <= MAX_ANSWER_CHARS else "")
    return answers


def _program_output(text: str) -> str:
    """What the last ````` ```output ````` block holds (a tool-integrated completion), or ``""``."""
    if "```output" not in text:
        return ""
    return text.split("```output")[-1].split("```")[0].strip()


def extract_answer(text: str) -> str:
    """The last answer :func:`extract_answers` reads, or ``""`` (GSM8K, CMATH, MGSM-zh)."""
    answers = extract_answers(text)
    return answers[-1] if answers else ""


def math_answers(question: str, text: str) -> list[str]:
    """A MATH completion's (or reference solution's) answers as items: split at commas when the question
    asks for a list "separated by commas" (items without brackets), and at ``\\text{ and }``."""
    items = []
    for answer in extract_answers(text):
        if "separated by commas" in question and not any(ch in answer for ch in "()[]"):
            items.extend(a.strip() for a in answer.split(","))
        elif _TEXT_AND_RE.search(answer):
            items.extend(a.strip() for a in _TEXT_AND_RE.sub("[SEP]", answer).split("[SEP]"))
        else:
            items.append(answer.strip())
    return items


def rules_for(benchmark: str | None) -> str:
    """``"single"`` (GSM8K, CMATH, MGSM-zh: the last answer) or ``"math"`` (every other benchmark: all boxes)."""
    return "single" if str(benchmark or "").lower() in SINGLE_ANSWER_BENCHMARKS else "math"


def gold_answers(gold: str, rules: str, question: str = "", solution: str | None = None) -> str | list[str]:
    """The gold as DeepSeek reads it: for ``single``, ``gold`` with its commas removed; for ``math``, the
    items of the reference ``solution`` (or of ``\\boxed{gold}`` when there is no solution with a box)."""
    if rules == "single":
        return str(gold).strip().replace(",", "")
    source = solution if isinstance(solution, str) and "boxed" in solution else f"\\boxed{{{gold}}}"
    return math_answers(question, source)


# ----- equality --------------------------------------------------------------------------------
def _float(s: str) -> float | None:
    try:
        return float(s.replace(",", "")) if len(s) <= 400 else None
    except ValueError:
        return None


def _digits(s: str) -> float | None:
    """A number, with ``%`` (or ``\\%``) meaning a hundredth; None when ``s`` is not one."""
    value = _float(s)
    if value is not None or not s.endswith("%"):
        return value
    s = s[:-1]
    s = s[:-1] if s.endswith("\\") else s
    value = _float(s)
    return value / 100 if value is not None else None


def _isclose(a: float, b: float) -> bool:
    try:
        return math.isclose(a, b, abs_tol=PRECISION)
    except (OverflowError, ValueError):
        return False


_symbolic_cache: dict[tuple[str, str], bool] = {}
_symbolic_lock = threading.Lock()
_SYMBOLIC_CACHE_SIZE = 65_536
_budget = threading.local()


def clear_cache() -> None:
    """Forget the cached symbolic verdicts (:func:`grpo_ext.verify.clear_cache` calls this)."""
    with _symbolic_lock:
        _symbolic_cache.clear()


def symbolic_equal(a: str, b: str) -> bool:
    """``simplify(a - b) == 0`` or numeric values within 1e-3, in the sandbox; False when either side is
    refused by the whitelist, cannot be parsed, the check overruns (not cached) or the completion's budget
    already had a check overrun (:func:`grade`: one hostile answer costs one timeout, not one per pair)."""
    if not a or not b or symbolic_rejection(a) is not None or symbolic_rejection(b) is not None:
        return False
    key = (a, b)
    with _symbolic_lock:
        if key in _symbolic_cache:
            return _symbolic_cache[key]
    if getattr(_budget, "overran", False):  # this completion already cost one timeout: no second one
        return False
    from .sandbox import get_pool

    verdict = get_pool().close_symbolically([(a, b)])[0]
    same = verdict == EQUAL
    if verdict not in (EQUAL, "not_equal"):
        _budget.overran = True
    else:
        with _symbolic_lock:
            if len(_symbolic_cache) >= _SYMBOLIC_CACHE_SIZE:
                _symbolic_cache.clear()
            _symbolic_cache[key] = same
    return same


def math_equal(pred: str, ref: str, depth: int = 0) -> bool:
    """DeepSeek's ``math_equal`` for two stripped answers (see the module docstring)."""
    if pred == ref:
        return True
    p, r = _digits(pred), _digits(ref)
    if p is not None and r is not None:  # numbers: the tolerance, the x100 / /100 readings, and nothing else
        return any(_isclose(candidate, p) for candidate in (r / 100, r, r * 100))
    if not pred or depth > 8:
        return False
    pred, ref = pred.strip(), ref.strip()
    if _BRACKETED_RE.match(pred) and _BRACKETED_RE.match(ref):
        p_parts, r_parts = pred[1:-1].split(","), ref[1:-1].split(",")
        if len(p_parts) == len(r_parts) and all(math_equal(x, y, depth + 1) for x, y in zip(p_parts, r_parts)):
            return True
    if pred.startswith(_MATRIX_OPEN) and pred.endswith(_MATRIX_CLOSE) and ref.startswith(_MATRIX_OPEN) \
            and ref.endswith(_MATRIX_CLOSE):
        if _matrices_equal(pred, ref, depth):
            return True
    if pred.count("=") == 1 and ref.count("=") == 1:
        pl, pr = (x.strip() for x in pred.split("="))
        rl, rr = (x.strip() for x in ref.split("="))
        p_diff, r_diff = f"{pl} - ({pr})", f"{rl} - ({rr})"
        if symbolic_equal(p_diff, r_diff) or symbolic_equal(f"-({p_diff})", r_diff):
            return True
    elif pred.count("=") == 1 and len(pred.split("=")[0].strip()) <= 2 and "=" not in ref:
        if math_equal(pred.split("=")[1], ref, depth + 1):
            return True
    elif ref.count("=") == 1 and len(ref.split("=")[0].strip()) <= 2 and "=" not in pred:
        if math_equal(pred, ref.split("=")[1], depth + 1):
            return True
    return symbolic_equal(pred, ref)


def _matrices_equal(pred: str, ref: str, depth: int) -> bool:
    width = len(_MATRIX_OPEN[0])  # pmatrix and bmatrix have the same length
    close = len(_MATRIX_CLOSE[0])
    p_rows = [row.strip() for row in pred[width:-close].split("\\\\") if row.strip()]
    r_rows = [row.strip() for row in ref[width:-close].split("\\\\") if row.strip()]
    if len(p_rows) != len(r_rows):
        return False
    for p_row, r_row in zip(p_rows, r_rows):
        p_cells, r_cells = p_row.split("&"), r_row.split("&")
        if len(p_cells) != len(r_cells) or not all(math_equal(x, y, depth + 1) for x, y in zip(p_cells, r_cells)):
            return False
    return True


def equal(pred: str | list[str], gold: str | list[str]) -> bool:
    """DeepSeek's ``is_correct``: for lists, every item on each side equals some item on the other; for
    strings, ``\\cup`` splits both into such lists, then numbers within 1e-3, equal strings, :func:`math_equal`."""
    if isinstance(pred, list) and isinstance(gold, list):
        if len(pred) > MAX_ITEMS or len(gold) > MAX_ITEMS:
            return False
        pred_hit, gold_hit = set(), set()
        for i, p in enumerate(pred):
            for j, g in enumerate(gold):
                if i in pred_hit and j in gold_hit:  # the pair cannot change the coverage
                    continue
                if equal(p, g):
                    pred_hit.add(i)
                    gold_hit.add(j)
        return len(pred_hit) == len(pred) and len(gold_hit) == len(gold)
    pred, gold = str(pred), str(gold)
    if "\\cup" in pred and "\\cup" in gold:
        return equal(pred.split("\\cup"), gold.split("\\cup"))
    p, g = _float(pred), _float(gold)
    if p is not None and g is not None and abs(p - g) < PRECISION:
        return True
    return (bool(gold) and pred == gold) or math_equal(pred, gold)


def _distinct(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def grade(completion: str, gold: str, *, rules: str = "math", question: str = "",
          solution: str | None = None) -> dict:
    """One completion graded by DeepSeek's rules: ``{"correct": bool, "answer": str, "read": ...}``, where
    ``answer`` is what was read as text (``""`` when nothing was: DeepSeek's no-answer) and ``read`` the
    same as :func:`equal` compares it (a string, or MATH's list of items)."""
    if rules not in ("single", "math"):
        raise ValueError(f"rules must be 'single' or 'math', got {rules!r}")
    _budget.overran = False
    try:
        return _grade(completion, gold, rules, question, solution)
    finally:
        _budget.overran = False


def _grade(completion: str, gold: str, rules: str, question: str, solution: str | None) -> dict:
    golds = gold_answers(gold, rules, question, solution)
    if rules == "single":
        answer = extract_answer(completion)
        return {"correct": equal(answer, golds), "answer": answer, "read": answer}
    golds = _distinct(golds)
    predictions = _distinct(math_answers(question, completion))
    predictions = predictions[-len(golds):] if golds else predictions  # boxes that are not the answer come first
    return {"correct": equal(predictions, golds), "answer": ", ".join(predictions), "read": predictions}


def same_answer(a: str | list[str], b: str | list[str]) -> bool:
    """Whether two answers :func:`grade` read (its ``"read"``) are one answer by DeepSeek's equality (maj@k)."""
    if not a or not b:
        return False
    _budget.overran = False
    try:
        return equal(a, b)
    finally:
        _budget.overran = False


__all__ = ["PRECISION", "SINGLE_ANSWER_BENCHMARKS", "boxed_contents", "equal", "extract_answer", "extract_answers",
           "gold_answers", "grade", "math_answers", "math_equal", "rules_for", "same_answer", "strip_string",
           "symbolic_equal"]
