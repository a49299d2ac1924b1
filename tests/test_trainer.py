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


# ----- the loss on hand-built micro-batches --------------------------------------------------------
def micro_batch(trainer, rows=2, c=0.3, **extra):
    """A 2-token micro-batch with zero advantages and log pi_ref = log pi_theta + c for every token."""
    model = trainer.model.eval()
    prompt_ids = torch.arange(4, 4 + 3 * rows).view(rows, 3)
    completion_ids = torch.arange(20, 20 + 2 * rows).view(rows, 2)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            model, torch.cat([prompt_ids, completion_ids], 1), torch.ones(rows, 5, dtype=torch.long), 2)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": torch.ones_like(completion_ids), "advantages": torch.zeros(rows),
              "num_items_in_batch": torch.tensor(2.0 * rows), "ref_per_token_logps": logps + c}
    inputs.update(extra)
    return model, inputs, logps


def test_skip_keeps_the_full_kl_weight_on_the_kept_rows(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    # 2 real rows and 2 padding rows of a batch of 4 (half the groups dropped): the kept rows' KL must
    # weigh beta, as a whole batch's does, not beta * 2/4
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, zero_variance_groups="skip",
                           per_device_train_batch_size=4)
    model, inputs, _ = micro_batch(trainer, rows=4, zero_variance_real=torch.tensor([1.0, 1.0, 0.0, 0.0]),
                                   zero_variance_kl_scale=torch.tensor(2.0))
    inputs["completion_mask"] = torch.tensor([[1, 1], [1, 1], [0, 0], [0, 0]])
    model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by train(); this calls the loss directly
    loss = trainer._compute_loss(model, inputs)
    assert loss.item() == pytest.approx(0.04 * (math.exp(0.3) - 0.3 - 1), rel=1e-4)


def test_skip_leaves_the_entropy_bonus_at_trls_weight(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    # 2 rows of a batch of 4: the policy term is rescaled by 2/4, the entropy bonus must not be
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, zero_variance_groups="skip",
                           per_device_train_batch_size=4, beta=0.0, entropy_coef=0.1)
    model, inputs, _ = micro_batch(trainer, rows=2, zero_variance_real=torch.ones(2),
                                   zero_variance_kl_scale=torch.tensor(1.0))
    with torch.no_grad():
        _, entropies, _ = trainer._get_per_token_logps_and_entropies(
            model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1), torch.ones(2, 5, dtype=torch.long),
            2, compute_entropy=True)
    model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by train(); this calls the loss directly
    loss = trainer._compute_loss(model, inputs)
    assert loss.item() == pytest.approx(-0.1 * entropies.mean().item(), rel=1e-4)


def test_sequence_level_bias_correction_leaves_tool_tokens_out(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                               tmp_path):
    # k2 with the correction at sequence level: weight exp(mean log ratio over the counted tokens).
    # Row 0's second token is a tool token with a log ratio of 3: it must not enter the weight.
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, kl_estimator="k2",
                           use_bias_correction_kl=True, importance_sampling_level="sequence")
    model, inputs, logps = micro_batch(trainer, rows=2)
    log_ratio = torch.tensor([[0.2, 3.0], [0.1, 0.1]])
    inputs["old_per_token_logps"] = logps - log_ratio
    inputs["tool_mask"] = torch.tensor([[1, 0], [1, 1]])
    loss = trainer._compute_loss(model, inputs)
    k2 = 0.5 * 0.3**2
    # row 0: one counted token, weight e^0.2; row 1: two tokens, weight e^0.1 each; then the mean of rows
    expected = 0.04 * (k2 * math.exp(0.2) + k2 * math.exp(0.1)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_logged_kl_is_the_bias_corrected_term_in_the_loss(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    trainer = make_trainer(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, kl_estimator="k2",
                           use_bias_correction_kl=True)
    model, inputs, logps = micro_batch(trainer, rows=2)
    inputs["old_per_token_logps"] = logps - 0.5  # every token's ratio is e^0.5
    trainer._compute_loss(model, inputs)
    assert trainer._metrics["eval"]["kl"][-1] == pytest.approx(0.5 * 0.3**2 * math.exp(0.5), rel=1e-4)


def test_k1_without_bias_correction_warns_that_the_kl_has_no_effect(tmp_path):
    with pytest.warns(UserWarning, match="expected gradient of zero"):
        cpu_grpo_args(tmp_path, kl_estimator="k1", use_bias_correction_kl=False)


def test_model_card_names_a_hub_cache_snapshot_by_its_hub_id(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    # a model loaded from the Hub cache's folder is named as the Hub id, in the text and the card's metadata
    import shutil

    from huggingface_hub import ModelCard

    snapshot = tmp_path / "hub" / "models--deepseek-ai--deepseek-math-7b-instruct" / "snapshots" / "0123abc"
    shutil.copytree(tiny_model_dir, snapshot)
    trainer = GRPOTrainer(model=str(snapshot), reward_funcs=digit_share_reward, processing_class=tiny_tokenizer,
                          args=cpu_grpo_args(tmp_path / "run"), train_dataset=addition_dataset)
    trainer.create_model_card(model_name="run")
    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert card.data.base_model == "deepseek-ai/deepseek-math-7b-instruct"
    assert ("fine-tuned version of [deepseek-ai/deepseek-math-7b-instruct]"
            "(https://huggingface.co/deepseek-ai/deepseek-math-7b-instruct)") in card.text
