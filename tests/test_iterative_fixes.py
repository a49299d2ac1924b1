"""The iterative loop as the paper ran it: fresh data each iteration, its own policy evaluated, the
reference reset under embedding LoRA, no "None" golds, one trainer alive, right-truncated PRM scores,
and process supervision with Math-Shepherd's step labels."""

import gc
import math
import weakref

import pytest
import torch
from datasets import Dataset

from grpo_ext import GRPOTrainer
from grpo_ext.iterative import (IterativeConfig, IterativeGRPO, annotate_steps, long_run_order, prompts_consumed,
                                reset_reference)
from grpo_ext.rewards.models import OutcomeRewardModel, ProcessRewardModel
from grpo_ext.tiny import build_tiny_model, build_tiny_reward_model
from tests.conftest import cpu_grpo_args

BIG = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(20) for b in range(10)])


def outcome_rm(tokenizer):
    return OutcomeRewardModel(build_tiny_reward_model(tokenizer, seed=0), tokenizer, learning_rate=1e-3, batch_size=8)


def recording_factory(tokenizer, seen, alive=None, **overrides):
    def record(completions, prompts, **kwargs):
        seen.extend(prompts)
        return [0.0] * len(completions)

    def factory(model, reward_model, output_dir):
        if alive is not None:
            gc.collect()
            alive.append([ref() is not None for ref in alive_refs])
        args = cpu_grpo_args(output_dir, max_completion_length=2, save_strategy="no", per_device_train_batch_size=8,
                             num_generations=4, **overrides)
        trainer = GRPOTrainer(model=model, reward_funcs=[reward_model, record], args=args, train_dataset=BIG,
                              processing_class=tokenizer)
        alive_refs.append(weakref.ref(trainer))
        return trainer

    alive_refs = []
    return factory


def small_loop(tokenizer, model_dir, out, factory, iterations=3, **cfg):
    settings = dict(output_dir=str(out), iterations=iterations, policy_steps=2, rm_samples=1, rm_steps=1,
                    max_new_tokens=2, seed=0, heldout_fraction=0.05)
    settings.update(cfg)
    questions = BIG.select(range(40))
    return IterativeGRPO(factory, model_dir, outcome_rm(tokenizer), questions, IterativeConfig(**settings))


def test_each_iteration_trains_on_prompts_the_earlier_ones_did_not_see(tiny_model_dir, tiny_tokenizer, tmp_path):
    seen = []
    small_loop(tiny_tokenizer, tiny_model_dir, tmp_path, recording_factory(tiny_tokenizer, seen)).run()
    prompts = list(dict.fromkeys(seen))  # each prompt is seen num_generations times in its step
    assert len(seen) == 3 * 2 * 8  # 3 iterations x 2 steps x 8 completions
    assert len(prompts) == 3 * 2 * 2  # 12 distinct prompts: one long run through the data


def test_the_loop_holds_one_trainer_at_a_time(tiny_model_dir, tiny_tokenizer, tmp_path):
    alive = []
    small_loop(tiny_tokenizer, tiny_model_dir, tmp_path, recording_factory(tiny_tokenizer, [], alive=alive),
               iterations=2).run()
    assert alive == [[], [False]]  # when iteration 1's trainer is built, iteration 0's is gone


def test_a_long_run_sees_every_row_once_before_any_again():
    first = long_run_order(10, 0, 10, seed=3)
    assert sorted(first) == list(range(10))
    assert long_run_order(10, 4, 8, seed=3) == first[4:] + long_run_order(10, 10, 2, seed=3)
    assert long_run_order(10, 0, 5, seed=3, shuffle=False) == [0, 1, 2, 3, 4]


def test_prompts_consumed_follows_trls_sampler(tmp_path):
    args = cpu_grpo_args(tmp_path, per_device_train_batch_size=8, num_generations=4)
    assert prompts_consumed(args, 3) == 3 * 8 // 4


def test_every_trainer_evaluates_its_own_policy(tiny_model_dir, tiny_tokenizer, tmp_path):
    from grpo_ext.callbacks import MathEvalCallback

    callback = MathEvalCallback({"tiny": BIG.select(range(4))})
    trainers = [GRPOTrainer(model=tiny_model_dir, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                            args=cpu_grpo_args(tmp_path / str(i)), train_dataset=BIG, processing_class=tiny_tokenizer,
                            callbacks=[callback]) for i in range(2)]
    assert callback.trainer is trainers[1]


def test_reference_reset_covers_lora_on_the_embeddings(tiny_model_dir, tiny_tokenizer, tmp_path):
    from peft import LoraConfig
    from trl.trainer.utils import use_adapter

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=lambda completions, **kw: [float(len(c)) for c in completions],
                          args=cpu_grpo_args(tmp_path, max_steps=2, learning_rate=5e-2, temperature=2.0),
                          train_dataset=BIG, processing_class=tiny_tokenizer, peft_config=lora)
    model = trainer.model
    with torch.no_grad():  # a trained-looking adapter, embeddings included
        for name, p in model.named_parameters():
            if ".default" in name or name.endswith(".default"):
                p.add_(0.1 * torch.randn_like(p))
    ids = torch.tensor([tiny_tokenizer.encode("3+4=7")])
    reset_reference(trainer)
    with torch.no_grad():
        policy = model(input_ids=ids).logits
        with use_adapter(model, adapter_name="ref"):
            reference = model(input_ids=ids).logits
    torch.testing.assert_close(reference, policy)


def test_questions_without_a_gold_are_left_out(tiny_model_dir, tiny_tokenizer, tmp_path):
    questions = Dataset.from_list([{"prompt": "1+1=", "answer": "2"}, {"prompt": "2+2=", "answer": None},
                                   {"prompt": "3+3=", "answer": "6"}])
    loop = IterativeGRPO(lambda *a: None, tiny_model_dir, outcome_rm(tiny_tokenizer), questions,
                         IterativeConfig(output_dir=str(tmp_path)))
    golds = list(loop.heldout["answer"]) + list(loop.train_questions["answer"])
    assert sorted(golds) == ["2", "6"]


# ----- the process reward model --------------------------------------------------------------------
def make_prm(tokenizer, **kw):
    return ProcessRewardModel(build_tiny_model(tokenizer, seed=1), tokenizer, step_tag="@", good_token="+",
                              bad_token="-", learning_rate=1e-2, **kw)


def test_prm_scores_stay_on_their_steps_when_the_tokenizer_truncates_on_the_left(tiny_tokenizer):
    prm = make_prm(tiny_tokenizer)
    steps = [["12+34=46", "46+5=51", "51+1=52", "52+1=53"]]
    whole = prm(["x"], steps, prompts=["12+34+5+1+1="])[0]
    side = tiny_tokenizer.truncation_side
    tiny_tokenizer.truncation_side = "left"
    try:
        prm.max_length = len(prm.texts(steps, ["12+34+5+1+1="])[0]) - 4  # cuts the last step's tag off
        cut = prm(["x"], steps, prompts=["12+34+5+1+1="])[0]
    finally:
        tiny_tokenizer.truncation_side = side
    assert cut[:3] == pytest.approx(whole[:3]) and math.isnan(cut[3])


def test_prm_training_moves_step_scores_toward_their_labels(tiny_tokenizer):
    prm = make_prm(tiny_tokenizer)
    texts = prm.texts([["1+1=2", "2+1=4"]] * 4, ["1+1+1="] * 4)
    labels = [[1.0, 0.0]] * 4
    before = prm.score_texts(texts[:1])[0]
    prm.fit(texts, labels, steps=30, generator=torch.Generator().manual_seed(0))
    after = prm.score_texts(texts[:1])[0]
    assert after[0] > before[0] and after[1] < before[1]
    assert prm.accuracy(texts, labels) == 1.0


def test_prm_saves_and_restores_its_weights_and_optimizer(tiny_tokenizer, tmp_path):
    prm = make_prm(tiny_tokenizer)
    texts = prm.texts([["1+1=2"]], ["1+1="])
    prm.fit(texts, [[1.0]], steps=2)
    prm.save(str(tmp_path / "prm"))
    other = make_prm(tiny_tokenizer)
    other.load_state(str(tmp_path / "prm"))
    assert other.score_texts(texts)[0] == pytest.approx(prm.score_texts(texts)[0])
    assert other.optimizer.state_dict()["state"].keys() == prm.optimizer.state_dict()["state"].keys()


def right_from_a_right_prefix(prefixes, n):
    """A policy that finishes a 2-step sum right after a right first step, and wrong after a wrong one."""
    return [["3+4=7"] * n if prefix.endswith("1+2=3\n") else ["3+4=8"] * n for prefix in prefixes]


def test_math_shepherd_hard_labels_on_a_hand_checked_case():
    labels, outcome = annotate_steps(["1+2+4="], [["1+2=3", "3+4=8"]], ["7"], right_from_a_right_prefix,
                                     rollouts=2, mode="hard", last_number_fallback=True)
    assert labels == [[1.0, 0.0]] and outcome == [0.0]


def test_math_shepherd_hard_labels_mark_a_wrong_first_step():
    labels, _ = annotate_steps(["1+2+4="], [["1+2=4", "4+4=8"]], ["7"], right_from_a_right_prefix,
                               rollouts=2, mode="hard", last_number_fallback=True)
    assert labels == [[0.0, 0.0]]


def test_math_shepherd_soft_labels_are_the_share_that_reaches_the_gold():
    def half(prefixes, n):
        return [["3+4=7", "3+4=8"] for _ in prefixes]

    labels, _ = annotate_steps(["1+2+4="], [["1+2=3", "3+4=7"]], ["7"], half, rollouts=2, mode="soft",
                               last_number_fallback=True)
    assert labels == [[0.5, 1.0]]


# ----- the loop with process supervision -------------------------------------------------------------
STEPS = Dataset.from_list([{"prompt": f"{a}+{b}+1=", "answer": str(a + b + 1), "solution": f"{a}+{b}={a + b}\n{a + b}+1={a + b + 1}"}
                           for a in range(6) for b in range(6)])


def process_factory(tokenizer, bomb_at=None):
    from transformers import TrainerCallback

    from grpo_ext.rewards import get_reward_funcs

    class Bomb(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if bomb_at and bomb_at[0] in args.output_dir and state.global_step == bomb_at[1]:
                raise KeyboardInterrupt("simulated interruption")

    def factory(model, reward_model, output_dir):
        args = cpu_grpo_args(output_dir, max_completion_length=12, save_strategy="steps", save_steps=1,
                             per_device_train_batch_size=8, num_generations=4, supervision="process", temperature=1.0)
        return GRPOTrainer(model=model, reward_funcs=get_reward_funcs(["accuracy"], last_number_fallback=True),
                           process_reward_funcs=[reward_model], args=args, train_dataset=STEPS,
                           processing_class=tokenizer, callbacks=[Bomb()])

    return factory


def process_loop(tokenizer, model_dir, out, factory):
    from grpo_ext.rewards.process import step_check_reward

    cfg = IterativeConfig(output_dir=str(out), iterations=2, policy_steps=2, rm_samples=2, rm_steps=3, max_new_tokens=12,
                          last_number_fallback=True, seed=0, supervision="process", prm_rollouts=2, heldout_fraction=0.25)
    return IterativeGRPO(factory, model_dir, make_prm(tokenizer), STEPS.select(range(12)), cfg,
                         reference_reward=step_check_reward)


def test_process_supervision_loop_logs_labels_cost_and_agreement(tiny_model_dir, tiny_tokenizer, tmp_path):
    log = process_loop(tiny_tokenizer, tiny_model_dir, tmp_path, process_factory(tiny_tokenizer)).run()
    assert [m["iterative/iteration"] for m in log] == [0.0, 1.0]
    for m in log:
        assert m["iterative/annotation_rollouts"] > 0 and m["iterative/annotation_tokens"] > 0
        assert 0 <= m["iterative/prm_reference_agreement"] <= 1
        assert 0 <= m["iterative/annotation_reference_agreement"] <= 1
    assert (tmp_path / "reward_model" / "optimizer.pt").exists()


def test_process_supervision_loop_resumes_to_the_straight_runs_result(tiny_model_dir, tiny_tokenizer, tmp_path):
    straight = process_loop(tiny_tokenizer, tiny_model_dir, tmp_path / "straight", process_factory(tiny_tokenizer)).run()
    broken = process_loop(tiny_tokenizer, tiny_model_dir, tmp_path / "resumed",
                          process_factory(tiny_tokenizer, bomb_at=("iteration-1", 1)))
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    resumed = process_loop(tiny_tokenizer, tiny_model_dir, tmp_path / "resumed", process_factory(tiny_tokenizer)).run()
    assert len(resumed) == len(straight) == 2
    for ours, theirs in zip(resumed, straight):
        ours = {k: v for k, v in ours.items() if k != "iterative/annotation_seconds"}
        theirs = {k: v for k, v in theirs.items() if k != "iterative/annotation_seconds"}
        assert ours == pytest.approx(theirs, nan_ok=True)
