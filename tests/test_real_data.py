"""Every loader on its real benchmark file (../shared/data, offline copies in the Hub formats)."""

import json
from pathlib import Path

import pytest

from grpo_ext.data import load_math_dataset
from grpo_ext.rewards import accuracy_reward
from grpo_ext.verify import are_equivalent

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"the real benchmark files are not at {DATA} (a fresh clone)")

FILES = {("gsm8k", "train"): ("gsm8k/train.jsonl", 7473), ("gsm8k", "test"): ("gsm8k/test.jsonl", 1319),
         ("math500", "test"): ("math500/test.jsonl", 500), ("cmath", "test"): ("cmath/test.jsonl", 1098)}


def raw(path):
    return [json.loads(line) for line in (DATA / path).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name, split", list(FILES), ids=[f"{n}-{s}" for n, s in FILES])
def test_loader_reads_every_row_with_a_gold_answer(name, split):
    path, rows = FILES[(name, split)]
    ds = load_math_dataset(name, split, path=str(DATA / path))
    assert len(ds) == rows
    assert all(isinstance(a, str) and a.strip() for a in ds["answer"])
    assert set(ds["source"]) == {name}


@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_worked_answers_score_one_against_the_loaded_gold(split):
    path, _ = FILES[("gsm8k", split)]
    ds = load_math_dataset("gsm8k", split, path=str(DATA / path))
    assert accuracy_reward([r["answer"] for r in raw(path)], answer=ds["answer"]) == [1.0] * len(ds)


def test_math500_solutions_score_one_against_the_loaded_gold():
    ds = load_math_dataset("math500", "test", path=str(DATA / "math500/test.jsonl"))
    assert accuracy_reward([r["solution"] for r in raw("math500/test.jsonl")], answer=ds["answer"]) == [1.0] * 500


def test_every_cmath_gold_is_a_parseable_answer():
    ds = load_math_dataset("cmath", "test", path=str(DATA / "cmath/test.jsonl"))
    assert all(are_equivalent(ds["answer"], ds["answer"]))  # an unparseable gold is never equivalent, even to itself
