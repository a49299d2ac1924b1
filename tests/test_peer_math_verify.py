"""math-verify's own test suite, read from ../shared/peers/math-verify, run through accuracy_reward.

The plain ``gold, pred, expected`` triples of its three test files (parsed with ``ast``, never
imported) must all agree with ``accuracy_reward(completions=[pred], answer=[gold])``, except where
math-verify's label records a limit of its own extraction that grpo-ext deliberately goes beyond;
each such case is named below with the reason.
"""

import ast
import logging
from pathlib import Path

import pytest

from grpo_ext.rewards import accuracy_reward

PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers" / "math-verify"

#: (gold, pred) -> why grpo-ext disagrees with math-verify's label on purpose.
BEYOND_MATH_VERIFY = {
    ("$9$", "Answer $ \n 9 \n $"): "math-verify reads no math environment that spans lines; the answer 9 is stated",
    ("$9$", "Answer \\( \n 9 \n \\)"): "math-verify reads no math environment that spans lines; the answer 9 is stated",
}


def plain_triples():
    cases = []
    for path in sorted(PEERS.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize" and len(dec.args) >= 2):
                    continue
                try:
                    names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(",")]
                    rows = ast.literal_eval(dec.args[1])
                except (ValueError, SyntaxError):
                    continue
                if names == ["gold", "pred", "expected"]:
                    cases += [(g, p, bool(e)) for g, p, e in rows if isinstance(e, (bool, int, float))]
    return cases


pytestmark = pytest.mark.skipif(not PEERS.is_dir(), reason=f"math-verify's test files are not at {PEERS} (a fresh clone)")


@pytest.fixture(scope="module")
def verdicts():
    cases = plain_triples()
    logging.disable(logging.WARNING)
    try:
        rewards = accuracy_reward([p for _, p, _ in cases], answer=[g for g, _, _ in cases])
    finally:
        logging.disable(logging.NOTSET)
    return cases, rewards


def test_the_suite_holds_its_230_plain_triples(verdicts):
    cases, _ = verdicts
    assert len(cases) == 230  # the commit in ../shared/peers/math-verify/COMMIT


def test_every_plain_triple_agrees_but_the_named_ones(verdicts):
    cases, rewards = verdicts
    disagree = [(g, p, e) for (g, p, e), r in zip(cases, rewards) if (r == 1.0) != e]
    assert [(g, p) for g, p, _ in disagree if (g, p) not in BEYOND_MATH_VERIFY] == []
    assert len(cases) - len(disagree) >= 228


def test_the_named_exceptions_are_still_in_the_suite_and_still_differ(verdicts):
    cases, rewards = verdicts
    by_pair = {(g, p): (e, r) for (g, p, e), r in zip(cases, rewards)}
    for pair in BEYOND_MATH_VERIFY:
        expected, reward = by_pair[pair]
        assert (reward == 1.0) != expected
