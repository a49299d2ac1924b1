"""The analytic memory model of benchmarks/grpo_vs_ppo.py against numbers worked out by hand."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "grpo_vs_ppo", Path(__file__).resolve().parents[1] / "benchmarks" / "grpo_vs_ppo.py")
cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cost)


def test_a_trained_bf16_parameter_costs_16_bytes_and_a_frozen_one_2():
    # 2 (bf16 weight) + 2 (bf16 gradient) + 4 (fp32 master) + 4 + 4 (Adam moments)
    assert cost.bytes_per_param(True) == 16 and cost.bytes_per_param(False) == 2


def test_grpo_7b_on_one_gpu_holds_policy_reference_and_reward():
    # 7e9 * (16 + 2 + 2) = 140e9 bytes
    assert cost.bytes_per_gpu(7_000_000_000, "grpo")["total"] == pytest.approx(140e9)


def test_ppo_adds_a_trained_value_model():
    # 7e9 * (16 + 16 + 2 + 2) = 252e9 bytes
    assert cost.bytes_per_gpu(7_000_000_000, "ppo")["total"] == pytest.approx(252e9)


def test_zero3_over_8_gpus_divides_every_model_state_by_8():
    assert cost.bytes_per_gpu(7_000_000_000, "ppo", gpus=8, zero3=True)["total"] == pytest.approx(252e9 / 8)


def test_fp32_adam_keeps_two_moments_per_trained_parameter():
    # the figure the benchmark checks against the optimizer state it measures
    assert cost.bytes_per_param(True, weight_bytes=4) == 16 and cost.adam_state_bytes(1000) == 8000
