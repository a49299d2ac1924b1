"""The CPU demo as a newcomer meets it: knobs checked before any work, quiet output, the paper's figure 7
(maj@k / pass@k before and after), Ctrl-C and resume, the same numbers twice for a seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grpo_ext.cli import main
from grpo_ext.report import find_trainer_state
from grpo_ext.demo import STATE_FILE, DemoConfig, DemoConfigError, DemoInterrupted, GracefulInterrupt, run_demo

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SMALL = dict(warmup_steps=20, grpo_steps=4, eval_pairs=40, sample_k=4)
SMALL_FLAGS = ["--warmup_steps", "20", "--grpo_steps", "4", "--eval_pairs", "40", "--sample_k", "4"]


def small(tmp_path, name="demo", **overrides) -> DemoConfig:
    return DemoConfig(output_dir=str(tmp_path / name), progress=False, **{**SMALL, **overrides})


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One small demo run from start to end, shared by the tests that compare with it (results, folder)."""
    folder = tmp_path_factory.mktemp("straight-demo")
    return run_demo(small(folder, "straight")), folder / "straight"


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "grpo_ext.cli", "demo", *args], capture_output=True, text=True,
                          env=ENV, cwd=str(ROOT), timeout=timeout)


@pytest.mark.parametrize("flag, value, expected", [
    ("--warmup_steps", "-3", "--warmup_steps -3: it must be at least 1"),
    ("--grpo_steps", "-3", "--grpo_steps -3: it must be at least 1"),
    ("--grpo_steps", "0", "--grpo_steps 0: it must be at least 1"),
    ("--num_generations", "0", "--num_generations 0: it must be at least 2"),
    ("--grpo_batch_size", "7", "--grpo_batch_size 7: it must be a multiple of --num_generations (8)"),
    ("--eval_pairs", "0", "--eval_pairs 0: it must be between 1 and 5000"),
    ("--grpo_lr", "0", "--grpo_lr 0.0: it must be a positive number"),
    ("--beta", "-0.1", "--beta -0.1: it must be 0 or more"),
    ("--sample_k", "-1", "--sample_k -1: it must be 0"),
])
def test_a_bad_knob_is_one_line_before_any_work(tmp_path, capsys, flag, value, expected):
    out = tmp_path / "demo"
    assert main(["demo", "--output_dir", str(out), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo-ext demo: " + expected) and err.count("\n") == 1, err
    assert not out.exists()  # nothing was built, trained or written


def test_a_flag_is_never_taken_as_an_abbreviation(tmp_path, capsys):
    # argparse would read --steps as --steps_task; an unknown flag is refused instead, in one line
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--output_dir", str(tmp_path / "demo"), "--steps", "-3"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --steps -3" in err and err.count("\n") == 1


def test_quiet_demo_prints_the_table_and_nothing_else(tmp_path):
    out = cli("--output_dir", str(tmp_path / "demo"), *SMALL_FLAGS, "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == ""  # no warning, no library log, no bar
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert lines[0] == "| form | metric | before | after | delta |"
    assert all(line.startswith("|") for line in lines[:-1]) and lines[-1].startswith("wall time")


def test_demo_shows_its_stages_without_library_noise(tmp_path):
    out = cli("--output_dir", str(tmp_path / "demo"), *SMALL_FLAGS)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    for stage in ("[1/4]", "[2/4]", "[3/4]", "[4/4]", "warm-up:", "GRPO:", "evaluating before GRPO", "| form |"):
        assert stage in text, stage
    for noise in ("{'loss'", "Warning", "Tokenizing", "Adding EOS", "Loading weights", "Writing model shards",
                  "gemm_4bit_forward", "Setting accelerator to CPU", "Traceback"):
        assert noise not in text, noise


def test_results_have_majority_and_pass_at_k_before_and_after(straight):
    results, folder = straight
    sampled = results["sampled"]
    assert sampled["k"] == 4 and sampled["temperature"] == 0.7
    for side in ("in_domain", "out_of_domain"):
        for metric in ("maj@4", "pass@4"):
            assert set(sampled[side][metric]) == {"before", "after"}
        for when in ("before", "after"):  # pass@k counts any right sample: never below the majority's answer
            assert sampled[side]["pass@4"][when] >= sampled[side]["maj@4"][when]
    assert "| english (in domain) | maj@4 |" in results["table"] and "| chinese (out of domain) | pass@4 |" in results["table"]
    saved = json.loads((folder / "results.json").read_text())
    assert saved["sampled"] == sampled and saved["table"] == results["table"]


def test_the_same_seed_gives_the_same_numbers_twice_in_a_row(straight):
    first, folder = straight
    cfg = small(folder.parent, folder.name)
    again = run_demo(cfg)  # a finished run is redone from the start, not read back
    assert again["segments"] == 1
    for key in ("in_domain", "out_of_domain", "sampled"):
        assert again[key] == first[key], key


def test_sample_k_zero_reports_top1_only(tmp_path):
    results = run_demo(small(tmp_path, sample_k=0))
    assert "sampled" not in results and "maj@" not in results["table"]


def _interrupt_at(monkeypatch, stage: str, step: int):
    """Send this process a real SIGINT at the end of ``step`` of ``stage``, once."""
    original = GracefulInterrupt.on_step_end
    fired = []

    def on_step_end(self, args, state, control, **kwargs):
        if self.stage == stage and state.global_step == step and not fired:
            fired.append(step)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(GracefulInterrupt, "on_step_end", on_step_end)


@pytest.mark.parametrize("stage, step", [("warm-up", 7), ("GRPO", 2)])
def test_interrupted_stage_resumes_to_the_straight_runs_result(straight, tmp_path, monkeypatch, stage, step):
    found = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background shell (nohup, a scheduler)
    straight, straight_folder = straight
    _interrupt_at(monkeypatch, stage, step)
    cfg = small(tmp_path, "interrupted")
    with pytest.raises(DemoInterrupted) as stopped:
        run_demo(cfg)
    assert (stopped.value.stage, stopped.value.step) == (stage, step)
    folder = "warmup" if stage == "warm-up" else "grpo"
    assert (tmp_path / "interrupted" / folder / f"checkpoint-{step}" / "trainer_state.json").exists()
    assert signal.getsignal(signal.SIGINT) is found  # the handler it found is put back

    resumed = run_demo(cfg)
    assert resumed["segments"] == 2
    assert not list((tmp_path / "interrupted").glob("*/checkpoint-*"))  # resume points go once their stage is done
    assert find_trainer_state(cfg.output_dir) == os.path.join(cfg.output_dir, "grpo", "trainer_state.json")
    for key in ("in_domain", "out_of_domain", "sampled"):
        assert resumed[key] == straight[key], key
    a = load_file(straight_folder / "model" / "model.safetensors")
    b = load_file(tmp_path / "interrupted" / "model" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


def test_an_unfinished_run_with_other_settings_is_not_mixed_in(tmp_path):
    cfg = small(tmp_path)
    os.makedirs(cfg.output_dir)
    saved = {"config": {**cfg.settings(), "grpo_lr": 1e-4}, "done": ["warmup"], "seconds": {}, "segments": 1,
             "finished": False}
    Path(cfg.output_dir, STATE_FILE).write_text(json.dumps(saved))
    with pytest.raises(DemoConfigError, match=r"other settings \(grpo_lr 0.0001 there, 3e-05 here\).*--resume false"):
        run_demo(cfg)


def test_ctrl_c_in_the_cli_stops_with_one_line_and_no_traceback(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "grpo_ext.cli", "demo", "--output_dir", str(out),
                             "--warmup_steps", "5000", "--eval_pairs", "40"], env=ENV, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # the warm-up has started
        if line.startswith("[1/4]"):
            break
    import time

    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "Run the same command again to resume" in stderr
    state = json.loads((out / STATE_FILE).read_text())
    assert state["finished"] is False and state["seconds"]["warmup"] > 0


def test_a_folder_that_holds_no_demo_run_is_left_alone(tmp_path):
    # a fresh start clears the demo's own outputs first: never in a folder that is not a demo's
    mine = tmp_path / "mine"
    (mine / "model").mkdir(parents=True)
    (mine / "model" / "weights.bin").write_text("keep me")
    with pytest.raises(DemoConfigError, match="holds no demo run: pass another --output_dir"):
        run_demo(small(tmp_path, "mine"))
    assert (mine / "model" / "weights.bin").read_text() == "keep me"
