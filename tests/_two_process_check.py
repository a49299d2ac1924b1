"""Run under `torch.distributed.run --nproc_per_node 2` (gloo, CPU); prints one ``RESULT {json}`` line.

Modes:
- ``stock``: grpo_ext and stock TRL must train alike. Rewards are gathered across processes before
  grouping and each process keeps its slice of the advantages; a slicing mistake shows up as
  different losses and parameters.
- ``zero_variance``: "skip" must give "keep"'s parameters (beta 0) when a process may have no
  informative row at all (it trains on a padding row), and "resample" must run without hanging.
  When one process's groups are always flat, the other must not take its place: no process may
  train on more rows per micro-batch than ``per_device_train_batch_size``.
- ``process``: with groups spanning both processes, each process's token advantages must be its
  slice of ``process_advantages`` over the step rewards of the whole group.
"""

import json
import sys

import torch
import trl
from accelerate.utils import gather_object
from datasets import Dataset

from grpo_ext import GRPOConfig, GRPOTrainer
from grpo_ext.advantages import process_advantages
from grpo_ext.rewards.steps import segment_steps


def digit_share_reward(completions, **kwargs):
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def half_flat_reward(completions, prompts, **kwargs):
    return [0.5 if p[0] in "02468" else (sum(map(ord, c)) % 7) / 7 for c, p in zip(completions, prompts)]


def char_steps(completions, steps, **kwargs):
    return [[(sum(map(ord, s)) % 5) / 5 for s in row] for row in steps]


def rank_one_flat_reward(completions, **kwargs):
    """Flat on process 1, informative on process 0: process 0 alone finds informative groups."""
    if torch.distributed.get_rank() == 1:
        return [0.5] * len(completions)
    return [(sum(map(ord, c)) % 7) / 7 for c in completions]


class RowCounting(GRPOTrainer):
    """Records the rows of every micro-batch the loss sees."""

    rows_seen: list = []

    def _compute_loss(self, model, inputs):
        self.rows_seen.append(inputs["completion_ids"].size(0))
        return super()._compute_loss(model, inputs)


DATA = Dataset.from_list([{"prompt": f"{a}+{b}="} for a in range(10) for b in range(10)])


def config(config_cls, out, **kw):
    settings = dict(output_dir=out, per_device_train_batch_size=4, num_generations=4, max_completion_length=4,
                    max_steps=3, learning_rate=1e-3, beta=0.04, loss_type="grpo", bf16=False,
                    gradient_checkpointing=False, use_cpu=True, report_to="none", logging_steps=1,
                    save_strategy="no", seed=0, disable_tqdm=True, model_init_kwargs={"dtype": "float32"})
    settings.update(kw)
    return config_cls(**settings)


def run(cls, config_cls, model_dir, out, reward=digit_share_reward, **kw):
    trainer = cls(model=model_dir, reward_funcs=reward, args=config(config_cls, out, **kw), train_dataset=DATA)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return trainer, losses


def same(a, b):
    return all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.model.parameters(), b.model.parameters()))


def stock(model_dir, out):
    ours, ours_losses = run(GRPOTrainer, GRPOConfig, model_dir, out + "/ours")
    trl_trainer, trl_losses = run(trl.GRPOTrainer, trl.GRPOConfig, model_dir, out + "/trl")
    return ours, {"ours": ours_losses, "trl": trl_losses, "same_parameters": same(ours, trl_trainer)}


def zero_variance(model_dir, out):
    kw = dict(reward=half_flat_reward, beta=0.0, max_steps=4)
    keep, _ = run(GRPOTrainer, GRPOConfig, model_dir, out + "/keep", **kw)
    skip, _ = run(GRPOTrainer, GRPOConfig, model_dir, out + "/skip", zero_variance_groups="skip", **kw)
    resample, _ = run(GRPOTrainer, GRPOConfig, model_dir, out + "/resample", zero_variance_groups="resample",
                      max_resample_rounds=6, reward=half_flat_reward, max_steps=2)
    lopsided, _ = run(RowCounting, GRPOConfig, model_dir, out + "/lopsided", zero_variance_groups="resample",
                      max_resample_rounds=3, reward=rank_one_flat_reward, max_steps=2)

    def logged(trainer, key):
        return [h[key] for h in trainer.state.log_history if key in h]

    return skip, {"same_parameters": same(skip, keep), "frac_skipped": logged(skip, "zero_variance/frac_skipped"),
                  "resample_filled": logged(resample, "zero_variance/frac_filled"),
                  "lopsided_filled": logged(lopsided, "zero_variance/frac_filled"),
                  "lopsided_most_rows": max(gather_object([max(RowCounting.rows_seen)])),
                  "per_device_batch": lopsided.args.per_device_train_batch_size}


def process(model_dir, out):
    args = config(GRPOConfig, out + "/process", supervision="process", num_generations=8, reward_weights=[0.0])
    trainer = GRPOTrainer(model=model_dir, reward_funcs=digit_share_reward, args=args, train_dataset=DATA,
                          process_reward_funcs=[char_steps])
    trainer.model.train()
    rank = trainer.accelerator.process_index
    batch = [{"prompt": "3+4="} for _ in range(4)]  # one prompt, its group split across the two processes
    torch.manual_seed(rank)  # different completions on each process
    output = trainer._generate_and_score_completions(batch)
    ids, mask = output["completion_ids"], output["completion_mask"]
    local = [row[m.bool()].tolist() for row, m in zip(output["advantages"], mask)]
    ends = gather_object([segment_steps(row[m.bool()].tolist(), trainer.processing_class)[1]
                          for row, m in zip(ids, mask)])
    everything = gather_object(local)
    expected = process_advantages(trainer._step_rewards, ends, 8, 32)
    rows_ok = all(torch.allclose(torch.tensor(row), expected[i, : len(row)], atol=1e-6)
                  for i, row in enumerate(everything))
    steps = sum(len(r) for r in trainer._step_rewards)
    return trainer, {"group_rows": len(trainer._step_rewards), "steps": steps, "slices_match": rows_ok}


if __name__ == "__main__":
    model_dir, out = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "stock"
    trainer, result = {"stock": stock, "zero_variance": zero_variance, "process": process}[mode](model_dir, out)
    if trainer.accelerator.is_main_process:
        print("RESULT " + json.dumps({"processes": trainer.accelerator.num_processes, **result}))
