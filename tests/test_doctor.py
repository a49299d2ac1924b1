"""The run doctor and the rollouts: each failure induced in miniature and found within a few steps, said
once, logged and kept; the checks on hand-written metric rows; rollouts on disk; the HTML report in a
real browser."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from datasets import Dataset

from grpo_ext import GRPOTrainer
from grpo_ext.doctor import Doctor, Thresholds, diagnose, distinct_ngram_share
from grpo_ext.rewards import accuracy_reward
from grpo_ext.rollouts import RolloutWriter, read_rollouts
from tests.conftest import cpu_grpo_args

QUESTIONS = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10)])


def length_reward(completions, **kwargs):
    """Ignores correctness: longer is better."""
    return [float(len(c)) for c in completions]


def format_reward(completions, **kwargs):
    """Stands in for a format reward that varies while nothing is right: 1 when the completion holds a digit."""
    return [float(any(ch.isdigit() for ch in c)) for c in completions]


def train(model, out, reward_funcs, tokenizer, **overrides):
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=cpu_grpo_args(out, **overrides),
                          train_dataset=QUESTIONS, processing_class=tokenizer)
    trainer.train()
    trainer.save_state()
    return trainer, {f["name"]: f["step"] for f in json.loads((Path(out) / "doctor.json").read_text())["findings"]}


@pytest.fixture(scope="module")
def cut_run(tiny_model_dir, tiny_tokenizer, tmp_path_factory):
    """A random model, 3-token completions of a task it cannot do: cut, never right, every group flat."""
    out = tmp_path_factory.mktemp("cut-run")
    trainer, found = train(tiny_model_dir, out, [accuracy_reward], tiny_tokenizer, max_steps=4, max_completion_length=3)
    return out, trainer, found


def test_truncated_completions_that_score_zero_are_found(cut_run):
    _, _, found = cut_run
    assert found["truncated"] <= 2  # found within window (3) logged steps, dated from where it began


def test_a_reward_that_stays_at_zero_is_found(cut_run):
    assert "accuracy_zero" in cut_run[2]


def test_flat_groups_are_found(cut_run):
    assert "flat_groups" in cut_run[2]


def test_each_finding_is_said_once_and_logged(cut_run):
    _, trainer, found = cut_run
    logged = [k for h in trainer.state.log_history for k in h if k.startswith("doctor/")]
    assert sorted(logged) == sorted(f"doctor/{name}" for name in found)  # one row each, not one per step


def test_a_learning_rate_that_makes_the_policy_collapse_is_found(tiny_model_dir, tiny_tokenizer, tmp_path):
    _, found = train(tiny_model_dir, tmp_path, [length_reward], tiny_tokenizer, max_steps=4, learning_rate=1.0,
                     max_completion_length=24, max_grad_norm=1e9)
    assert found.get("kl_blowup", 99) <= 4 and found.get("repetition", 99) <= 4


def test_a_reward_that_ignores_correctness_makes_the_length_explode(warm_policy_dir, tiny_tokenizer, tmp_path):
    _, found = train(warm_policy_dir, tmp_path, [length_reward], tiny_tokenizer, max_steps=4, learning_rate=2e-2,
                     max_completion_length=24, temperature=1.2, beta=0.0)
    assert found.get("length_explosion", 99) <= 4


def test_a_format_reward_that_outweighs_the_accuracy_reward_is_found(tiny_model_dir, tiny_tokenizer, tmp_path):
    _, found = train(tiny_model_dir, tmp_path, [accuracy_reward, format_reward], tiny_tokenizer, max_steps=4,
                     max_completion_length=4)
    assert found.get("format_dominates", 99) <= 2


def test_a_healthy_run_raises_no_finding(warm_policy_dir, tiny_tokenizer, tmp_path):
    # the demo's GRPO settings (loss grpo, beta 0.04, k3) from a policy that solves some questions: no false alarm
    _, found = train(warm_policy_dir, tmp_path, [accuracy_reward], tiny_tokenizer, max_steps=6, learning_rate=1e-4,
                     max_completion_length=4, loss_type="grpo", beta=0.04)
    assert found == {}


def test_the_doctor_is_off_with_one_setting(tiny_model_dir, tiny_tokenizer, tmp_path):
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=[accuracy_reward],
                          args=cpu_grpo_args(tmp_path, max_steps=1, doctor=False, rollouts=False),
                          train_dataset=QUESTIONS, processing_class=tiny_tokenizer)
    trainer.train()
    assert not (tmp_path / "doctor.json").exists() and not (tmp_path / "rollouts.jsonl").exists()


# ----- the checks on hand-written rows -------------------------------------------------------------
def rows(**series):
    n = len(next(iter(series.values())))
    return [{"step": i + 1, "loss": 0.0, **{k: v[i] for k, v in series.items()}} for i in range(n)]


def names(findings):
    return [f.name for f in findings]


def test_a_short_spell_is_not_a_finding():
    assert names(Doctor().check(rows(**{"frac_reward_zero_std": [0.9, 0.9, 0.1, 0.9]}))) == []


def test_no_answer_needs_the_window():
    assert names(Doctor().check(rows(**{"verify/no_answer": [0.6, 0.7, 0.8]}))) == ["no_answer"]


def test_a_gradient_norm_that_is_not_finite_is_found():
    assert names(Doctor().check(rows(grad_norm=[1.0, float("inf")]))) == ["grad_norm_blowup"]


def test_cut_completions_that_still_earn_reward_are_not_a_finding():
    rollouts = [{"step": 3, "truncated": True, "reward": 1.0, "completion": "x"}]
    assert names(Doctor().check(rows(**{"completions/clipped_ratio": [0.9, 0.9, 0.9]}), rollouts)) == []


def test_thresholds_are_settable():
    loose = Doctor(Thresholds.from_settings({"clipped_ratio": 0.99}))
    assert names(loose.check(rows(**{"completions/clipped_ratio": [0.9, 0.9, 0.9]}))) == []
    with pytest.raises(ValueError, match="unknown doctor threshold"):
        Thresholds.from_settings({"clipped": 0.5})


def test_bad_threshold_values_are_refused():
    with pytest.raises(ValueError, match="window must be a whole number"):
        Thresholds.from_settings({"window": 2.5})
    with pytest.raises(ValueError, match="window must be a positive number"):
        Thresholds.from_settings({"window": 0})
    with pytest.raises(ValueError, match="clipped_ratio must be a positive number"):
        Thresholds.from_settings({"clipped_ratio": "0.6"})


def test_a_misspelt_threshold_is_refused_by_the_config(tmp_path):
    with pytest.raises(ValueError, match="unknown doctor threshold"):
        cpu_grpo_args(tmp_path, doctor_thresholds={"clipedratio": 0.6})


def test_a_gradient_norm_growing_from_near_zero_is_not_a_blowup():
    # early GRPO steps with flat groups have tiny gradients: 0.01 -> 0.3 is a run starting to learn
    assert names(Doctor().check(rows(grad_norm=[0.01, 0.05, 0.3, 0.25]))) == []


def test_a_run_that_starts_at_zero_and_learns_is_marked_recovered():
    doctor = Doctor()
    doctor.check(rows(**{"rewards/accuracy_reward/mean": [0.0, 0.0, 0.0, 0.2, 0.4, 0.5]}))
    assert doctor.findings["accuracy_zero"].recovered == 4 and doctor.active() == []


def test_a_lasting_failure_is_not_marked_recovered():
    doctor = Doctor()
    doctor.check(rows(**{"rewards/accuracy_reward/mean": [0.0, 0.0, 0.0, 0.2, 0.0, 0.0]}))
    assert doctor.findings["accuracy_zero"].recovered is None


def test_distinct_ngrams_tell_repetition_from_text():
    assert distinct_ngram_share("ababababababababababab") < 0.2
    assert distinct_ngram_share("12+34=46 then 46+5=51, so the answer is 51") > 0.9


def test_a_healthy_history_has_no_finding():
    healthy = rows(**{"completions/clipped_ratio": [0.05] * 6, "frac_reward_zero_std": [0.3] * 6,
                      "kl": [0.001, 0.002, 0.003, 0.004, 0.005, 0.006], "grad_norm": [1.0, 0.8, 1.2, 0.9, 1.1, 1.0],
                      "rewards/accuracy_reward/mean": [0.4, 0.45, 0.5, 0.55, 0.6, 0.65],
                      "completions/mean_length": [30, 32, 31, 33, 34, 35]})
    assert names(Doctor(max_completion_length=64).check(healthy)) == []


# ----- the command, the rollouts and the page ------------------------------------------------------
def fake_run(folder, history, findings=(), rollouts=(), checkpoint=None):
    """A run folder as GRPOTrainer leaves it: trainer_state.json (or a checkpoint's), doctor.json, rollouts."""
    state_dir = folder / checkpoint if checkpoint else folder
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "trainer_state.json").write_text(json.dumps({"log_history": history, "global_step": history[-1]["step"],
                                                              "max_steps": history[-1]["step"]}))
    (folder / "doctor.json").write_text(json.dumps({"run": {}, "findings": list(findings)}))
    (folder / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rollouts))
    return folder


def test_a_crash_after_the_last_checkpoint_keeps_what_the_doctor_found(tmp_path):
    kl = {"name": "kl_blowup", "step": 5, "message": "the KL is 3.", "fix": "lower the learning rate."}
    run = fake_run(tmp_path / "run", rows(kl=[0.01, 0.02]), findings=[kl], checkpoint="checkpoint-2")
    assert [(f.name, f.step) for f in diagnose(str(run))] == [("kl_blowup", 5)]


def test_the_doctor_command_exits_0_when_every_finding_recovered(tmp_path, capsys):
    from grpo_ext.cli import main

    run = fake_run(tmp_path / "run", rows(**{"rewards/accuracy_reward/mean": [0.0, 0.0, 0.0, 0.3, 0.5, 0.6]}))
    assert main(["doctor", str(run)]) == 0
    assert "(recovered from step 4)" in capsys.readouterr().out


def test_the_doctor_command_refuses_bad_thresholds_in_one_line(tmp_path, capsys):
    from grpo_ext.cli import main

    run = fake_run(tmp_path / "run", rows(kl=[0.01, 0.02]))
    assert main(["doctor", str(run), "--thresholds", '{"window": "2"}']) == 2
    err = capsys.readouterr().err
    assert "window must be a positive number" in err and err.count("\n") == 1


def test_findings_reach_the_reporting_callbacks(tiny_model_dir, tiny_tokenizer, tmp_path):
    from transformers import TrainerCallback

    seen = []

    class Recorder(TrainerCallback):  # stands in for wandb / TensorBoard / trackio
        def on_log(self, args, state, control, logs=None, **kwargs):
            seen.extend(k for k in logs or {} if k.startswith("doctor/"))

    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=[accuracy_reward], callbacks=[Recorder()],
                          args=cpu_grpo_args(tmp_path, max_steps=3, max_completion_length=3),
                          train_dataset=QUESTIONS, processing_class=tiny_tokenizer)
    trainer.train()
    assert "doctor/truncated" in seen and "doctor/accuracy_zero" in seen


def test_a_long_prompt_and_its_steps_are_cut_to_the_bound():
    from grpo_ext.rollouts import make_rows

    (row,) = make_rows(["q" * 500], ["1+1=2\n" * 200], {"accuracy_reward": [1.0]}, {}, [0.0], [10], [False],
                       group_size=1, groups=1, max_chars=100, step_rewards=[[1.0] * 200])
    assert len(row["prompt"]) == 100 and row["prompt_cut"] and len(row["completion"]) == 100
    assert sum(len(s) for s in row["steps"]) <= 100 and len(row["step_rewards"]) == len(row["steps"]) == 17


def test_the_report_of_a_parent_folder_shows_the_runs_findings_and_rollouts(tmp_path):
    from grpo_ext.report import make_report

    finding = {"name": "truncated", "step": 2, "message": "cut.", "fix": "raise it."}
    rollout = {"step": 3, "group": 0, "prompt": "1+1=", "completion": "2", "answer": "2", "reward": 1.0}
    fake_run(tmp_path / "demo" / "grpo", rows(kl=[0.01, 0.02, 0.03]), findings=[finding], rollouts=[rollout])
    html = Path(make_report([str(tmp_path / "demo")])["html"]).read_text(encoding="utf-8")
    assert '"name": "truncated"' in html and '"completion": "2"' in html


HOSTILE = "so <!--<script> stays text, as do </script><script>document.title='owned'</script> and <b>bold</b>"


def test_model_output_cannot_change_how_the_page_parses(tmp_path):
    from grpo_ext.report import html_page

    page_html = html_page(["run"], "", str(_png(tmp_path)), {"run": []},
                          {"run": [{"step": 1, "group": 0, "prompt": "p", "completion": HOSTILE, "answer": "<b>"}]})
    data = page_html.split('<script id="data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["rollouts"]["run"][0]["completion"] == HOSTILE


def _png(tmp_path):
    from PIL import Image

    path = tmp_path / "curves.png"
    Image.new("RGB", (4, 4), "white").save(path)
    return path
def test_doctor_command_reads_a_finished_run(cut_run, capsys):
    from grpo_ext.cli import main

    assert main(["doctor", str(cut_run[0])]) == 1
    out = capsys.readouterr().out
    assert "[doctor] step" in out and "max_completion_length" in out and "Fix:" in out


def test_doctor_command_on_a_run_without_findings(tmp_path, capsys):
    from grpo_ext.cli import main

    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": rows(kl=[0.01, 0.01, 0.01])}))
    assert main(["doctor", str(tmp_path)]) == 0
    assert "no finding" in capsys.readouterr().out


def test_a_crashed_run_is_diagnosed_from_what_the_doctor_kept(cut_run, tmp_path):
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("doctor.json", "rollouts.jsonl"):
        shutil.copy(cut_run[0] / name, crashed / name)
    assert {f.name for f in diagnose(str(crashed))} >= {"truncated", "accuracy_zero"}


def test_rollouts_hold_what_the_issue_lists(cut_run):
    out, trainer, _ = cut_run
    rollouts = read_rollouts(str(out))
    assert len(rollouts) == 4 * 8  # 4 logged steps x (2 groups of 4: fewer than rollouts_groups)
    row = rollouts[0]
    assert {"step", "group", "prompt", "completion", "rewards", "reward", "advantage", "answer", "answer_form",
            "correct", "length", "truncated"} <= set(row)
    assert row["rewards"] == {"accuracy_reward": 0.0} and row["length"] == 3 and row["truncated"] is True


def test_rollouts_load_with_pandas_and_datasets(cut_run):
    import pandas as pd
    from datasets import load_dataset

    path = str(cut_run[0] / "rollouts.jsonl")
    assert len(pd.read_json(path, lines=True)) == len(load_dataset("json", data_files=path, split="train")) == 32


def test_a_resumed_run_drops_the_rollouts_after_its_checkpoint(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps({"step": s, "completion": "x"}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "comp')
    RolloutWriter(str(tmp_path)).start(2)
    assert [r["step"] for r in read_rollouts(str(tmp_path))] == [1, 2]


def test_process_supervision_rollouts_carry_step_rewards(tiny_model_dir, tiny_tokenizer, tmp_path):
    data = Dataset.from_list([{"prompt": f"{a}+{b}+1=", "answer": str(a + b + 1),
                               "solution": f"{a}+{b}={a + b}\n{a + b}+1={a + b + 1}"} for a in range(5) for b in range(5)])
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=[accuracy_reward], train_dataset=data,
                          args=cpu_grpo_args(tmp_path, max_steps=1, supervision="process", max_completion_length=8),
                          processing_class=tiny_tokenizer)
    trainer.train()
    row = read_rollouts(str(tmp_path))[0]
    assert len(row["step_rewards"]) == len(row["steps"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(cut_run):
    from grpo_ext.report import make_report

    return Path(make_report([str(cut_run[0])])["html"])


def test_the_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert 'src="data:image/png;base64,' in html


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian's chromium package; .ci/run installs it)")
def test_the_page_renders_in_a_real_browser(page, tmp_path):
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    rendered = dom.split('<div id="list">', 1)[1].split("</section>", 1)[0]  # what the script wrote, not its source
    assert rendered.count('<div class="rollout">') == 8  # the last logged step's rollouts
    assert "8 rollouts at step 4" in dom
    findings = dom.split('<div id="findings">', 1)[1].split("</section>", 1)[0]
    assert findings.count('class="finding"') == 3 and "truncated" in findings


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian's chromium package; .ci/run installs it)")
def test_the_page_takes_a_screenshot_with_content(page, tmp_path):
    shot = tmp_path / "page.png"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400",
           f"--screenshot={shot}", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1000, 1400)
    assert len(image.getcolors(maxcolors=256) or range(257)) > 50  # text and curves, not a blank page


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian's chromium package; .ci/run installs it)")
def test_hostile_model_output_renders_as_text_in_a_real_browser(tmp_path):
    from grpo_ext.report import html_page

    page_file = tmp_path / "page.html"
    page_file.write_text(html_page(["run"], "", str(_png(tmp_path)), {"run": []},
                                   {"run": [{"step": 1, "group": 0, "prompt": "p", "completion": HOSTILE,
                                             "answer": "x"}]}), encoding="utf-8")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page_file.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "1 rollouts at step 1" in dom  # the page's own script ran
    assert "<title>owned</title>" not in dom and "<b>bold</b>" not in dom.split('<div id="list">', 1)[1]
