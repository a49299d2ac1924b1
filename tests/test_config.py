"""GRPOConfig: the paper preset and the errors raised at config time."""

import pytest
import trl

from grpo_ext import GRPOConfig
from grpo_ext._compat import check_trl_version

CPU = dict(use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none")


def test_config_is_a_trl_config(tmp_path):
    assert isinstance(GRPOConfig(output_dir=str(tmp_path), **CPU), trl.GRPOConfig)


def test_kl_estimator_defaults_to_k3(tmp_path):
    assert GRPOConfig(output_dir=str(tmp_path), **CPU).kl_estimator == "k3"


def test_paper_preset_has_deepseekmath_rl_settings(tmp_path):
    cfg = GRPOConfig.from_paper(output_dir=str(tmp_path), **CPU)
    assert cfg.learning_rate == 1e-6
    assert cfg.beta == 0.04
    assert cfg.num_generations == 64
    assert cfg.max_completion_length == 1024
    assert cfg.num_iterations == 1
    assert cfg.kl_estimator == "k3"
    assert cfg.loss_type == "grpo"
    assert cfg.scale_rewards == "group"


def test_paper_preset_batch_is_1024_completions_per_update(tmp_path):
    cfg = GRPOConfig.from_paper(output_dir=str(tmp_path), **CPU)
    assert cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps == 1024
    assert cfg.generation_batch_size == 1024  # one exploration stage = one optimizer step


def test_paper_preset_spreads_the_batch_over_processes(tmp_path):
    cfg = GRPOConfig.from_paper(output_dir=str(tmp_path), num_processes=8, **CPU)
    assert cfg.gradient_accumulation_steps == 8  # 16 x 8 processes x 8 = 1024


def test_paper_preset_accepts_overrides(tmp_path):
    cfg = GRPOConfig.from_paper(output_dir=str(tmp_path), learning_rate=3e-6, **CPU)
    assert cfg.learning_rate == 3e-6


def test_batch_not_divisible_by_num_generations_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"multiple of num_generations \(4\)"):
        GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=6, num_generations=4, **CPU)


def test_single_generation_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"num_generations \(1\) must be at least 2"):
        GRPOConfig(output_dir=str(tmp_path), num_generations=1, per_device_train_batch_size=4, **CPU)


def test_unknown_kl_estimator_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        GRPOConfig(output_dir=str(tmp_path), kl_estimator="k5", **CPU)


def test_negative_beta_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"beta \(-0.1\) must be >= 0"):
        GRPOConfig(output_dir=str(tmp_path), beta=-0.1, **CPU)


def test_unsupported_trl_version_fails_with_the_supported_range():
    with pytest.raises(ImportError, match=r"trl>=1.16.0,<1.17.0"):
        check_trl_version("1.17.0")


def test_supported_trl_version_passes():
    check_trl_version("1.16.3")


def test_paper_preset_uses_eq3_kl_without_importance_weighting(tmp_path):
    # TRL defaults to DeepSeek-V3.2's bias-corrected KL; DeepSeekMath's eq. 3 has k3 as it is
    cpu = dict(use_cpu=True, bf16=False)
    assert GRPOConfig(output_dir=str(tmp_path), **cpu).use_bias_correction_kl is True
    assert GRPOConfig.from_paper(output_dir=str(tmp_path), **cpu).use_bias_correction_kl is False


@pytest.mark.parametrize("recipe", ["outcome", "process", "iterative"])
def test_paper_recipes_use_eq3_kl_without_importance_weighting(recipe):
    import pathlib

    import yaml

    path = pathlib.Path(__file__).parents[1] / "recipes" / "deepseek-math-7b-instruct" / "grpo" / f"{recipe}.yaml"
    settings = yaml.safe_load(path.read_text())
    assert settings["kl_estimator"] == "k3" and settings["use_bias_correction_kl"] is False


def test_skip_with_bnpo_over_several_micro_batches_warns(tmp_path):
    with pytest.warns(UserWarning, match="bnpo divides each micro-batch by its own tokens"):
        GRPOConfig(output_dir=str(tmp_path), zero_variance_groups="skip", loss_type="bnpo", use_cpu=True, bf16=False,
                   per_device_train_batch_size=4, num_generations=4, steps_per_generation=2,
                   gradient_accumulation_steps=2)


def test_skip_with_more_micro_batches_per_generation_than_per_step_warns(tmp_path):
    with pytest.warns(UserWarning, match=r"steps_per_generation \(4\) > gradient_accumulation_steps \(2\)"):
        GRPOConfig(output_dir=str(tmp_path), zero_variance_groups="skip", use_cpu=True, bf16=False,
                   per_device_train_batch_size=4, num_generations=4, steps_per_generation=4,
                   gradient_accumulation_steps=2)


def test_unset_precision_runs_in_float32_on_the_cpu_of_a_machine_without_accelerator(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: TRL's bf16 default applies")
    args = GRPOConfig(output_dir=str(tmp_path))  # the README's Quick start sets neither bf16 nor use_cpu
    assert args.bf16 is False and args.use_cpu is True


def test_explicit_precision_is_kept(tmp_path):
    args = GRPOConfig(output_dir=str(tmp_path), bf16=False, use_cpu=False)
    assert args.bf16 is False and args.use_cpu is False


def test_default_config_raises_no_future_warning(tmp_path):
    # transformers 5.24 renamed gradient_checkpointing; TRL's default still sets the old name, which warned
    import warnings

    from grpo_ext import GRPOConfig

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        config = GRPOConfig(output_dir=str(tmp_path))
    assert config.activation_checkpointing is True and config.gradient_checkpointing is True


def test_gradient_checkpointing_false_carries_over_to_the_new_name(tmp_path):
    from grpo_ext import GRPOConfig

    config = GRPOConfig(output_dir=str(tmp_path), gradient_checkpointing=False)
    assert config.activation_checkpointing is False
