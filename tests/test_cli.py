"""The CLI: recipes validate, `grpo-ext train` runs plain / LoRA / QLoRA / under DeepSpeed, resumes,
writes a model card; clear errors for bad recipes."""

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from grpo_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "recipes" / "tiny" / "grpo.yaml")
RECIPES = sorted(
    p for p in glob.glob(str(ROOT / "recipes" / "**" / "*.yaml"), recursive=True)
    if "model_name_or_path" in yaml.safe_load(open(p))
)
ACCELERATE_CONFIGS = sorted(
    p for p in glob.glob(str(ROOT / "recipes" / "**" / "*.yaml"), recursive=True) if p not in RECIPES
)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/grpo-ext-torch-ext"))}
QUICK = ["--max_steps", "2", "--synthetic_size", "64", "--logging_steps", "1", "--save_strategy", "no"]


def run_cli(*args, launcher=(), timeout=900):
    cmd = [*launcher, "-m", "grpo_ext.cli", *args] if launcher else [sys.executable, "-m", "grpo_ext.cli", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=str(ROOT))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_accelerate_configs_live_apart_from_training_recipes():
    # recipes/<model>/ holds training recipes; every accelerate config sits in recipes/accelerate_configs/
    assert ACCELERATE_CONFIGS, "no accelerate config found"
    misplaced = [os.path.relpath(p, ROOT) for p in ACCELERATE_CONFIGS
                 if Path(p).parent != ROOT / "recipes" / "accelerate_configs"]
    assert misplaced == []
    assert {"zero2_cpu.yaml", "zero3_cpu.yaml"} <= {Path(p).name for p in ACCELERATE_CONFIGS}


def test_recipes_are_found():
    names = {os.path.relpath(p, ROOT) for p in RECIPES}
    assert {"recipes/deepseek-math-7b-instruct/grpo/outcome.yaml", "recipes/tiny/grpo.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_recipe_passes_dry_run(recipe, capsys):
    assert main(["train", recipe, "--dry_run", "true"]) == 0
    assert "recipe OK" in capsys.readouterr().out


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_accelerate_configs_load(config):
    from accelerate.commands.config.config_args import load_config_from_file

    assert load_config_from_file(config).num_processes >= 1


def test_paper_recipe_batch_is_1024_completions(capsys):
    main(["train", str(ROOT / "recipes/deepseek-math-7b-instruct/grpo/outcome.yaml"), "--dry_run", "true"])
    assert "16 x 8 x 8 = 1024 completions (16 prompts x 64 generations)" in capsys.readouterr().out


def test_unknown_field_message(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: x\nlearning_rat: 1.0e-6\n")
    main(["train", str(bad)])
    err = capsys.readouterr().err
    assert "unknown field 'learning_rat'" in err and "Did you mean 'learning_rate'?" in err


def test_unknown_command_line_field_is_named(capsys):
    assert main(["train", TINY, "--num_generation", "4"]) == 2
    assert "Did you mean 'num_generations'?" in capsys.readouterr().err


def test_unknown_reward_name_is_rejected(capsys):
    assert main(["train", TINY, "--reward_funcs", "acuracy", "--dry_run", "true"]) == 2
    assert "unknown reward function 'acuracy'" in capsys.readouterr().err


def test_unreadable_recipe_is_reported(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the recipe" in capsys.readouterr().err


def test_bad_batch_arithmetic_is_explained(capsys):
    assert main(["train", TINY, "--dry_run", "true", "--per_device_train_batch_size", "60"]) == 2
    err = capsys.readouterr().err
    assert "multiple of num_generations (8)" in err and len(err.strip().splitlines()) == 1


def test_train_plain_writes_model_and_card(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    log = run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), *QUICK)
    assert "trained 2 steps" in log
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    card = (out / "README.md").read_text()
    assert "grpo-ext" in card and "# Model Card for run" in card
    assert f"fine-tuned version of the local model `{tiny_model_dir}`" in card and "[None]" not in card


def test_train_with_lora_saves_an_adapter(tiny_model_dir, tmp_path):
    out = tmp_path / "lora"
    run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), *QUICK,
            "--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj",
            "--math_eval_datasets", "synthetic_zh", "--math_eval_limit", "8", "--math_eval_steps", "1")
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in history if "eval/synthetic_zh/top1" in h] == [0, 1, 2]  # the callback under PEFT


def test_train_with_qlora_quantizes_the_base_to_4_bit(tiny_model_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "qlora"
    log = run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), *QUICK,
                  "--use_peft", "true", "--load_in_4bit", "true", "--lora_target_modules", "q_proj", "v_proj")
    assert "4-bit linear layers" in log and (out / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("stage", [2, 3])
def test_train_under_accelerate_launch_with_deepspeed(tiny_model_dir, tmp_path, stage):
    pytest.importorskip("deepspeed")
    out = tmp_path / f"zero{stage}"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(ROOT / "recipes" / "accelerate_configs" / f"zero{stage}_cpu.yaml")]
    log = run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), *QUICK,
                  "--math_eval_datasets", "synthetic_en", "--math_eval_limit", "8", "--math_eval_steps", "1",
                  launcher=launcher)
    assert f"DeepSpeed ZeRO-{stage}" in log and (out / "model.safetensors").exists()
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in history if "eval/synthetic_en/top1" in h] == [0, 1, 2]  # parameters gathered


def test_interrupted_run_resumes_from_its_checkpoint(tiny_model_dir, tmp_path):
    out = tmp_path / "resume"
    args = ["train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), "--max_steps", "12",
            "--synthetic_size", "64", "--save_steps", "4", "--logging_steps", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "grpo_ext.cli", *args], env=ENV, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(3000):  # poll for up to ~10 minutes
        if (out / "checkpoint-4" / "trainer_state.json").exists() or proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert not (out / "checkpoint-12").exists(), "the first run finished before it could be interrupted"
    log = run_cli(*args)
    assert "resuming from" in log and "checkpoint-" in log
    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12
    # the wall time adds up both segments: the first one's, saved with checkpoint-4 or later, is carried over
    first = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["stateful_callbacks"]["WallClock"]
    clock = json.loads((out / "trainer_state.json").read_text())["stateful_callbacks"]["WallClock"]["attributes"]
    assert first["attributes"]["segments"] == 1 and clock["segments"] == 2
    assert clock["seconds"] > first["attributes"]["seconds"]
    assert f"wall time: {clock['seconds']:.0f} s over 2 segments (resumed)" in run_cli("report", str(out))


def test_report_command_on_a_trained_run(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), *QUICK,
            "--math_eval_datasets", "synthetic_en", "--math_eval_limit", "8", "--math_eval_steps", "1")
    log = run_cli("report", str(out))
    assert "| eval/synthetic_en/top1 |" in log and (out / "report.png").exists()


def test_report_command_without_a_run_explains(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no trainer_state.json" in capsys.readouterr().err


def test_demo_shortened_run_writes_results_model_and_plots(tmp_path):
    out = tmp_path / "demo"
    run_cli("demo", "--output_dir", str(out), "--warmup_steps", "20", "--grpo_steps", "4", "--eval_pairs", "50",
            "--quiet")
    results = json.loads((out / "results.json").read_text())
    assert set(results["in_domain"]) == {"before", "after"} and set(results["out_of_domain"]) == {"before", "after"}
    assert 0 <= results["in_domain"]["after"] <= 1 and "wall_seconds" in results
    assert (out / "model" / "model.safetensors").exists()
    assert (out / "accuracy.png").stat().st_size > 1000 and (out / "reward.png").stat().st_size > 1000
    assert (out / "report.png").stat().st_size > 1000 and "eval/english/top1" in (out / "report.md").read_text()


def test_eval_command_writes_results_and_a_comparison(tiny_model_dir, tmp_path):
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": f"{a}+{a}=", "answer": f"#### {2 * a}"}) + "\n" for a in range(3)))
    out = tmp_path / "eval"
    args = ["eval", "--model", tiny_model_dir, "--datasets", "gsm8k", "--dataset_path", f"gsm8k={data}",
            "--template", "raw", "--max_new_tokens", "4", "--k", "2", "--output_dir", str(out)]
    log = run_cli(*args)
    assert "| benchmark | n | top1 | maj@2 | pass@2 |" in log and "| gsm8k | 3 |" in log
    results = json.loads((out / "results.json").read_text())
    assert results[0]["benchmark"] == "gsm8k" and len(results[0]["records"]) == 3
    log = run_cli(*args[:-1], str(tmp_path / "again"), "--compare", str(out / "results.json"))
    assert "| gsm8k |" in log and (tmp_path / "again" / "comparison.png").exists()


def test_demo_with_process_supervision_reports_step_correctness(tmp_path):
    out = tmp_path / "demo"
    run_cli("demo", "--supervision", "process", "--output_dir", str(out), "--warmup_steps", "20", "--grpo_steps", "3",
            "--eval_pairs", "40", "--quiet")
    results = json.loads((out / "results.json").read_text())
    assert results["supervision"] == "process" and results["config"]["grpo_lr"] == 1e-4  # the process defaults
    for side in ("in_domain", "out_of_domain"):
        assert all(0 <= v <= 1 for v in results["step_correctness"][side].values())
    history = json.loads((out / "grpo" / "trainer_state.json").read_text())["log_history"]
    assert any("process/frac_steps_correct" in h for h in history)


def test_dry_run_rejects_an_unknown_process_reward(capsys):
    recipe = str(ROOT / "recipes" / "deepseek-math-7b-instruct" / "grpo" / "process.yaml")
    assert main(["train", recipe, "--dry_run", "true", "--process_reward", "steps"]) == 2
    assert "unknown process reward 'steps'" in capsys.readouterr().err


def test_train_iterative_runs_the_loop_and_saves_the_policy(tiny_model_dir, tmp_path):
    out = tmp_path / "iterative"
    log = run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), "--synthetic_size",
                  "64", "--logging_steps", "1", "--save_strategy", "no", "--iterative", "true",
                  "--reward_model_name_or_path", tiny_model_dir, "--iterations", "2", "--iteration_steps", "1",
                  "--rm_questions", "8", "--rm_steps", "2", "--rm_batch_size", "8", "--per_device_train_batch_size", "8")
    assert "iterative RL: 2 reward-model updates" in log
    rows = [json.loads(line) for line in (out / "iterative_log.jsonl").read_text().splitlines()]
    assert [r["iterative/iteration"] for r in rows] == [0.0, 1.0]
    assert (out / "model" / "model.safetensors").exists() and (out / "reward_model" / "optimizer.pt").exists()


def test_iterative_recipe_without_a_reward_model_is_explained(capsys):
    assert main(["train", TINY, "--dry_run", "true", "--iterative", "true"]) == 2
    assert "needs reward_model_name_or_path" in capsys.readouterr().err


def test_demo_iterative_logs_the_reward_model_updates(tmp_path):
    out = tmp_path / "demo"
    run_cli("demo", "--iterative", "true", "--output_dir", str(out), "--warmup_steps", "20", "--grpo_steps", "2",
            "--eval_pairs", "40", "--rm_steps", "3", "--rm_questions", "16", "--quiet")
    results = json.loads((out / "results.json").read_text())
    assert [m["iterative/iteration"] for m in results["iterative"]] == [-1.0, 0.0, 1.0]  # before RL, then 2 iterations
    assert 0 <= results["in_domain"]["after"] <= 1


def test_train_iterative_under_deepspeed_zero3(tiny_model_dir, tmp_path):
    # a fresh DeepSpeed trainer per iteration; the reward model stays whole; the reference is loaded from
    # the previous iteration's saved policy
    pytest.importorskip("deepspeed")
    out = tmp_path / "iterative-zero3"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(ROOT / "recipes" / "accelerate_configs" / "zero3_cpu.yaml")]
    log = run_cli("train", TINY, "--model_name_or_path", tiny_model_dir, "--output_dir", str(out), "--synthetic_size",
                  "64", "--logging_steps", "1", "--save_strategy", "no", "--iterative", "true",
                  "--reward_model_name_or_path", tiny_model_dir, "--iterations", "2", "--iteration_steps", "1",
                  "--rm_questions", "8", "--rm_steps", "2", "--rm_batch_size", "8", "--per_device_train_batch_size", "8",
                  launcher=launcher)
    assert "iterative RL: 2 reward-model updates" in log
    assert (out / "iteration-1" / "policy" / "model.safetensors").exists()


def _eval_error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["eval", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo-ext eval: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_eval_names_a_missing_model_folder(capsys, tmp_path):
    err = _eval_error(capsys, "--model", str(tmp_path / "nonexistent"), "--datasets", "gsm8k")
    assert f"--model {tmp_path / 'nonexistent'}: no such folder" in err


def test_eval_offline_names_the_dataset_path_flag(capsys, tiny_model_dir):
    # HF_HUB_OFFLINE=1 (conftest): said at once, naming the CLI flag rather than the Python API's path=
    err = _eval_error(capsys, "--model", tiny_model_dir, "--datasets", "gsm8k", "--template", "raw")
    assert "--dataset_path gsm8k=FILE" in err and "path=" not in err.replace("--dataset_path", "")


def test_eval_offline_with_a_hub_model_id_says_so(capsys, tmp_path):
    data = tmp_path / "gsm8k.jsonl"
    data.write_text(json.dumps({"question": "1+1=", "answer": "#### 2"}) + "\n")
    err = _eval_error(capsys, "--model", "deepseek-ai/deepseek-math-7b-instruct", "--datasets", "gsm8k",
                      "--dataset_path", f"gsm8k={data}")
    assert "--model deepseek-ai/deepseek-math-7b-instruct: not a local folder" in err and "offline" in err


def test_eval_template_error_names_the_flag(capsys, tiny_model_dir, tmp_path):
    data = tmp_path / "gsm8k.jsonl"
    data.write_text(json.dumps({"question": "1+1=", "answer": "#### 2"}) + "\n")
    err = _eval_error(capsys, "--model", tiny_model_dir, "--datasets", "gsm8k", "--dataset_path", f"gsm8k={data}",
                      "--template", "txt")
    assert "--template txt: unknown; known: chat, text, plain, raw" in err


def test_eval_chat_template_missing_names_the_flag(capsys, tiny_model_dir, tmp_path):
    import shutil

    plain = tmp_path / "no-chat-template"
    shutil.copytree(tiny_model_dir, plain)
    for name in ("chat_template.jinja",):
        (plain / name).unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    data = tmp_path / "gsm8k.jsonl"
    data.write_text(json.dumps({"question": "1+1=", "answer": "#### 2"}) + "\n")
    err = _eval_error(capsys, "--model", str(plain), "--datasets", "gsm8k", "--dataset_path", f"gsm8k={data}")
    assert "--template chat: the tokenizer of" in err and "pass --template text" in err


def test_eval_dataset_path_must_exist(capsys, tiny_model_dir, tmp_path):
    err = _eval_error(capsys, "--model", tiny_model_dir, "--datasets", "gsm8k", "--dataset_path",
                      f"gsm8k={tmp_path / 'missing.jsonl'}")
    assert "no such file or folder" in err


def test_train_help_lists_the_fields_grouped(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    titles = [line for line in out.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert titles == ["script arguments (grpo-ext: data, rewards, launch):", "GRPOConfig: grpo-ext's fields:",
                      "GRPOConfig: TRL's GRPO fields:", "GRPOConfig: transformers' TrainingArguments:",
                      "model (trl.ModelConfig):"]
    for field_line in ("  --reward_strict bool  (default False)", "  --kl_estimator str  (default 'k3')",
                       "  --num_generations ", "  --learning_rate float", "  --model_name_or_path "):
        assert field_line in out, field_line


def test_train_recipe_help_shows_resolved_values_and_their_source(capsys):
    assert main(["train", TINY, "--learning_rate", "1e-5", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  learning_rate: 1e-05   [command line]" in out
    assert "  dataset_name: 'synthetic_en'   [recipe]" in out
    assert "  dataset_split: 'train'\n" in out  # the default, unmarked


@pytest.mark.parametrize("command", [[], ["demo"], ["eval"], ["report"], ["tiny-model"], ["train"]],
                         ids=lambda c: " ".join(c) or "grpo-ext")
def test_help_imports_neither_torch_nor_trl(command, tmp_path):
    # --help answers without the seconds that importing torch and TRL take (train's field list is cached
    # after its first call, made here first)
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path)}
    if command == ["train"]:
        subprocess.run([sys.executable, "-m", "grpo_ext.cli", "train", "--help"], env=env, check=True,
                       capture_output=True)
    probe = ("import sys, contextlib, io\nfrom grpo_ext.cli import main\n"
             f"with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main({[*command, '--help']!r})\n"
             "    except SystemExit:\n        pass\nprint(sorted({'torch', 'trl', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=str(ROOT))
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr[-2000:]


def test_gpu_recipe_help_resolves_on_a_cpu_only_machine(capsys):
    from grpo_ext.config import _has_accelerator

    if _has_accelerator():
        pytest.skip("this machine has an accelerator: the recipe's bf16 resolves as written")
    recipe = str(ROOT / "recipes" / "deepseek-math-7b-instruct" / "grpo" / "outcome.yaml")
    assert main(["train", recipe, "--help"]) == 0
    out = capsys.readouterr().out
    assert "  bf16: False   [on this CPU; recipe: True]" in out and "  learning_rate: 1e-06   [recipe]" in out
