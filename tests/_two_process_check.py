"""Run under `accelerate launch --num_processes 2 --cpu`: grpo_ext and stock TRL must train alike.

Rewards are gathered across processes before grouping and each process keeps its slice of the
advantages; a slicing mistake shows up as different losses and parameters.
"""

import json
import sys

import torch
import trl
from datasets import Dataset

from grpo_ext import GRPOConfig, GRPOTrainer


def digit_share_reward(completions, **kwargs):
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def run(cls, config_cls, model_dir, out):
    args = config_cls(output_dir=out, per_device_train_batch_size=4, num_generations=4, max_completion_length=4,
                      max_steps=3, learning_rate=1e-3, beta=0.04, loss_type="grpo", bf16=False,
                      gradient_checkpointing=False, use_cpu=True, report_to="none", logging_steps=1,
                      save_strategy="no", seed=0, disable_tqdm=True, model_init_kwargs={"dtype": "float32"})
    data = Dataset.from_list([{"prompt": f"{a}+{b}="} for a in range(10) for b in range(10)])
    trainer = cls(model=model_dir, reward_funcs=digit_share_reward, args=args, train_dataset=data)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return trainer, losses


if __name__ == "__main__":
    model_dir, out = sys.argv[1], sys.argv[2]
    ours, ours_losses = run(GRPOTrainer, GRPOConfig, model_dir, out + "/ours")
    stock, stock_losses = run(trl.GRPOTrainer, trl.GRPOConfig, model_dir, out + "/trl")
    same = all(torch.allclose(p, q) for p, q in zip(ours.model.parameters(), stock.model.parameters()))
    if ours.accelerator.is_main_process:
        print("RESULT " + json.dumps({"processes": ours.accelerator.num_processes, "ours": ours_losses,
                                      "trl": stock_losses, "same_parameters": same}))
