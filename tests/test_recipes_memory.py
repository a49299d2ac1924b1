"""The memory plan's arithmetic by hand, the 7B LoRA / QLoRA recipes' plans and smoke runs, and LoRA and
QLoRA under DeepSpeed ZeRO-3 with 2 CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_ext.memory import GiB, Setup, Shape, load_shape, plan

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "deepseek-math-7b-instruct" / "grpo"
DATA = ROOT.parent / "shared" / "data"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/grpo-ext-torch-ext"))}

SMALL = Shape(vocab=100, hidden=8, layers=2, heads=2, kv_heads=1, intermediate=16)


def test_parameters_of_a_small_config_by_hand():
    # per layer: q 8x8 + k 8x4 + v 8x4 + o 8x8 = 192; MLP 3 x 8 x 16 = 384 -> 576; 2 layers 1,152
    # embeddings and untied output 2 x 100 x 8 = 1,600; norms (2 x 2 + 1) x 8 = 40
    assert SMALL.linear_params() == 1152 and SMALL.other_params() == 1640 and SMALL.params() == 2792


def test_lora_parameters_by_hand():
    # r (in + out) on q (8+8) and v (8+4), 2 layers, r = 2: 2 x 2 x (16 + 12) = 112
    assert SMALL.lora_params(2, ["q_proj", "v_proj"]) == 112


def test_full_fine_tuning_plan_by_hand():
    p = plan(SMALL, Setup(processes=1, zero_stage=0, beta=0.04, micro_batch=2, prompt_length=3, completion_length=5,
                          gradient_checkpointing=True, generation_batch=2))
    n = 2792
    assert p.states == {"policy weights": 2 * n, "reference weights": 2 * n, "gradients": 2 * n, "optimizer": 4 * n}
    s = 3 + 5
    assert p.training == {"activations": 2 * 2 * s * 8 * 2 + 34 * 2 * s * 8, "logits": 4 * 2 * 5 * 100}
    assert p.generation == {"KV cache": 2 * 2 * 1 * 4 * 2 * s * 2}  # 2 L k d w s x 2 sequences
    assert p.total == 10 * n + max(sum(p.generation.values()), sum(p.training.values()))


def test_zero_stages_shard_what_they_shard():
    base = dict(processes=4, beta=0.0, micro_batch=1, prompt_length=1, completion_length=1)
    two = plan(SMALL, Setup(zero_stage=2, **base))
    three = plan(SMALL, Setup(zero_stage=3, **base))
    n = 2792
    assert two.states == {"policy weights": 2 * n, "gradients": 2 * n / 4, "optimizer": 12 * n / 4}
    assert three.states == {"policy weights": 2 * n / 4, "gradients": 2 * n / 4, "optimizer": 12 * n / 4}
    assert three.generation["gathered weights"] == 2 * n * 3 / 4  # ds3_gather_for_generation


def test_peft_needs_no_reference_copy_and_4bit_shrinks_the_linear_weights():
    p = plan(SMALL, Setup(peft=True, lora_r=2, lora_targets=["q_proj", "v_proj"], load_in_4bit=True, beta=0.04))
    assert "reference weights" not in p.states
    assert p.states["policy weights"] == 1152 * (0.5 + 4 / 64) + 1640 * 2
    assert p.states["adapter weights"] == 112 * 2 and p.states["optimizer"] == 112 * 4


def test_the_verdict_names_the_part_to_lower():
    setup = Setup(micro_batch=64, prompt_length=512, completion_length=4096, gradient_checkpointing=False)
    big = Shape(vocab=32000, hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008)
    assert "gradient_checkpointing: true" in plan(big, setup).verdict(80, setup)
    assert plan(SMALL, Setup()).verdict(24, Setup()).startswith("fits in 24 GB")


@pytest.fixture(scope="module")
def ds7b_config(tmp_path_factory):
    """DeepSeekMath-Instruct 7B's published config.json (its shape only; no weights)."""
    path = tmp_path_factory.mktemp("ds7b")
    (path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 102400, "hidden_size": 4096,
        "intermediate_size": 11008, "num_hidden_layers": 30, "num_attention_heads": 32, "num_key_value_heads": 32,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "tie_word_embeddings": False}))
    return str(path)


def test_the_7b_config_has_its_published_size(ds7b_config):
    assert round(load_shape(ds7b_config).params() / 1e9, 2) == 6.91


def test_a_model_without_a_config_here_is_said_so():
    with pytest.raises(ValueError, match="nothing is downloaded"):
        load_shape("some-org/not-cached-anywhere")


@pytest.mark.parametrize("recipe, fits", [("lora-zero2", {24: False, 48: True, 80: True}),
                                          ("lora-zero3", {24: False, 48: True, 80: True}),
                                          ("qlora-zero3", {24: True, 48: True, 80: True})])
def test_new_recipes_print_their_plan_and_verdicts(recipe, fits, ds7b_config, capsys):
    from grpo_ext.cli import main

    assert main(["train", str(RECIPES / f"{recipe}.yaml"), "--dry_run", "true", "--model_name_or_path", ds7b_config]) == 0
    out = capsys.readouterr().out
    assert "recipe OK" in out and "memory plan per GPU: 6.91B parameters" in out
    for gb, ok in fits.items():
        line = next(line for line in out.splitlines() if f"in {gb} GB" in line and ("verdict" in line or "on " in line))
        assert line.split(": ", 1)[1].startswith("fits" if ok else "does not fit"), line


def cli(*args, launcher=None, timeout=600):
    cmd = [*(launcher or [sys.executable]), "-m", "grpo_ext.cli", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=str(ROOT))
    return out.returncode, out.stdout + out.stderr


@pytest.mark.skipif(not DATA.is_dir(), reason=f"the real benchmark files are not at {DATA} (a fresh clone)")
@pytest.mark.parametrize("recipe", ["lora-zero2", "lora-zero3", "qlora-zero3"])
def test_new_recipes_smoke_run_with_a_local_tiny_model(recipe, tiny_model_dir, tmp_path):
    if recipe.startswith("qlora"):
        pytest.importorskip("bitsandbytes")
    code, out = cli("train", str(RECIPES / f"{recipe}.yaml"), "--smoke", "true", "--model_name_or_path", tiny_model_dir,
                    "--dataset_name", "gsm8k", "--dataset_path", f"gsm8k={DATA / 'gsm8k' / 'train.jsonl'}",
                    "--template", "text", "--output_dir", str(tmp_path), "--lora_target_modules", "q_proj", "v_proj",
                    "--bnb_4bit_quant_storage", "float32")
    assert code == 0, out[-4000:]
    assert "trained 2 steps" in out and (tmp_path / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("quantised", [False, True], ids=["lora", "qlora"])
def test_lora_and_qlora_train_under_zero3_with_two_cpu_processes(quantised, tiny_model_dir, tmp_path):
    pytest.importorskip("deepspeed")
    if quantised:
        pytest.importorskip("bitsandbytes")
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(ROOT / "recipes" / "accelerate_configs" / "zero3_cpu.yaml"), "--num_processes", "2"]
    extra = ["--load_in_4bit", "true", "--bnb_4bit_quant_storage", "float32"] if quantised else []
    code, out = cli("train", str(ROOT / "recipes" / "tiny" / "grpo.yaml"), "--model_name_or_path", tiny_model_dir,
                    "--output_dir", str(tmp_path), "--max_steps", "2", "--synthetic_size", "64", "--logging_steps", "1",
                    "--save_strategy", "no", "--per_device_train_batch_size", "8", "--num_generations", "4",
                    "--use_peft", "true", "--lora_target_modules", "q_proj", "v_proj", *extra, launcher=launcher)
    assert code == 0, out[-4000:]
    assert "DeepSpeed ZeRO-3" in out and "2 process(es)" in out and "trained 2 steps" in out
    if quantised:
        assert "4-bit linear layers" in out
    assert (tmp_path / "adapter_model.safetensors").exists()
