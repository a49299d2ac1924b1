"""Bad input to the CLI, the data loaders and the report: one line naming the flag or file, exit 2,
and nothing loaded that the check does not need (no case here reaches a model: none exists)."""

import json
import logging
from pathlib import Path

import pytest

from grpo_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "recipes" / "tiny" / "grpo.yaml")
NO_MODEL = "/nonexistent/model"  # a check that loaded the model would fail differently


def files(tmp: Path) -> dict[str, str]:
    (tmp / "empty.jsonl").write_text("")
    (tmp / "data.csv").write_text("question,answer\n1+1,2\n")
    (tmp / "columns.jsonl").write_text(json.dumps({"q": "1+1", "a": "2"}) + "\n")
    (tmp / "latin1.jsonl").write_bytes(json.dumps({"question": "x", "answer": "#### 1"}).encode() + b"\n\xe9\xff\n")
    (tmp / "latin1.yaml").write_bytes(b"learning_rate: 1.0e-5\n# caf\xe9\n")
    (tmp / "a_file").write_text("not a folder")
    (tmp / "run").mkdir()
    (tmp / "run" / "trainer_state.json").write_text("[1, 2]")
    (tmp / "cut").mkdir()
    (tmp / "cut" / "trainer_state.json").write_text('{"log_history": [{"step": 1, "loss"')
    return {name: str(tmp / name) for name in ("empty.jsonl", "data.csv", "columns.jsonl", "latin1.jsonl", "latin1.yaml",
                                              "a_file", "run", "cut")}


def train(*args, dry=True):
    return ["train", TINY, "--model_name_or_path", NO_MODEL, *args] + (["--dry_run", "true"] if dry else [])


CASES = {
    "unknown reward, dry run": (lambda f: train("--reward_funcs", "acuracy"), "unknown reward function 'acuracy'"),
    "unknown reward": (lambda f: train("--reward_funcs", "acuracy", dry=False), "unknown reward function 'acuracy'"),
    "non-UTF-8 recipe": (lambda f: ["train", f["latin1.yaml"]], "is not UTF-8 text"),
    "output_dir under a file, dry run": (lambda f: train("--output_dir", f["a_file"] + "/out"), "is a file, not a folder"),
    "output_dir under a file": (lambda f: train("--output_dir", f["a_file"] + "/out", dry=False), "is a file, not a folder"),
    "empty jsonl, dry run": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", f["empty.jsonl"]), "is empty"),
    "empty jsonl": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", f["empty.jsonl"], dry=False), "is empty"),
    "csv file": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", f["data.csv"]), "not a .json, .jsonl or .parquet"),
    "missing path, dry run": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", "/no/such.jsonl"), "does not exist"),
    "missing named path, dry run": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", "gsm8k=/no/such.jsonl"),
                                    "does not exist"),
    "wrong columns": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", f["columns.jsonl"], dry=False),
                      "missing the column(s) ['question', 'answer']"),
    "non-UTF-8 data": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", f["latin1.jsonl"], dry=False),
                       "line 2 is not UTF-8 text"),
    "two plain paths": (lambda f: train("--dataset_name", "gsm8k", "--dataset_path", "a.jsonl,b.jsonl"), "give one path"),
    "eval: empty jsonl": (lambda f: ["eval", "--model", f["run"], "--datasets", "gsm8k", "--dataset_path",
                                     "gsm8k=" + f["empty.jsonl"]], "is empty"),
    "eval: csv file": (lambda f: ["eval", "--model", f["run"], "--datasets", "gsm8k", "--dataset_path",
                                  "GSM8K=" + f["data.csv"]], "not a .json, .jsonl or .parquet"),
    "report: the same run twice": (lambda f: ["report", f["run"], f["run"] + "/"], "was given twice"),
    "report: a state holding a list": (lambda f: ["report", f["run"]], "is not a trainer state"),
    "report: a cut-off state": (lambda f: ["report", f["cut"]], "trainer_state.json is not valid JSON"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gives_one_line_and_exit_2(case, tmp_path, capsys):
    make_argv, expected = CASES[case]
    argv = make_argv(files(tmp_path))
    logging.disable(logging.WARNING)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse-level errors of eval exit from the parser
        code = exit_.code
    finally:
        logging.disable(logging.NOTSET)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and "Traceback" not in err and err.count("\n") == 1, err


# ----- their neighbours: what works, or what is left out and counted -----------------------------
def write_state(folder: Path, steps: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": s, "loss": 0.1} for s in steps]}))


def test_report_takes_the_newest_numbered_checkpoint_whatever_the_folder_is_called(tmp_path):
    from grpo_ext.report import find_trainer_state

    run = tmp_path / "checkpoint-1-sweep"
    write_state(run / "checkpoint-10", [10])
    write_state(run / "checkpoint-20", [20])
    write_state(run / "checkpoint-best", [99])
    assert find_trainer_state(str(run)).endswith("checkpoint-20/trainer_state.json")


def test_report_passes_over_a_half_written_newest_checkpoint(tmp_path):
    from grpo_ext.report import load_log_history

    write_state(tmp_path / "checkpoint-10", [10])
    (tmp_path / "checkpoint-20").mkdir()
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text('{"log_history": [')
    history, _ = load_log_history(str(tmp_path))
    assert [h["step"] for h in history] == [10]


def rows_file(tmp_path: Path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name, rows", [
    ("gsm8k", [{"question": "q1", "answer": "so 2\n#### 2"}, {"question": "q2", "answer": "no marker, 7"},
               {"question": "q3", "answer": None}]),
    ("cmath", [{"question": "q1", "golden": "2"}, {"question": "q2", "golden": None}]),
    ("mgsm_zh", [{"question": "q1", "answer_number": 2}, {"question": "q2", "answer_number": None}]),
    ("math", [{"problem": "q1", "solution": "so $\\boxed{2}$"}, {"problem": "q2", "solution": "no box: 7"}]),
], ids=["gsm8k", "cmath", "mgsm_zh", "math"])
def test_rows_without_a_gold_keep_none_never_the_string(name, rows, tmp_path):
    from grpo_ext.data import drop_rows_without_gold, load_math_dataset

    ds = load_math_dataset(name, path=rows_file(tmp_path, f"{name}.jsonl", rows), template="raw")
    assert ds["answer"][0] == "2" and all(a is None for a in ds["answer"][1:])
    kept, dropped = drop_rows_without_gold(ds)
    assert len(kept) == 1 and dropped == len(rows) - 1


def test_none_is_never_a_gold_that_rewards_none():
    from grpo_ext.rewards import accuracy_reward

    assert accuracy_reward(["\\boxed{None}"], answer=[None]) == [None]


def test_evaluate_leaves_out_rows_without_a_gold_and_counts_them(tiny_model_dir):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grpo_ext.evaluation import evaluate

    ds = Dataset.from_list([{"prompt": "1+1=", "answer": "2"}, {"prompt": "2+2=", "answer": None}])
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    result = evaluate(model, tok, ds, max_new_tokens=2)
    assert result["metrics"]["n"] == 1 and result["metrics"]["no_gold"] == 1


def script_args(**fields):
    from grpo_ext.cli.train import ScriptArguments

    return ScriptArguments(**fields)


def test_a_path_with_an_equals_sign_is_a_path():
    from grpo_ext.cli.train import _dataset_paths

    assert _dataset_paths(script_args(dataset_path="data/split=train/x.jsonl")) == ("data/split=train/x.jsonl", {})


def test_benchmark_names_in_dataset_path_ignore_case():
    from grpo_ext.cli.train import _dataset_paths

    assert _dataset_paths(script_args(dataset_path="GSM8K=a.jsonl,Math=b=c.jsonl")) == (None, {"gsm8k": "a.jsonl",
                                                                                              "math": "b=c.jsonl"})


def test_held_out_evaluation_never_reuses_the_training_file():
    from grpo_ext.cli.train import _paths_for

    args = script_args(dataset_name="gsm8k", dataset_path="train.jsonl")
    assert _paths_for(args, "gsm8k", evaluation=False) == "train.jsonl"
    assert _paths_for(args, "gsm8k", evaluation=True) is None
    named = script_args(dataset_name="gsm8k", dataset_path="gsm8k=train.jsonl,cmath=test.jsonl")
    assert _paths_for(named, "cmath", evaluation=True) == {"cmath": "test.jsonl"}


def test_wall_clock_takes_its_restored_seconds():
    from grpo_ext.callbacks import WallClock

    clock = WallClock()
    clock.seconds = 12.5  # what transformers does with restore_callback_states_from_checkpoint
    assert clock.seconds == 12.5 and clock.previous == 12.5


@pytest.mark.parametrize("field, share, expected", [("logging_steps", 0.05, 5), ("eval_steps", 0.25, 25)])
def test_math_eval_interval_reads_a_fractional_setting_in_steps(field, share, expected):
    from types import SimpleNamespace

    from grpo_ext.callbacks import MathEvalCallback

    callback = MathEvalCallback.__new__(MathEvalCallback)
    callback.eval_steps = None
    args = SimpleNamespace(**{"eval_steps": None, "logging_steps": None, field: share})
    state = SimpleNamespace(eval_steps=25, logging_steps=5)  # transformers' ceil(max_steps * share), 100 steps
    assert callback._every(args, state) == expected
