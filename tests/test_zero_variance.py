"""zero_variance_groups: "skip" drops groups that teach nothing, "resample" refills the batch."""

import logging

import pytest
import torch

from grpo_ext import GRPOTrainer
from grpo_ext.batching import concat_rows, pad_rows
from tests.conftest import assert_same_parameters, cpu_grpo_args, run_two_processes


def half_flat_reward(completions, prompts, **kwargs):
    """Constant for prompts starting with an even digit (those groups have zero variance); for the others
    a score that varies between random completions."""
    return [0.5 if p[0] in "02468" else (sum(map(ord, c)) % 7) / 7 for c, p in zip(completions, prompts)]


def flat_reward(completions, **kwargs):
    return [1.0] * len(completions)


def make(tiny_model_dir, tiny_tokenizer, dataset, out, reward=half_flat_reward, **overrides):
    args = cpu_grpo_args(out, **{"max_steps": 2, **overrides})
    return GRPOTrainer(model=tiny_model_dir, reward_funcs=reward, args=args, train_dataset=dataset,
                       processing_class=tiny_tokenizer)


def logged(trainer, key):
    return [h[key] for h in trainer.state.log_history if key in h]


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_skip_gives_the_same_update_as_keep_when_beta_is_zero(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                              tmp_path, loss_type):
    kw = dict(beta=0.0, loss_type=loss_type)
    keep = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "keep", **kw)
    keep.train()
    skip = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "skip", zero_variance_groups="skip", **kw)
    skip.train()
    assert max(logged(skip, "zero_variance/frac_skipped")) > 0  # groups really were dropped
    assert_same_parameters(skip, keep)


def test_skip_matches_keep_across_gradient_accumulation(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    kw = dict(beta=0.0, per_device_train_batch_size=4, gradient_accumulation_steps=2)
    keep = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "keep", **kw)
    keep.train()
    skip = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "skip", zero_variance_groups="skip", **kw)
    skip.train()
    assert_same_parameters(skip, keep)


def test_skip_reports_the_share_of_flat_groups_and_the_tokens_saved(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                                    tmp_path):
    trainer = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, zero_variance_groups="skip", max_steps=1)
    trainer.train()
    assert logged(trainer, "zero_variance/frac_skipped") == pytest.approx(logged(trainer, "frac_reward_zero_std"))
    assert logged(trainer, "zero_variance/tokens_saved")[0] > 0
    assert logged(trainer, "zero_variance/resample_rounds") == [0.0]


def test_skip_computes_reference_logps_only_for_kept_rows(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    batch = [addition_dataset[i] for i in (0, 10, 20, 30) for _ in range(4)]  # prompts "0+.." "1+.." "2+.." "3+.."
    keep = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "keep", per_device_train_batch_size=16)
    skip = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "skip", per_device_train_batch_size=16,
                zero_variance_groups="skip")
    outs = []
    for trainer in (keep, skip):
        trainer.model.train()
        torch.manual_seed(1)
        outs.append(trainer._generate_and_score_completions(batch))
    full, kept = outs
    informative = [4, 5, 6, 7, 12, 13, 14, 15]  # prompts "1+" and "3+": odd first digit
    assert kept["completion_ids"].size(0) == 8 and kept["zero_variance_real"].tolist() == [1.0] * 8
    width = kept["completion_ids"].size(1)
    torch.testing.assert_close(kept["completion_ids"], full["completion_ids"][informative, :width])
    mask = kept["completion_mask"].bool()
    torch.testing.assert_close(kept["ref_per_token_logps"][mask], full["ref_per_token_logps"][informative, :width][mask])


def test_resample_fills_the_batch_with_informative_groups(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    trainer = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, zero_variance_groups="resample",
                   max_resample_rounds=6)
    trainer.model.train()
    batch = [addition_dataset[i] for i in (0, 20) for _ in range(4)]  # both prompts flat: 0 of 2 groups informative
    out = trainer._generate_and_score_completions(batch)
    assert out["zero_variance_real"].tolist() == [1.0] * 8  # two informative groups found in later rounds
    assert trainer._metrics["train"]["zero_variance/frac_filled"] == [1.0]
    assert trainer._metrics["train"]["zero_variance/resample_rounds"][0] >= 1
    assert all(a.abs().sum() > 0 for a in out["advantages"].view(2, 4))  # every group has a non-zero advantage


def test_resample_stops_at_the_cap_and_says_so(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, caplog):
    trainer = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, reward=flat_reward,
                   zero_variance_groups="resample", max_resample_rounds=2, max_steps=1)
    with caplog.at_level(logging.WARNING, logger="grpo_ext.trainer"):
        trainer.train()
    assert logged(trainer, "zero_variance/resample_rounds") == [2.0]
    assert logged(trainer, "zero_variance/frac_filled") == [0.0]
    assert "stopped after max_resample_rounds=2 extra rounds with 0 of 2 informative groups" in caplog.text


def test_zero_variance_mode_is_validated(tmp_path):
    with pytest.raises(ValueError, match="zero_variance_groups must be 'keep', 'skip' or 'resample'"):
        cpu_grpo_args(tmp_path, zero_variance_groups="drop")


def test_skip_refuses_batch_centred_multi_objective_aggregation(tmp_path):
    with pytest.raises(ValueError, match="needs multi_objective_aggregation='sum_then_normalize'"):
        cpu_grpo_args(tmp_path, zero_variance_groups="skip", multi_objective_aggregation="normalize_then_sum")


def test_concat_rows_pads_prompts_left_and_completions_right():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "completion_ids": torch.tensor([[7]]), "n": torch.tensor(3.0)}
    b = {"prompt_ids": torch.tensor([[1, 2, 3]]), "completion_ids": torch.tensor([[8, 9]]), "n": torch.tensor(4.0)}
    out = concat_rows([a, b], pad_token_id=0)
    assert out["prompt_ids"].tolist() == [[0, 5, 6], [1, 2, 3]]
    assert out["completion_ids"].tolist() == [[7, 0], [8, 9]]
    assert out["n"].item() == 3.0


def test_padding_rows_carry_no_loss_and_no_advantage():
    batch = {"prompt_ids": torch.tensor([[4, 5]]), "completion_ids": torch.tensor([[6, 7]]),
             "completion_mask": torch.tensor([[1, 1]]), "advantages": torch.tensor([0.7])}
    out = pad_rows(batch, 3, batch, pad_token_id=0)
    assert out["completion_ids"].tolist() == [[6, 7]] * 3
    assert out["completion_mask"].tolist() == [[1, 1], [0, 0], [0, 0]]
    assert out["advantages"].tolist() == pytest.approx([0.7, 0.0, 0.0])


@pytest.fixture(scope="module")
def two_process_result(tiny_model_dir, tmp_path_factory):
    return run_two_processes(tiny_model_dir, tmp_path_factory.mktemp("two-processes"), "zero_variance")


def test_two_processes_skip_like_keep_and_resample_without_hanging(two_process_result):
    # a process whose groups are all flat trains on a padding row while the other trains on real rows
    result = two_process_result
    assert 0.5 in result["frac_skipped"]  # one of the two groups (one per process) was dropped at some step
    assert result["same_parameters"]
    assert result["resample_filled"] == [1.0, 1.0]


def test_two_processes_resample_never_exceeds_the_micro_batch(two_process_result):
    # process 1's groups are always flat: process 0 finds informative groups, but only its own share
    result = two_process_result
    assert result["lopsided_most_rows"] <= result["per_device_batch"] == 4
    assert result["lopsided_filled"] == [0.5, 0.5]


def test_trim_padding_drops_completion_columns_that_are_padding_in_every_row():
    from grpo_ext.batching import trim_padding

    batch = {"prompt_ids": torch.tensor([[0, 0, 5], [0, 6, 7]]), "prompt_mask": torch.tensor([[0, 0, 1], [0, 1, 1]]),
             "completion_ids": torch.tensor([[8, 0, 0], [9, 9, 0]]),
             "completion_mask": torch.tensor([[1, 0, 0], [1, 1, 0]]), "advantages": torch.tensor([0.5, -0.5])}
    out = trim_padding(batch)
    assert out["prompt_ids"].tolist() == [[0, 0, 5], [0, 6, 7]]  # prompt positions stay as they were
    assert out["completion_ids"].tolist() == [[8, 0], [9, 9]] and out["completion_mask"].tolist() == [[1, 0], [1, 1]]
    assert out["advantages"].tolist() == [0.5, -0.5]


def test_skip_logs_the_full_kl_weight(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    trainer = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, zero_variance_groups="skip",
                   max_steps=2, beta=0.04)
    trainer.train()
    assert max(logged(trainer, "zero_variance/frac_skipped")) > 0  # premise: some groups were dropped
    assert logged(trainer, "zero_variance/kl_weight") == pytest.approx([0.04, 0.04])


def test_merged_rounds_pad_the_importance_ratio_with_one():
    a = {"completion_ids": torch.tensor([[7]]), "importance_sampling_ratio": torch.tensor([[0.8]])}
    b = {"completion_ids": torch.tensor([[8, 9, 9]]), "importance_sampling_ratio": torch.tensor([[1.1, 0.9, 1.2]])}
    merged = concat_rows([a, b], pad_token_id=0)["importance_sampling_ratio"]
    torch.testing.assert_close(merged, torch.tensor([[0.8, 1.0, 1.0], [1.1, 0.9, 1.2]]))


def test_padding_columns_change_no_vespo_weight():
    # VESPO sums log(importance_sampling_ratio) over the whole row, padding columns included
    from trl import GRPOTrainer as StockTrainer

    row = {"completion_ids": torch.tensor([[7, 7]]), "importance_sampling_ratio": torch.tensor([[0.8, 1.3]])}
    wide = {"completion_ids": torch.tensor([[8, 9, 9, 9]]), "importance_sampling_ratio": torch.ones(1, 4)}
    merged = concat_rows([row, wide], pad_token_id=0)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])

    def phi(ratio, m):
        return StockTrainer.get_gamma_weights(advantages=torch.ones(1, 1), log_ratio_per_token=torch.zeros_like(m),
                                              mask=m, importance_sampling_ratio=ratio)

    torch.testing.assert_close(phi(merged["importance_sampling_ratio"][:1], mask), phi(row["importance_sampling_ratio"],
                                                                                      mask[:, :2]))


def test_resumed_run_draws_the_same_replacement_groups(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    kw = dict(zero_variance_groups="resample", max_resample_rounds=3, beta=0.0, max_steps=3, save_strategy="steps",
              save_steps=1)
    straight = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "straight", **kw)
    straight.train()
    assert logged(straight, "zero_variance/resample_rounds")[2] >= 1  # premise: step 3 drew fresh groups
    resumed = make(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "resumed", **kw)
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-2"))
    assert_same_parameters(resumed, straight)
