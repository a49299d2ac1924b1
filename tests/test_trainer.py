"""GRPOTrainer end to end on the tiny local model (CPU, a few steps)."""

import math

import pytest
import torch
import trl
from peft import LoraConfig

from grpo_ext import GRPOTrainer
from tests.conftest import assert_same_parameters, cpu_grpo_args, digit_share_reward, run_two_processes


def make_trainer(tiny_model_dir, tiny_tokenizer, dataset, tmp_path, cls=GRPOTrainer, config_cls=None, **overrides):
    peft_config = overrides.pop("peft_config", None)
    args = cpu_grpo_args(tmp_path, config_cls=config_cls, **overrides)
    return cls(
        model=tiny_model_dir,
        reward_funcs=digit_share_reward,
        args=args,
        train_dataset=dataset,
        processing_class=tiny_tokenizer,
        peft_config=peft_config,
    )


def snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def changed(before, module):
    return [n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())]


def test_trainer_is_a_trl_trainer():
    assert issubclass(GRPOTrainer, trl.GRPOTrainer)


def test_training_changes_the_policy_and_not_the_reference(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path)
    policy0, ref0 = snapshot(trainer.model), snapshot(trainer.ref_model)
    trainer.train()
    assert changed(policy0, trainer.model)
    assert changed(ref0, trainer.ref_model) == []


def test_lora_training_changes_only_the_adapter(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, peft_config=lora)
    before = snapshot(trainer.model)
    trainer.train()
    moved = changed(before, trainer.model)
    assert moved and all("lora_" in n for n in moved)  # the base weights, i.e. the reference, stay fixed


def test_advantage_metrics_are_logged(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, max_steps=1)
    trainer.train()
    logged = trainer.state.log_history[0]
    assert {"advantages/mean", "advantages/std", "advantages/frac_zero"} <= logged.keys()
    # advantages are centred per group, so their mean is 0; frac_zero equals the share of flat groups
    assert logged["advantages/mean"] == pytest.approx(0.0, abs=1e-6)
    assert logged["advantages/frac_zero"] == pytest.approx(logged["frac_reward_zero_std"])


def test_k3_matches_stock_trl_step_for_step(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    ours = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "ours")
    ours.train()
    stock = make_trainer(
        tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "trl", cls=trl.GRPOTrainer, config_cls=trl.GRPOConfig
    )
    stock.train()
    ours_loss = [h["loss"] for h in ours.state.log_history if "loss" in h]
    stock_loss = [h["loss"] for h in stock.state.log_history if "loss" in h]
    assert len(ours_loss) == 3
    assert ours_loss == pytest.approx(stock_loss, rel=1e-4, abs=1e-7)
    assert_same_parameters(ours, stock)


def test_k3_matches_stock_trl_with_gradient_accumulation(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    kw = dict(per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=2)
    ours = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "ours", **kw)
    ours.train()
    stock = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "trl", cls=trl.GRPOTrainer,
                         config_cls=trl.GRPOConfig, **kw)
    stock.train()
    assert_same_parameters(ours, stock)


@pytest.mark.parametrize(
    "estimator, expected",
    [
        ("k1", lambda c: -c),
        ("k2", lambda c: 0.5 * c * c),
        ("k3", lambda c: math.exp(c) - c - 1),
    ],
)
def test_loss_uses_the_configured_kl_estimator(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, estimator, expected):
    # With zero advantages the loss is beta * KL alone. Put the reference at log pi_ref = log pi_theta + c
    # for every token: each estimator then has a closed form in c.
    beta, c = 0.04, 0.3
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, kl_estimator=estimator)
    model = trainer.model.eval()
    prompt_ids = torch.tensor([[4, 5, 6], [7, 8, 9]])
    completion_ids = torch.tensor([[10, 11], [12, 13]])
    ones = torch.ones_like
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            model, torch.cat([prompt_ids, completion_ids], 1), torch.ones(2, 5, dtype=torch.long), 2
        )
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": ones(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": ones(completion_ids),
        "advantages": torch.zeros(2),
        "num_items_in_batch": torch.tensor(4.0),
        "ref_per_token_logps": logps + c,
    }
    loss = trainer._compute_loss(model, inputs)
    assert loss.item() == pytest.approx(beta * expected(c), rel=1e-4)
    assert trainer._metrics["eval"]["kl"][-1] == pytest.approx(expected(c), rel=1e-4)


def test_trl_config_is_accepted_with_k3(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, config_cls=trl.GRPOConfig)
    assert trainer.kl_estimator == "k3"


def test_two_processes_train_exactly_like_stock_trl(tiny_model_dir, tmp_path):
    # rewards gathered across processes, advantages recomputed, each process keeps its slice (gloo, CPU)
    result = run_two_processes(tiny_model_dir, tmp_path, "stock")
    assert result["ours"] == pytest.approx(result["trl"], rel=1e-4, abs=1e-7) and len(result["ours"]) == 3
    assert result["same_parameters"]
