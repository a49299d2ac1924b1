"""top-1, maj@k and pass@k on hand-made samples; an end-to-end evaluation of the tiny model."""

import json
import math
import os

import pytest
from datasets import Dataset

from grpo_ext.data.synthetic import synthetic_dataset
from grpo_ext.evaluation import (
    compare_results,
    equivalence_groups,
    evaluate,
    majority_vote,
    pass_at_k,
    results_table,
    save_results,
    score_samples,
)
from grpo_ext.tiny import build_tiny_model


@pytest.mark.parametrize("n, c, k", [(5, 2, 2), (10, 3, 1), (10, 3, 5), (20, 0, 4), (8, 8, 3), (5, 4, 2)])
def test_pass_at_k_matches_the_closed_form(n, c, k):
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_by_hand():
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(3, 1, 4)


def test_equivalent_answers_form_one_group():
    assert equivalence_groups(["\\frac{1}{2}", "3", "0.5", "1/2"]) == [[0, 2, 3], [1]]


def test_majority_counts_equivalent_answers_as_one_vote():
    assert majority_vote(["3", "\\frac{1}{2}", "0.5"]) == 1


def test_majority_tie_goes_to_the_earliest_group():
    assert majority_vote(["1/2", "0.5", "3", "3"]) == 0
    assert majority_vote(["3", "1/2", "0.5", "3"]) == 0


def test_missing_answers_do_not_vote():
    assert majority_vote([None, None, "4"]) == 2
    assert majority_vote([None, None]) is None


def test_scores_from_hand_made_samples():
    greedy = ["\\boxed{2}", "\\boxed{5}"]
    samples = [["\\boxed{2}", "\\boxed{3}", "\\boxed{3}", "\\boxed{\\frac{4}{2}}"],
               ["\\boxed{1}", "\\boxed{1}", "\\boxed{7}", "no answer"]]
    records = score_samples(greedy, samples, ["2", "7"], k=4)
    assert [r["top1"] for r in records] == [1.0, 0.0]
    # question 1: {2, 4/2} and {3} tie at 2 votes, the earlier group wins; question 2: 1 beats 7
    assert [r["maj"] for r in records] == [1.0, 0.0]
    assert [r["pass_k"] for r in records] == [1.0, 1.0]


def test_pass_at_k_uses_all_samples_when_n_exceeds_k():
    samples = [["\\boxed{2}", "\\boxed{3}", "\\boxed{3}", "\\boxed{2}"]]
    (record,) = score_samples(None, samples, ["2"], k=2)
    assert record["pass_k"] == pytest.approx(1 - 1 / 6)  # n=4, c=2: 1 - C(2,2)/C(4,2)
    assert record["maj"] == 1.0  # first k=2 samples: 2 and 3 tie, 2 came first


def test_table_and_comparison_in_points(tmp_path):
    before = {"benchmark": "gsm8k", "k": 1, "metrics": {"n": 10, "top1": 0.829}, "by": {}}
    after = {"benchmark": "gsm8k", "k": 1, "metrics": {"n": 10, "top1": 0.882}, "by": {}}
    assert "| gsm8k | 10 | 82.9 |" in results_table(before)
    table = compare_results(before, after, output_dir=str(tmp_path))
    assert "| gsm8k | 82.9 | 88.2 | +5.3 |" in table
    assert os.path.getsize(tmp_path / "comparison.png") > 1000


def test_comparison_without_common_benchmarks_is_explained():
    a = {"benchmark": "gsm8k", "metrics": {"n": 1, "top1": 0.5}}
    b = {"benchmark": "cmath", "metrics": {"n": 1, "top1": 0.5}}
    with pytest.raises(ValueError, match="no benchmark in common"):
        compare_results(a, b)


def test_dataset_without_answers_is_rejected(tiny_tokenizer):
    model = build_tiny_model(tiny_tokenizer)
    with pytest.raises(ValueError, match="no 'answer' column"):
        evaluate(model, tiny_tokenizer, Dataset.from_list([{"prompt": "1+1="}]))


def test_conversational_prompts_need_a_chat_template(tiny_tokenizer):
    model = build_tiny_model(tiny_tokenizer)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "1+1="}], "answer": "2"}])
    with pytest.raises(ValueError, match="no chat template"):
        evaluate(model, tiny_tokenizer, ds)


def test_tiny_model_evaluates_end_to_end(tiny_tokenizer, tmp_path):
    model = build_tiny_model(tiny_tokenizer)
    ds = synthetic_dataset(12, language="zh", style="compact", seed=0, num_steps=1)
    result = evaluate(model, tiny_tokenizer, ds, k=4, max_new_tokens=4, last_number_fallback=True,
                      group_by=("num_steps",))
    assert result["benchmark"] == "synthetic_zh"
    assert set(result["metrics"]) == {"n", "top1", "maj@4", "pass@4", "no_answer", "no_gold"}
    assert len(result["records"]) == 12 and len(result["records"][0]["sample_answers"]) == 4
    paths = save_results([result], str(tmp_path))
    assert json.load(open(paths["json"]))[0]["metrics"] == result["metrics"]
    assert open(paths["markdown"]).read().startswith("| benchmark | n | top1 | maj@4 | pass@4 |")


def test_evaluation_leaves_the_global_rng_alone(tiny_tokenizer):
    import torch

    model = build_tiny_model(tiny_tokenizer)
    ds = synthetic_dataset(4, style="compact", seed=0, num_steps=1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate(model, tiny_tokenizer, ds, k=2, max_new_tokens=3)
    assert torch.equal(torch.rand(3), expected)


def test_no_answer_is_reported_per_benchmark():
    from grpo_ext.evaluation import score_samples, summarise

    records = score_samples(["\\boxed{3}", "I cannot tell.", "#### 5", "no idea"], None, ["3", "4", "5", "6"], k=1)
    assert summarise(records, 1) == {"n": 4, "top1": 0.5, "no_answer": 0.5}


def test_no_answer_counts_samples_when_there_is_no_greedy_completion():
    from grpo_ext.evaluation import score_samples, summarise

    records = score_samples(None, [["\\boxed{3}", "no idea"], ["hmm", "what?"]], ["3", "4"], k=2)
    assert summarise(records, 2)["no_answer"] == 0.75
