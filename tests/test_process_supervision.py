"""Process supervision in the trainer: step rewards, per-token advantages, metrics."""

import pytest
import torch

from grpo_ext import GRPOTrainer
from grpo_ext.advantages import process_advantages
from grpo_ext.rewards.process import get_process_reward, step_check_reward
from grpo_ext.rewards.steps import segment_steps
from tests.conftest import cpu_grpo_args, digit_share_reward, run_two_processes


def test_step_checker_scores_equations_and_the_final_answer():
    steps = [["5 + 3 = 8", "8 * 2 = 17", "#### 16"], ["5 + 3 = 8", "答案是 8"]]
    assert step_check_reward(["", ""], steps, answer=["16", "9"]) == [[1.0, 0.0, 1.0], [1.0, 0.0]]


def test_unknown_process_reward_is_rejected():
    with pytest.raises(ValueError, match="unknown process reward 'steps'"):
        get_process_reward("steps")


def digit_steps(completions, steps, **kwargs):
    """Per step: share of digit characters (varies within groups even for a random model)."""
    return [[sum(c.isdigit() for c in s) / max(len(s), 1) for s in row] for row in steps]


class Recorder:
    """Keeps what the trainer computed, to compare with process_advantages by hand."""

    def __init__(self):
        self.calls = []

    def __call__(self, completions, steps, **kwargs):
        rewards = digit_steps(completions, steps)
        self.calls.append((completions, steps, rewards))
        return rewards


def score_process_batch(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    """One generation batch (2 prompts x 4) scored with the outcome weight 0: the process part alone."""
    recorder = Recorder()
    args = cpu_grpo_args(tmp_path, supervision="process", max_steps=1, max_completion_length=8, reward_weights=[0.0])
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=digit_share_reward, args=args,
                          train_dataset=addition_dataset, processing_class=tiny_tokenizer,
                          process_reward_funcs=[recorder])
    trainer.model.train()
    batch = [addition_dataset[i] for i in range(2) for _ in range(4)]
    return trainer, recorder, trainer._generate_and_score_completions(batch)


def test_token_advantages_are_outcome_plus_process(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    _, recorder, output = score_process_batch(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path)
    completions, steps, rewards = recorder.calls[-1]
    ids, mask = output["completion_ids"], output["completion_mask"]
    ends = [segment_steps(row[m.bool()].tolist(), tiny_tokenizer)[1] for row, m in zip(ids, mask)]
    expected = process_advantages(rewards, ends, 4, ids.size(1))
    assert output["advantages"].shape == ids.shape
    torch.testing.assert_close(output["advantages"], expected)  # outcome weight 0: the process part alone


def test_process_training_moves_the_policy_and_logs_metrics(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                            tmp_path):
    args = cpu_grpo_args(tmp_path, supervision="process", max_completion_length=8)
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=digit_share_reward, args=args,
                          train_dataset=addition_dataset, processing_class=tiny_tokenizer,
                          process_reward_funcs=[digit_steps])
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    logged = trainer.state.log_history[0]
    assert {"process/steps_per_completion", "process/step_reward_mean", "process/frac_steps_correct"} <= logged.keys()
    assert logged["process/steps_per_completion"] >= 1


def test_process_funcs_without_process_supervision_are_rejected(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                                tmp_path):
    with pytest.raises(ValueError, match="supervision='process'"):
        GRPOTrainer(model=tiny_model_dir, reward_funcs=digit_share_reward, args=cpu_grpo_args(tmp_path),
                    train_dataset=addition_dataset, processing_class=tiny_tokenizer, process_reward_funcs=[digit_steps])


def test_process_reward_model_scores_each_step_from_a_local_path(tiny_model_dir, tiny_tokenizer):
    from grpo_ext.rewards.models import ProcessRewardModel

    prm = ProcessRewardModel(tiny_model_dir, step_tag="#", good_token="+", bad_token="-")
    head = prm.model.get_output_embeddings().weight
    with torch.no_grad():
        head[prm.bad_id] = head[prm.good_id]  # equal label logits: every step must score exactly 0.5
    rewards = prm(["", ""], [["1+2=3", "3+4=7"], ["5"]], prompts=["1+2+4=", [{"role": "user", "content": "5="}]])
    assert rewards == [[0.5, 0.5], [0.5]]


def test_process_reward_model_reads_the_good_label_probability(tiny_model_dir, tiny_tokenizer):
    from grpo_ext.rewards.models import ProcessRewardModel

    prm = ProcessRewardModel(tiny_model_dir, step_tag="#")
    (rewards,) = prm([""], [["1+2=3", "3+4=8"]], prompts=["1+2+4="])
    text = "1+2+4= 1+2=3 #\n3+4=8 #\n"
    ids = tiny_tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = prm.model(input_ids=ids).logits[0]
    tags = (ids[0] == prm.tag_id).nonzero().flatten()
    expected = logits[tags][:, [prm.good_id, prm.bad_id]].softmax(-1)[:, 0].tolist()
    assert rewards == pytest.approx(expected, abs=1e-6)


def test_process_reward_model_needs_single_token_labels(tiny_model_dir):
    from grpo_ext.rewards.models import ProcessRewardModel

    with pytest.raises(ValueError, match="step_tag 'ки' must be one token"):
        ProcessRewardModel(tiny_model_dir)  # the character tokenizer has no 'ки'


def test_two_processes_normalise_step_rewards_over_the_whole_group(tiny_model_dir, tmp_path):
    # one group of 8 completions, 4 on each process: each keeps its slice of the advantages of the whole group
    result = run_two_processes(tiny_model_dir, tmp_path, "process")
    assert result["group_rows"] == 8 and result["steps"] >= 8
    assert result["slices_match"]


def test_step_checker_with_the_reference_solution_rewards_only_its_steps():
    solution = "12+34=46\n46+5=51"
    steps = [["12+34=46", "46+5=51"], ["1+1=2", "46+5=51"], ["34+12=46", "46+5=50"], ["12+34=46", "46+5=51", "51+0=51"]]
    rewards = step_check_reward([""] * 4, steps, answer=["51"] * 4, solution=[solution] * 4)
    # a true but irrelevant equation earns 0; operands of + in either order; an equation past the reference's last: 0
    assert rewards == [[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0, 0.0]]


def test_prm_process_reward_needs_a_model_name():
    with pytest.raises(ValueError, match="names no model"):
        get_process_reward("prm: ")


def test_completions_table_shows_each_steps_token_advantage(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                           tmp_path):
    trainer, _, output = score_process_batch(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path)
    ids, mask = output["completion_ids"], output["completion_mask"]
    column = list(trainer._logs["extra"]["step_advantages"])
    assert len(column) == 8
    for row, m, adv, shown in zip(ids, mask, output["advantages"], column):
        ends = segment_steps(row[m.bool()].tolist(), tiny_tokenizer)[1]
        assert shown == " ".join(f"{adv[e].item():.2f}" for e in ends)  # one value per step, not one scalar
