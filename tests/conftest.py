"""Shared fixtures: a tiny model and character tokenizer built locally (no network), tiny datasets."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
from datasets import Dataset

from grpo_ext.tiny import build_char_tokenizer, build_tiny_model


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """A randomly initialised ~0.7M-parameter Qwen3 model and its tokenizer, saved to a local folder."""
    path = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(tiny_tokenizer, seed=0).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def warm_policy_dir(tmp_path_factory, tiny_tokenizer):
    """The tiny model after a short supervised warm-up on 1-digit addition: its samples are right and wrong."""
    from trl import SFTConfig, SFTTrainer

    from grpo_ext.tiny import build_tiny_model

    path = str(tmp_path_factory.mktemp("warm-policy"))
    rows = [{"prompt": f"{a}+{b}=", "completion": str(a + b)} for a in range(10) for b in range(10)]
    args = SFTConfig(output_dir=path + "/run", max_steps=120, per_device_train_batch_size=50, learning_rate=2e-3,
                     lr_scheduler_type="constant", bf16=False, use_cpu=True, report_to="none", save_strategy="no",
                     disable_tqdm=True, gradient_checkpointing=False, logging_steps=1000, seed=0)
    trainer = SFTTrainer(model=build_tiny_model(tiny_tokenizer, seed=0), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer)
    trainer.train()
    trainer.model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def addition_dataset():
    rows = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10)]
    return Dataset.from_list(rows)


def digit_share_reward(completions, **kwargs):
    """A graded reward that varies within groups even for a random model: share of digit characters."""
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def assert_same_parameters(trainer, other):
    """Every parameter of ``trainer``'s model equals ``other``'s, to float tolerance (named on failure)."""
    import torch

    for (name, p), q in zip(trainer.model.named_parameters(), other.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def cpu_grpo_args(output_dir, config_cls=None, **overrides):
    """A GRPOConfig for a few CPU steps on the tiny model."""
    from grpo_ext import GRPOConfig

    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=4,
        max_steps=3,
        learning_rate=1e-3,
        beta=0.04,
        loss_type="grpo",
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
        model_init_kwargs={"dtype": "float32"},
    )
    settings.update(overrides)
    return (config_cls or GRPOConfig)(**settings)


def run_two_processes(model_dir, out_dir, mode="stock"):
    """Run tests/_two_process_check.py under torch.distributed.run with 2 CPU processes; its RESULT dict."""
    import json
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "_two_process_check.py")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", script,
                          model_dir, str(out_dir), mode], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads(line[len("RESULT "):])
    assert result["processes"] == 2
    return result
