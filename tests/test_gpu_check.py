"""benchmarks/gpu_check.py in its CPU mode: every part but the GPU itself runs and reports."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path_factory.mktemp("gpu-check") / "gpu_check.json"
    results = gpu_check.main(["--device", "cpu", "--tiny", "--steps", "2", "--out", str(out)])
    return results, json.loads(out.read_text())


def test_every_training_part_ran_and_split_its_step(check):
    results, _ = check
    runs = [name for name in results if name not in ("environment", "ratios", "eval")]
    assert len(runs) == 6
    for name in runs:
        assert "skipped" not in results[name], (name, results[name].get("trace"))
        phases = results[name]["phases_s"]
        assert phases["generation"] > 0 and phases["train"] > 0 and phases["step"] >= phases["generation"]


def test_the_ratios_against_stock_trl_are_reported(check):
    results, _ = check
    assert all(value is not None and value > 0 for value in results["ratios"].values())


def test_each_run_has_its_memory_plan(check):
    results, _ = check
    assert all(results[n]["planned_gb"] > 0 for n in results if n not in ("environment", "ratios", "eval"))


def test_the_evaluation_part_ran_on_the_requested_device(check):
    results, _ = check
    evaluation = results["eval"]
    if "skipped" in evaluation and "GSM8K test file" in evaluation["skipped"]:
        pytest.skip(evaluation["skipped"])
    assert evaluation["ran_on"] == "cpu" and evaluation["questions"] == 8 and evaluation["questions_per_s"] > 0


def test_a_part_that_fails_is_reported_not_raised():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    results = {}

    def broken():
        raise ImportError("No module named 'vllm'")

    gpu_check.attempt(results, "vllm part", broken)
    assert results["vllm part"]["skipped"] == "ImportError: No module named 'vllm'"


def test_the_json_holds_the_table(check):
    results, saved = check
    assert saved["environment"]["torch"] == results["environment"]["torch"] and "ratios" in saved
