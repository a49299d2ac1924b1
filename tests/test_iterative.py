"""Iterative RL: reference reset (also LoRA), replay mix, reward-model updates, resume mid-iteration."""

import json
import os
import random

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from grpo_ext import GRPOTrainer
from grpo_ext.iterative import IterativeConfig, IterativeGRPO, ReplayBuffer, reset_reference
from grpo_ext.rewards.models import OutcomeRewardModel
from grpo_ext.tiny import build_tiny_reward_model
from tests.conftest import cpu_grpo_args

GROUP = 4  # completions per prompt in these tests
QUESTIONS = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10)])


def make_factory(tokenizer, bomb_at=None, **overrides):
    """A policy-trainer factory; ``bomb_at=(iteration_dir_name, step)`` interrupts that iteration's training."""

    class Bomb(TrainerCallback):
        def __init__(self, step):
            self.step = step

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == self.step:
                raise KeyboardInterrupt("simulated interruption")

    def factory(model, reward_model, output_dir):
        settings = dict(max_completion_length=3, save_strategy="steps", save_steps=2, per_device_train_batch_size=8,
                        temperature=1.0)
        settings.update(overrides)
        args = cpu_grpo_args(output_dir, **settings)
        callbacks = [Bomb(bomb_at[1])] if bomb_at and bomb_at[0] in output_dir else []
        return GRPOTrainer(model=model, reward_funcs=[reward_model], args=args, train_dataset=QUESTIONS,
                           processing_class=tokenizer, callbacks=callbacks)

    return factory


def make_loop(tokenizer, policy, out, factory=None, **cfg):
    rm = OutcomeRewardModel(build_tiny_reward_model(tokenizer, seed=0), tokenizer, learning_rate=1e-3, batch_size=32)
    settings = dict(output_dir=str(out), iterations=2, policy_steps=4, rm_samples=4, rm_steps=40, max_new_tokens=3,
                    last_number_fallback=True, seed=0)
    settings.update(cfg)
    return IterativeGRPO(factory or make_factory(tokenizer), policy, rm, QUESTIONS, IterativeConfig(**settings))


def rank_in_group_reward(completions, **kwargs):
    """0, 1, ..., G-1 within each group: reward variance in every group, whatever the policy samples."""
    return [float(i % GROUP) for i in range(len(completions))]


def assert_learning_signal(trainer):
    """The premise of a test that needs the policy to move: some group had distinct rewards and a gradient.

    With a reward of guaranteed variance the advantages are non-zero; the gradient is still zero when all
    completions of a group are the same text (the advantages sum to 0 over identical log-probs), which a
    random model sampling at temperature 1 from ~100 characters does with negligible probability.
    """
    history = [h for h in trainer.state.log_history if "grad_norm" in h]
    assert history and all(h["frac_reward_zero_std"] == 0 for h in history), (
        f"premise: every group must have reward variance, got {[h['frac_reward_zero_std'] for h in history]}")
    assert any(h["grad_norm"] > 0 for h in history), (
        "premise: training must have a non-zero gradient (were all completions of each group identical?): "
        f"grad_norm {[h['grad_norm'] for h in history]}")


def test_reference_equals_policy_after_reset(tiny_model_dir, tiny_tokenizer, tmp_path):
    trainer = make_factory(tiny_tokenizer, save_strategy="no", num_generations=GROUP)(
        tiny_model_dir, rank_in_group_reward, str(tmp_path))
    trainer.args.max_steps = 2
    trainer.train()
    assert_learning_signal(trainer)
    pairs = list(zip(trainer.model.parameters(), trainer.ref_model.parameters()))
    assert any(not torch.equal(p, r) for p, r in pairs)  # training moved the policy away from the reference
    reset_reference(trainer)
    assert all(torch.equal(p, r) for p, r in pairs)


def test_lora_reference_equals_policy_after_reset(tiny_model_dir, tiny_tokenizer, tmp_path):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=rank_in_group_reward,
                          args=cpu_grpo_args(tmp_path, max_steps=2, learning_rate=1e-2, num_generations=GROUP),
                          train_dataset=QUESTIONS, processing_class=tiny_tokenizer, peft_config=lora)
    trainer.train()
    assert_learning_signal(trainer)
    model = trainer.model
    ids = torch.tensor([tiny_tokenizer.encode("3+4=7")])

    def logits(adapter):
        from trl.trainer.utils import use_adapter

        with torch.no_grad(), use_adapter(model, adapter_name=adapter):
            return model(input_ids=ids).logits

    policy = model(input_ids=ids).logits.detach()
    assert not torch.allclose(logits(None), policy)  # the base (TRL's reference before a reset) differs
    reset_reference(trainer)
    torch.testing.assert_close(logits("ref"), policy)  # the reference TRL now uses is the policy
    assert model.active_adapter == "default"
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".ref." in n)


def test_replay_mix_holds_the_ratio_of_history():
    buffer = ReplayBuffer()
    buffer.add([{"text": f"old {i}", "label": 1.0} for i in range(1000)], iteration=0)
    new = [{"text": f"new {i}", "label": 0.0} for i in range(900)]
    mixed, share = buffer.mix(new, 0.1, random.Random(0))
    replayed = [e for e in mixed if e["replayed"]]
    assert len(mixed) == 1000 and len(replayed) == 100 and share == pytest.approx(0.1)
    assert len({e["text"] for e in replayed}) == 100  # drawn without replacement
    assert all(e["text"].startswith("old") for e in replayed)


def test_replay_mix_uses_what_history_there_is():
    buffer = ReplayBuffer()
    buffer.add([{"text": "old", "label": 1.0}] * 3, iteration=0)
    _, share = buffer.mix([{"text": "new", "label": 0.0}] * 90, 0.1, random.Random(0))
    assert share == pytest.approx(3 / 93)


def test_two_iterations_log_the_metrics_and_the_reward_model_improves(warm_policy_dir, tiny_tokenizer, tmp_path):
    log = make_loop(tiny_tokenizer, warm_policy_dir, tmp_path).run()
    assert [m["iterative/iteration"] for m in log] == [0.0, 1.0]
    assert log[0]["iterative/replay_fraction"] == 0.0  # no history yet
    assert log[1]["iterative/replay_fraction"] == pytest.approx(0.1, abs=0.01)
    assert 0 < log[0]["iterative/policy_sample_accuracy"] < 1  # both labels present: the test can fail
    assert log[0]["iterative/rm_accuracy"] > log[0]["iterative/rm_accuracy_before"]
    assert all(0 <= m["iterative/rm_policy_agreement"] <= 1 for m in log)
    assert os.path.exists(tmp_path / "iteration-1" / "policy" / "model.safetensors")
    lines = (tmp_path / "iterative_log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == log


def test_resume_in_the_middle_of_an_iteration_continues_with_the_same_state(warm_policy_dir, tiny_tokenizer,
                                                                            tmp_path):
    straight = make_loop(tiny_tokenizer, warm_policy_dir, tmp_path / "straight")
    straight_log = straight.run()
    broken = make_loop(tiny_tokenizer, warm_policy_dir, tmp_path / "resumed",
                       factory=make_factory(tiny_tokenizer, bomb_at=("iteration-1", 3)))
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    assert json.loads((tmp_path / "resumed" / "iterative_state.json").read_text())["phase"] == "policy"
    resumed = make_loop(tiny_tokenizer, warm_policy_dir, tmp_path / "resumed")  # a fresh process's view
    resumed_log = resumed.run()
    assert len(resumed_log) == len(straight_log) == 2
    for ours, theirs in zip(resumed_log, straight_log):
        assert ours == pytest.approx(theirs, nan_ok=True)
    from safetensors.torch import load_file

    for sub in ("iteration-1/policy", "reward_model"):
        ours = load_file(str(tmp_path / "resumed" / sub / "model.safetensors"))
        theirs = load_file(str(tmp_path / "straight" / sub / "model.safetensors"))
        for key in theirs:
            torch.testing.assert_close(ours[key], theirs[key], msg=f"{sub}: {key}")
    assert resumed.buffer.examples == straight.buffer.examples


def test_two_iterations_with_a_lora_policy(warm_policy_dir, tiny_tokenizer, tmp_path):
    # iteration 1 reloads the saved adapter (a trainable PeftModel) and resets its "ref" adapter to it
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    starts, received_b = [], []

    def factory(model, reward_model, output_dir):
        if not isinstance(model, str):  # the reloaded adapter: lora_B starts at 0 in a fresh one
            received_b.append(max(p.abs().max().item() for n, p in model.named_parameters() if "lora_B.default" in n))
        # The warm policy is confident (its groups often repeat one answer, which cancels the gradient):
        # sample hotter and add a reward of guaranteed variance so iteration 0 surely moves the adapter.
        args = cpu_grpo_args(output_dir, max_completion_length=3, save_strategy="no", learning_rate=1e-2,
                             temperature=3.0, num_generations=GROUP)
        trainer = GRPOTrainer(model=model, reward_funcs=[reward_model, rank_in_group_reward], args=args,
                              train_dataset=QUESTIONS,
                              processing_class=tiny_tokenizer, peft_config=lora if isinstance(model, str) else None)
        starts.append(trainer)
        return trainer

    log = make_loop(tiny_tokenizer, warm_policy_dir, tmp_path, factory=factory, policy_steps=2).run()
    assert_learning_signal(starts[0])
    assert [m["iterative/iteration"] for m in log] == [0.0, 1.0]
    model = starts[1].model
    assert "ref" in model.peft_config and model.active_adapter == "default"
    assert (tmp_path / "iteration-0" / "policy" / "adapter_config.json").exists()
    assert len(received_b) == 1 and received_b[0] > 0  # iteration 1 started from iteration 0's trained adapter


def test_iterative_metrics_reach_the_logging_integrations(warm_policy_dir, tiny_tokenizer, tmp_path):
    # report_to integrations (tensorboard, wandb) are TrainerCallbacks that see what on_log receives
    seen = []

    class Integration(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            seen.append(dict(logs or {}))

    base = make_factory(tiny_tokenizer, save_strategy="no")

    def factory(model, reward_model, output_dir):
        trainer = base(model, reward_model, output_dir)
        trainer.add_callback(Integration())
        return trainer

    log = make_loop(tiny_tokenizer, warm_policy_dir, tmp_path, factory=factory, policy_steps=1).run()
    reported = [entry for entry in seen if "iterative/rm_accuracy" in entry]
    assert [entry["iterative/iteration"] for entry in reported] == [0.0, 1.0]
    assert reported[0]["iterative/rm_accuracy"] == log[0]["iterative/rm_accuracy"]
