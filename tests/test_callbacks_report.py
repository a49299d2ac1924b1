"""MathEvalCallback on the tiny model, and the run report."""

import json

import pytest
import torch

from grpo_ext import GRPOTrainer
from grpo_ext.callbacks import MathEvalCallback
from grpo_ext.data.synthetic import synthetic_dataset
from grpo_ext.report import PANELS, find_trainer_state, make_report, report_figure, summary_markdown
from tests.conftest import cpu_grpo_args, digit_share_reward


def held_out():
    return synthetic_dataset(16, language="en", style="compact", seed=99, num_steps=1)


def train(tiny_model_dir, tiny_tokenizer, dataset, out, callbacks=None, steps=4):
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=digit_share_reward, args=cpu_grpo_args(out, max_steps=steps),
                          train_dataset=dataset, processing_class=tiny_tokenizer, callbacks=callbacks)
    trainer.train()
    return trainer


def test_callback_logs_top1_at_start_every_eval_steps_and_end(tiny_model_dir, tiny_tokenizer, addition_dataset,
                                                              tmp_path):
    callback = MathEvalCallback({"sums": held_out()}, eval_steps=2, max_new_tokens=4, last_number_fallback=True)
    trainer = train(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, [callback], steps=5)
    steps = [h["step"] for h in trainer.state.log_history if "eval/sums/top1" in h]
    assert steps == [0, 2, 4, 5]


def test_callback_logs_maj_and_pass_at_k(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    callback = MathEvalCallback({"sums": held_out()}, eval_steps=10, k=3, max_new_tokens=4, last_number_fallback=True)
    trainer = train(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, [callback], steps=1)
    first = next(h for h in trainer.state.log_history if "eval/sums/top1" in h)
    assert {"eval/sums/maj@3", "eval/sums/pass@3"} <= first.keys()


def test_callback_does_not_change_training(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    plain = train(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "plain")
    callback = MathEvalCallback({"sums": held_out()}, eval_steps=1, k=2, max_new_tokens=4)
    watched = train(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path / "watched", [callback])
    for (name, p), q in zip(plain.model.named_parameters(), watched.model.parameters()):
        assert torch.equal(p, q), name


def test_unknown_benchmark_name_is_rejected():
    with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'.*known: \\['cmath', 'gsm8k'"):
        MathEvalCallback(["gsm9k"])


def test_report_of_a_real_short_run(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path):
    callback = MathEvalCallback({"sums": held_out()}, eval_steps=2, max_new_tokens=4, last_number_fallback=True)
    trainer = train(tiny_model_dir, tiny_tokenizer, addition_dataset, tmp_path, [callback])
    trainer.save_state()
    paths = make_report([str(tmp_path)])
    summary = open(paths["markdown"]).read()
    assert "| reward |" in summary and "| eval/sums/top1 |" in summary and "steps: 4 of 4" in summary


FULL_HISTORY = [
    {"step": s, "reward": 0.1 * s, "rewards/accuracy_reward/mean": 0.1 * s, "rewards/format_reward/mean": 0.5,
     "eval/gsm8k/top1": 0.2 + 0.01 * s, "kl": 0.001 * s, "completions/mean_length": 100 + s,
     "completions/clipped_ratio": 0.1, "frac_reward_zero_std": 0.3, "advantages/mean": 0.0, "advantages/std": 0.9,
     "advantages/frac_zero": 0.3, "learning_rate": 1e-6}
    for s in range(1, 6)
]


def test_report_figure_has_every_curve():
    fig = report_figure({"run": FULL_HISTORY})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [title for title, _, _ in PANELS]
    assert all(ax.lines for ax in fig.axes), [t for t, ax in zip(titles, fig.axes) if not ax.lines]


def test_report_from_a_fixture_state_and_two_runs(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text(json.dumps({"global_step": 5, "max_steps": 5,
                                                                         "log_history": FULL_HISTORY}))
    paths = make_report([str(tmp_path / "a"), str(tmp_path / "b")], output=str(tmp_path / "cmp"))
    assert open(paths["markdown"]).read().count("| eval/gsm8k/top1 | 0.21 | 0.25 | 0.25 |") == 2


def test_run_in_progress_reads_the_newest_checkpoint(tmp_path):
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert find_trainer_state(str(tmp_path)).endswith("checkpoint-10/trainer_state.json")


def test_run_dir_without_state_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected RUN_DIR/trainer_state.json"):
        make_report([str(tmp_path)])


def test_a_run_in_a_subfolder_is_found(tmp_path):
    # grpo-ext report grpo-ext-demo: the demo's GRPO run is in grpo-ext-demo/grpo/
    (tmp_path / "grpo").mkdir()
    (tmp_path / "grpo" / "trainer_state.json").write_text("{}")
    (tmp_path / "model").mkdir()
    assert find_trainer_state(str(tmp_path)) == str(tmp_path / "grpo" / "trainer_state.json")


def test_several_runs_in_subfolders_are_named(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "checkpoint-3").mkdir(parents=True)
        (tmp_path / name / "checkpoint-3" / "trainer_state.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds several runs: a, b; point at one of them"):
        find_trainer_state(str(tmp_path))


def test_wall_time_adds_up_resumed_segments():
    # the WallClock kept in the state (170.4 s over 3 segments), not the last segment's train_runtime (60 s)
    state = {"global_step": 5, "max_steps": 5,
             "stateful_callbacks": {"WallClock": {"args": {}, "attributes": {"seconds": 170.4, "segments": 3}}}}
    text = summary_markdown({"run": (FULL_HISTORY + [{"step": 5, "train_runtime": 60.0}], state)})
    assert "wall time: 170 s over 3 segments (resumed)" in text


def test_wall_time_without_a_clock_is_the_runtime():
    text = summary_markdown({"run": (FULL_HISTORY + [{"step": 5, "train_runtime": 60.0}], {"global_step": 5})})
    assert "wall time: 60 s" in text and "segments" not in text
