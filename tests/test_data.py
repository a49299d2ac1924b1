"""Benchmark loaders on made-up rows in each dataset's own format, templates, and synthetic tasks."""

import json

import pytest
from datasets import Dataset

from grpo_ext.data import COT_INSTRUCTION_EN, COT_INSTRUCTION_ZH, format_prompt, load_math_dataset
from grpo_ext.data.synthetic import Problem, check_step, generate_problems, synthetic_dataset, to_dataset
from grpo_ext.tiny import build_char_tokenizer

GSM8K_ROWS = [
    {"question": "Mia has 12 shells and finds 1,300 more. How many shells?",
     "answer": "She has 12+1300=<<12+1300=1312>>1312 shells.\n#### 1,312"},
    {"question": "A box holds 4 pens. How many pens in 3 boxes?", "answer": "3*4=<<3*4=12>>12\n#### 12"},
]
MATH_ROWS = [
    {"problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.", "solution": "The sum is $\\boxed{\\frac{3}{4}}$.",
     "level": "Level 1", "type": "Prealgebra"},
    {"problem": "Solve $x^2=4$ for $x>0$.", "solution": "So $x=\\boxed{2}$, not $\\boxed{-2}$... final: $\\boxed{2}$",
     "level": "Level 2", "type": "Algebra"},
]
MATH500_ROWS = [
    {"problem": "What is $\\sqrt{16}$?", "solution": "$\\boxed{4}$", "answer": "4", "subject": "Algebra", "level": 1,
     "unique_id": "test/algebra/1.json"},
]
CMATH_ROWS = [
    {"id": "1", "grade": "2", "reasoning_step": "1", "question": "小明有3个苹果，又买了2个，现在有几个苹果？",
     "golden": "5"},
]
MGSM_ROWS = [
    {"question": "小红有10元，花了4元，还剩多少元？", "answer": None, "answer_number": 6, "equation_solution": None},
]


@pytest.fixture
def files(tmp_path):
    def jsonl(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    math_dir = tmp_path / "math"
    math_dir.mkdir()
    (math_dir / "part.json").write_text(json.dumps(MATH_ROWS), encoding="utf-8")
    Dataset.from_list(MATH500_ROWS).to_parquet(str(tmp_path / "math500.parquet"))
    Dataset.from_list(MGSM_ROWS).to_parquet(str(tmp_path / "mgsm.parquet"))
    return {
        "gsm8k": jsonl("gsm8k.jsonl", GSM8K_ROWS),
        "math": str(math_dir),
        "math500": str(tmp_path / "math500.parquet"),
        "cmath": jsonl("cmath.jsonl", CMATH_ROWS),
        "mgsm_zh": str(tmp_path / "mgsm.parquet"),
    }


def test_gsm8k_gold_is_the_number_after_hashes_without_commas(files):
    ds = load_math_dataset("gsm8k", path=files["gsm8k"])
    assert ds["answer"] == ["1312", "12"]


def test_gsm8k_solution_loses_calculator_notes(files):
    ds = load_math_dataset("gsm8k", path=files["gsm8k"])
    assert ds[0]["solution"] == "She has 12+1300=1312 shells."


def test_math_gold_is_the_last_box_of_the_solution(files):
    ds = load_math_dataset("math", path=files["math"])
    assert ds["answer"] == ["\\frac{3}{4}", "2"]


def test_math_keeps_level_and_subject(files):
    ds = load_math_dataset("math", path=files["math"])
    assert ds[0]["level"] == "Level 1" and ds[0]["subject"] == "Prealgebra"


def test_math500_keeps_its_answer_subject_and_level(files):
    row = load_math_dataset("math500", path=files["math500"])[0]
    assert (row["answer"], row["subject"], row["level"], row["source"]) == ("4", "Algebra", "1", "math500")


def test_cmath_gold_grade_and_chinese_text_round_trip(files):
    row = load_math_dataset("cmath", path=files["cmath"], template="text")[0]
    assert row["answer"] == "5" and row["grade"] == "2"
    assert row["prompt"] == CMATH_ROWS[0]["question"] + "\n" + COT_INSTRUCTION_ZH


def test_mgsm_zh_gold_is_answer_number(files):
    row = load_math_dataset("mgsm_zh", path=files["mgsm_zh"])[0]
    assert row["answer"] == "6" and row["source"] == "mgsm_zh"


def test_every_dataset_has_prompt_answer_source(files):
    for name, path in files.items():
        ds = load_math_dataset(name, path=path)
        assert {"prompt", "answer", "source"} <= set(ds.column_names), name


def test_chat_template_is_conversational_with_the_english_cot_instruction(files):
    prompt = load_math_dataset("gsm8k", path=files["gsm8k"])[0]["prompt"]
    assert prompt == [{"role": "user", "content": GSM8K_ROWS[0]["question"] + "\n" + COT_INSTRUCTION_EN}]


def test_chinese_datasets_get_the_chinese_instruction(files):
    prompt = load_math_dataset("mgsm_zh", path=files["mgsm_zh"])[0]["prompt"]
    assert prompt[0]["content"].endswith(COT_INSTRUCTION_ZH)


def test_plain_template_for_base_models():
    assert format_prompt("What is 2+2?", "plain") == "Question: What is 2+2?\nAnswer:"


def test_mixed_training_set_concatenates_sources(files):
    ds = load_math_dataset("gsm8k+math", path={"gsm8k": files["gsm8k"], "math": files["math"]})
    assert ds["source"] == ["gsm8k", "gsm8k", "math", "math"]
    assert ds["level"] == [None, None, "Level 1", "Level 2"]


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'gsm9k'; known: \['cmath', 'gsm8k', 'math', 'math500', 'mgsm_zh'\]"):
        load_math_dataset("gsm9k")


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['answer'\]"):
        load_math_dataset("gsm8k", path=str(path))


def test_empty_split_is_an_error(tmp_path):
    path = tmp_path / "empty.parquet"
    Dataset.from_dict({"question": [], "answer": []}).to_parquet(str(path))
    with pytest.raises(ValueError, match="is empty"):
        load_math_dataset("gsm8k", path=str(path))


def test_offline_hub_load_names_path():
    with pytest.raises(RuntimeError, match="Pass path="):
        load_math_dataset("gsm8k")


def test_unknown_template_is_rejected():
    with pytest.raises(ValueError, match="unknown template"):
        load_math_dataset("gsm8k", template="fancy")


# ----- synthetic tasks -------------------------------------------------------------------------
def test_problem_values_and_equations():
    p = Problem(start=5, ops=[("+", 3), ("*", 2), ("-", 4)])
    assert p.answer == 12
    assert p.equations() == ["5 + 3 = 8", "8 * 2 = 16", "16 - 4 = 12"]


def test_same_seed_same_problems_in_both_languages():
    en = synthetic_dataset(20, language="en", seed=3)
    zh = synthetic_dataset(20, language="zh", seed=3)
    assert en["answer"] == zh["answer"] and en["num_steps"] == zh["num_steps"]


def test_english_word_form_ends_in_gsm8k_hashes():
    row = to_dataset([Problem(start=5, ops=[("+", 3)])], "en", "word")[0]
    assert row["question"] == "Tom has 5 apples. Then Tom gets 3 more apples. How many apples does Tom have now?"
    assert row["solution"] == "5 + 3 = 8\n#### 8"


def test_chinese_word_form_ends_in_answer_is():
    row = to_dataset([Problem(start=5, ops=[("-", 2)])], "zh", "word")[0]
    assert row["question"] == "小明有5个苹果。他送出2个。小明现在有多少个苹果？"
    assert row["solution"] == "5 - 2 = 3\n答案是 3"


def test_compact_forms():
    p = Problem(start=12, ops=[("+", 34)])
    assert to_dataset([p], "en", "compact")[0]["prompt"] == "12+34="
    assert to_dataset([p], "zh", "compact")[0]["prompt"] == "12加34等于"


def test_difficulty_controls_steps_and_operands():
    problems = generate_problems(200, seed=0, num_steps=(2, 4), operand_range=(10, 30), ops=("+", "-"))
    assert {len(p.ops) for p in problems} == {2, 3, 4}
    assert all(10 <= p.start <= 30 and all(b <= 30 for _, b in p.ops) for p in problems)
    assert all(v >= 0 for p in problems for v in p.values())


def test_every_solution_line_checks_out():
    for row in synthetic_dataset(50, seed=1):
        lines = row["solution"].splitlines()
        assert all(check_step(line) for line in lines[:-1]) and check_step(lines[-1]) is None


def test_step_checker_catches_a_wrong_step():
    assert check_step("5 + 3 = 9") is False


def test_tiny_tokenizer_round_trips_every_synthetic_character():
    tok = build_char_tokenizer()
    for language in ("en", "zh"):
        for row in synthetic_dataset(30, language=language, seed=2):
            text = row["question"] + "\n" + row["solution"]
            assert tok.decode(tok(text)["input_ids"]) == text


def test_steps_style_answers_with_one_equation_per_line():
    from grpo_ext.data.synthetic import Problem, render

    problem = Problem(start=12, ops=[("+", 34), ("*", 2)])
    assert render(problem, "en", "steps") == ("(12+34)*2=", "12+34=46\n46*2=92")
    assert render(problem, "zh", "steps") == ("(12加34)乘2等于", "12+34=46\n46*2=92")
