"""Offline synthetic arithmetic tasks for demos and tests, in English and Chinese forms.

A :class:`Problem` is a start value and a chain of operations (``+``, ``-``, ``*``). The same
problems render as:

- ``style="word"``: a GSM8K-style word problem with a step-by-step solution (one checkable
  equation per line) ending in ``#### N`` (English) or a CMATH-style one ending in ``答案是 N``
  (Chinese);
- ``style="compact"``: ``12+34=`` (English) or ``12加34等于`` (Chinese), the form a tiny
  character-level model learns in minutes on a CPU (the demo);
- ``style="steps"``: the compact question, answered step by step with one equation per line
  (``12+34+5=`` -> ``12+34=46\n46+5=51``): the multi-step form of the process-supervision demo.

Everything is generated from a seed: the same seed gives the same problems in both languages.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from datasets import Dataset

from .templates import format_prompt

OPS = ("+", "-", "*")

_EN_NAMES = ("Tom", "Anna", "Lily", "Sam", "Ben", "Mia")
_ZH_NAMES = ("小明", "小红", "小华")
_ITEMS = (("apples", "苹果"), ("candies", "糖"), ("stickers", "贴纸"))
_ZH_COMPACT = {"+": "加", "-": "减", "*": "乘"}


@dataclass
class Problem:
    """``start``, then each ``(op, operand)`` applied in turn."""

    start: int
    ops: list[tuple[str, int]] = field(default_factory=list)
    name: int = 0  #: index into the name lists (word style)
    item: int = 0  #: index into the item list (word style)

    def values(self) -> list[int]:
        """The running value after the start and after each operation."""
        out = [self.start]
        for op, b in self.ops:
            out.append(_apply(out[-1], op, b))
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]

    def equations(self) -> list[str]:
        """One checkable equation per step: ``"5 + 3 = 8"``."""
        vals = self.values()
        return [f"{vals[i]} {op} {b} = {vals[i + 1]}" for i, (op, b) in enumerate(self.ops)]


def _apply(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unknown operation {op!r}; known: {list(OPS)}")


def generate_problems(
    n: int,
    seed: int = 0,
    num_steps: int | tuple[int, int] = (1, 3),
    operand_range: tuple[int, int] = (1, 20),
    ops: tuple[str, ...] = OPS,
) -> list[Problem]:
    """``n`` random problems; results never go negative (a subtraction is capped at the running value).

    Args:
        num_steps: operations per problem, fixed or an inclusive (min, max) range.
        operand_range: inclusive range of the start value and of every operand.
        ops: the operations to draw from; ``*`` uses operands 2..5 to keep numbers readable.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    lo_steps, hi_steps = (num_steps, num_steps) if isinstance(num_steps, int) else num_steps
    if lo_steps < 1 or hi_steps < lo_steps:
        raise ValueError(f"num_steps must be >= 1 (or an increasing range), got {num_steps}")
    lo, hi = operand_range
    if lo < 0 or hi < lo:
        raise ValueError(f"operand_range must be a non-negative increasing pair, got {operand_range}")
    unknown = set(ops) - set(OPS)
    if unknown or not ops:
        raise ValueError(f"ops must be a non-empty subset of {list(OPS)}, got {list(ops)}")
    rng = random.Random(seed)
    problems = []
    for _ in range(n):
        value = rng.randint(lo, hi)
        p = Problem(start=value, name=rng.randrange(len(_ZH_NAMES)), item=rng.randrange(len(_ITEMS)))
        for _ in range(rng.randint(lo_steps, hi_steps)):
            op = rng.choice(ops)
            if op == "-" and value == 0:
                op = "+"
            b = rng.randint(2, 5) if op == "*" else rng.randint(lo, hi)
            if op == "-":
                b = min(b, value)
            p.ops.append((op, b))
            value = _apply(value, op, b)
        problems.append(p)
    return problems


# per language: names, item index in _ITEMS, sentence joiner, phrases, final-answer line
_WORD_FORMS = {
    "en": {
        "names": _EN_NAMES, "item": 0, "join": " ",
        "start": "{name} has {n} {item}.",
        "+": "Then {name} gets {b} more {item}.",
        "-": "Then {name} gives away {b} {item}.",
        "*": "Then the number of {item} becomes {b} times as many.",
        "question": "How many {item} does {name} have now?",
        "final": "#### {answer}",
    },
    "zh": {
        "names": _ZH_NAMES, "item": 1, "join": "",
        "start": "{name}有{n}个{item}。",
        "+": "他又得到了{b}个。",
        "-": "他送出{b}个。",
        "*": "然后{item}变成原来的{b}倍。",
        "question": "{name}现在有多少个{item}？",
        "final": "答案是 {answer}",
    },
}


def _word(p: Problem, language: str) -> tuple[str, str]:
    form = _WORD_FORMS[language]
    name, item = form["names"][p.name % len(form["names"])], _ITEMS[p.item][form["item"]]
    sentences = [form["start"].format(name=name, n=p.start, item=item)]
    sentences += [form[op].format(name=name, b=b, item=item) for op, b in p.ops]
    sentences.append(form["question"].format(name=name, item=item))
    solution = "\n".join(p.equations() + [form["final"].format(answer=p.answer)])
    return form["join"].join(sentences), solution


def _compact(p: Problem, language: str) -> tuple[str, str]:
    # Operations apply left to right: a product after a sum gets its prefix in parentheses
    # ("(12+34)*2="), so the usual precedence reads the question the same way.
    names = _ZH_COMPACT if language == "zh" else {op: op for op in OPS}
    body, summed = str(p.start), False
    for op, b in p.ops:
        if op == "*" and summed:
            body, summed = f"({body})", False
        body += f"{names[op]}{b}"
        summed = summed or op in "+-"
    return body + ("等于" if language == "zh" else "="), str(p.answer)


def _steps(p: Problem, language: str) -> tuple[str, str]:
    question, _ = _compact(p, language)
    vals = p.values()
    return question, "\n".join(f"{vals[i]}{op}{b}={vals[i + 1]}" for i, (op, b) in enumerate(p.ops))


STYLES = {"word": _word, "compact": _compact, "steps": _steps}


def render(problem: Problem, language: str = "en", style: str = "word") -> tuple[str, str]:
    """(question, solution) of one problem; in the compact style the solution is the answer."""
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, got {style!r}")
    return STYLES[style](problem, language)


def to_dataset(problems: list[Problem], language: str = "en", style: str = "word", template: str = "raw") -> Dataset:
    """A dataset with ``prompt``, ``answer``, ``source``, ``question``, ``solution``, ``num_steps``."""
    rows = []
    for i, p in enumerate(problems):
        question, solution = render(p, language, style)
        rows.append({
            "prompt": format_prompt(question, template, language),
            "answer": str(p.answer),
            "source": f"synthetic_{language}",
            "question": question,
            "solution": solution,
            "num_steps": len(p.ops),
            "problem_id": i,
        })
    return Dataset.from_list(rows)


def synthetic_dataset(
    n: int,
    language: str = "en",
    style: str = "word",
    seed: int = 0,
    template: str = "raw",
    **difficulty,
) -> Dataset:
    """``n`` generated problems rendered in one language; ``difficulty`` goes to :func:`generate_problems`."""
    return to_dataset(generate_problems(n, seed=seed, **difficulty), language, style, template)


_EQUATION_RE = re.compile(r"^\s*(-?\d{1,12})\s*([-+*])\s*(-?\d{1,12})\s*=\s*(-?\d{1,24})\s*$")


def parse_step(line: str) -> tuple[int, str, int, int] | None:
    """``(a, op, b, c)`` of a solution line ``"a op b = c"``; None if the line is no such equation."""
    m = _EQUATION_RE.match(line)
    if not m:
        return None
    return int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))


def check_step(line: str, gold: tuple[int, str, int, int] | None = None) -> bool | None:
    """Whether a solution line ``"a op b = c"`` is right; None if it is no equation.

    Without ``gold`` a step is right when its arithmetic is. With ``gold`` (the reference solution's
    equation at the same position, :func:`parse_step`) it must also be that step: the same operation
    on the same operands (either order for ``+`` and ``*``), so a true but irrelevant equation such
    as ``1+1=2`` earns nothing and a step that continues from an earlier mistake counts as wrong.
    """
    step = parse_step(line)
    if step is None:
        return None
    a, op, b, c = step
    if _apply(a, op, b) != c:
        return False
    if gold is None:
        return True
    ga, gop, gb, _ = gold
    return op == gop and ((a, b) == (ga, gb) or (op in "+*" and (b, a) == (ga, gb)))
