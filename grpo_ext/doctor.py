"""The run doctor: the common GRPO failures, found in a run's logged metrics and rollouts, each said once.

Each check reads the rows of ``trainer_state.json``'s ``log_history`` (what ``logging_steps`` logs)
and, where it needs them, the rollouts (:mod:`grpo_ext.rollouts`). A finding says what is happening,
from which step, the figures that show it and the change to make; it is said once per run. The
thresholds are :class:`Thresholds` (settable with ``GRPOConfig(doctor_thresholds={...})`` or a
recipe's ``doctor_thresholds``), documented in docs/troubleshooting.md:

=====================  =======================================================================
finding                when (defaults)
=====================  =======================================================================
``truncated``          ``completions/clipped_ratio`` >= 0.4 for ``window`` logged steps, and the
                       truncated completions of the rollouts score 0 (when there are rollouts)
``no_answer``          ``verify/no_answer`` >= 0.5 for ``window`` logged steps
``accuracy_zero``      the accuracy reward's mean is 0 for ``window`` logged steps
``flat_groups``        ``frac_reward_zero_std`` >= 0.8 for ``window`` logged steps
``kl_blowup``          ``kl`` >= 1.0, or 10x its first logged value and >= 0.1
``grad_norm_blowup``   ``grad_norm`` not finite, or >= 100, or 20x its first logged value
``repetition``         >= half the rollouts of a logged step repeat themselves (<= 30% distinct
                       4-grams in a completion of >= 20 tokens' worth of text)
``length_explosion``   ``completions/mean_length`` >= 3x its first logged value and >= 0.8 x
                       ``max_completion_length``
``format_dominates``   a format reward's spread (weight x std) exceeds the accuracy reward's on
                       ``window`` logged steps while the accuracy reward does not rise
=====================  =======================================================================

The loss of GRPO sits near 0 by construction (the advantages are centred in each group), so a loss
near 0 is not a finding: the reward is what to watch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, fields

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

FINDINGS_FILE = "doctor.json"


@dataclass
class Thresholds:
    """When a check fires; every field is settable (``doctor_thresholds``)."""

    window: int = 3  #: logged steps in a row a persistent condition must hold
    clipped_ratio: float = 0.4
    no_answer: float = 0.5
    flat_groups: float = 0.8
    kl: float = 1.0
    kl_growth: float = 10.0
    kl_floor: float = 0.1
    grad_norm: float = 100.0
    grad_norm_growth: float = 20.0
    grad_norm_floor: float = 1.0  #: the growth rule only above this norm (early GRPO steps can be near 0)
    repetition_share: float = 0.5
    distinct_4grams: float = 0.3
    length_growth: float = 3.0
    length_of_max: float = 0.8

    @classmethod
    def from_settings(cls, settings) -> "Thresholds":
        """From a dict (or its JSON text); unknown names are refused with the known ones."""
        if settings is None:
            return cls()
        if isinstance(settings, str):
            settings = json.loads(settings) if settings.strip() else {}
        if not isinstance(settings, dict):
            raise ValueError(f"doctor thresholds must be a mapping of name to number, got {settings!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown doctor threshold(s) {unknown}; known: {sorted(known)}")
        for name, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"doctor threshold {name} must be a positive number, got {value!r}")
            if name == "window" and (not float(value).is_integer() or value < 1):
                raise ValueError(f"doctor threshold window must be a whole number of logged steps >= 1, got {value!r}")
        return cls(**{k: int(v) if k == "window" else float(v) for k, v in settings.items()})


@dataclass
class Finding:
    name: str
    step: int
    message: str  #: what is happening and the figures that show it
    fix: str  #: the change to make
    recovered: int | None = None  #: the step from which a lasting condition no longer held (``window`` steps)

    def line(self) -> str:
        after = f" (recovered from step {self.recovered})" if self.recovered is not None else ""
        return f"[doctor] step {self.step}{after}: {self.message} Fix: {self.fix}"


def _series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(int(r.get("step", 0)), float(r[key])) for r in rows if isinstance(r.get(key), (int, float))]


def _persistent(series: list[tuple[int, float]], test, window: int) -> tuple[int, list[float]] | None:
    """The step where ``test`` started holding for ``window`` values in a row, and those values."""
    run: list[tuple[int, float]] = []
    for step, value in series:
        run = run + [(step, value)] if test(value) else []
        if len(run) >= window:
            return run[0][0], [v for _, v in run]
    return None


def _accuracy_key(rows: list[dict]) -> str | None:
    keys = {k for r in rows for k in r}
    return next((k for k in sorted(keys) if re.fullmatch(r"rewards/.*accuracy.*/mean", k)), None)


def distinct_ngram_share(text: str, n: int = 4) -> float:
    """Distinct word (or, for text without spaces, character) n-grams over all n-grams of ``text``."""
    units = text.split() if len(text.split()) >= 2 * n else list(text)
    grams = [tuple(units[i: i + n]) for i in range(len(units) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


class Doctor:
    """Finds the failures of :mod:`grpo_ext.doctor` in the rows logged so far; each is found once.

    Args:
        thresholds: :class:`Thresholds`.
        max_completion_length: the run's, for the length check.
        reward_weights: reward function name -> weight, for the format check.
    """

    def __init__(self, thresholds: Thresholds | None = None, max_completion_length: int | None = None,
                 reward_weights: dict[str, float] | None = None):
        self.t = thresholds or Thresholds()
        self.max_completion_length = max_completion_length
        self.reward_weights = reward_weights or {}
        self.findings: dict[str, Finding] = {}

    def check(self, rows: list[dict], rollouts: list[dict] | None = None) -> list[Finding]:
        """New findings in ``rows`` (the logged metrics so far) and ``rollouts`` (rows of rollouts.jsonl)."""
        rows = [r for r in rows if "loss" in r or any(k.startswith("rewards/") for k in r)]
        new = []
        for check in (self._truncated, self._no_answer, self._accuracy_zero, self._flat_groups, self._kl, self._grad_norm,
                      self._repetition, self._length, self._format):
            name = check.__name__.lstrip("_")
            if any(f.name.startswith(name) for f in self.findings.values()):
                continue
            finding = check(rows, rollouts or [])
            if finding is not None and finding.name not in self.findings:
                self.findings[finding.name] = finding
                new.append(finding)
        self._mark_recoveries(rows)
        return new

    def _lasting(self, rows) -> dict[str, tuple[str, object]]:
        """The lasting conditions: finding -> (the logged series, the test that holds while it lasts)."""
        out = {"truncated": ("completions/clipped_ratio", lambda v: v >= self.t.clipped_ratio),
               "no_answer": ("verify/no_answer", lambda v: v >= self.t.no_answer),
               "flat_groups": ("frac_reward_zero_std", lambda v: v >= self.t.flat_groups)}
        key = _accuracy_key(rows)
        if key is not None:
            out["accuracy_zero"] = (key, lambda v: v == 0.0)
        return out

    def _lasting_hit(self, rows, name: str) -> tuple[int, list[float]] | None:
        """Where the lasting condition ``name`` started holding for ``window`` logged steps, and its values."""
        condition = self._lasting(rows).get(name)
        if condition is None:
            return None
        key, test = condition
        return _persistent(_series(rows, key), test, self.t.window)

    def _mark_recoveries(self, rows) -> None:
        """A lasting finding whose condition then failed for ``window`` logged steps in a row is marked
        recovered from the first of them (a run that starts flat and then learns is not a failing run)."""
        for name, (key, test) in self._lasting(rows).items():
            finding = self.findings.get(name)
            if finding is None or finding.recovered is not None:
                continue
            after = [(step, v) for step, v in _series(rows, key) if step > finding.step]
            hit = _persistent(after, lambda v: not test(v), self.t.window)
            if hit is not None:
                finding.recovered = hit[0]

    def active(self) -> list[Finding]:
        """The findings that have not recovered, by step."""
        return sorted((f for f in self.findings.values() if f.recovered is None), key=lambda f: f.step)

    # ----- the checks ---------------------------------------------------------------------------
    def _truncated(self, rows, rollouts):
        hit = self._lasting_hit(rows, "truncated")
        if hit is None:
            return None
        step, values = hit
        cut = [r for r in rollouts if r.get("truncated")]
        scored = [r["reward"] for r in cut if isinstance(r.get("reward"), (int, float))]
        if cut and scored and max(scored) > 0:
            return None  # cut completions still earn reward: the cap is not what holds the run back
        cap = f" ({self.max_completion_length} tokens)" if self.max_completion_length else ""
        zero = f"; all {len(cut)} cut completions in the rollouts scored 0" if cut else ""
        return Finding("truncated", step,
                       f"{100 * values[-1]:.0f}% of completions hit max_completion_length{cap}{zero}: a cut completion "
                       "states no final answer, so it scores 0 and teaches nothing.",
                       "raise max_completion_length, or ask for shorter answers in the prompt.")

    def _no_answer(self, rows, rollouts):
        hit = self._lasting_hit(rows, "no_answer")
        if hit is None:
            return None
        step, values = hit
        return Finding("no_answer", step,
                       f"{100 * values[-1]:.0f}% of completions state no answer that can be extracted (verify/no_answer).",
                       "ask for a final answer in a recognisable form (\\boxed{}, 'The answer is N'; grpo_ext.data's "
                       "templates do), drop reward_strict if it is on, or raise max_completion_length.")

    def _accuracy_zero(self, rows, rollouts):
        key = _accuracy_key(rows)
        hit = self._lasting_hit(rows, "accuracy_zero")
        if hit is None:
            return None
        step, values = hit
        return Finding("accuracy_zero", step,
                       f"the accuracy reward ({key}) has been 0 for {len(values)} logged steps in a row: no completion "
                       "is right, so every group is flat on it and there is no signal to learn from.",
                       "start from a model that solves some questions (a supervised warm-up, an instruct model), use "
                       "easier questions, more num_generations, or check the gold answers and the prompt format.")

    def _flat_groups(self, rows, rollouts):
        hit = self._lasting_hit(rows, "flat_groups")
        if hit is None:
            return None
        step, values = hit
        return Finding("flat_groups", step,
                       f"{100 * values[-1]:.0f}% of groups have all-equal rewards (frac_reward_zero_std): their "
                       "advantages are 0 and they teach nothing.",
                       "use questions of the model's level (not all solved, not all failed), raise num_generations, or "
                       "zero_variance_groups: resample (fills the batch with informative groups).")

    def _kl(self, rows, rollouts):
        series = _series(rows, "kl")
        if not series:
            return None
        first = next((v for _, v in series if v > 0), None)
        for step, value in series:
            grown = first is not None and value >= self.t.kl_growth * first and value >= self.t.kl_floor
            if not math.isfinite(value) or value >= self.t.kl or grown:
                return Finding("kl_blowup", step,
                               f"the KL to the reference is {value:.3g} (first logged {first if first is not None else 0:.3g}):"
                               " the policy is running away from the reference.",
                               "lower the learning rate, raise beta (the paper's 0.04), or clip the gradient harder "
                               "(max_grad_norm).")
        return None

    def _grad_norm(self, rows, rollouts):
        series = _series(rows, "grad_norm")
        if not series:
            return None
        first = next((v for _, v in series if v > 0 and math.isfinite(v)), None)
        for step, value in series:
            grown = first is not None and value >= self.t.grad_norm_growth * first and value >= self.t.grad_norm_floor
            if not math.isfinite(value) or value >= self.t.grad_norm or grown:
                return Finding("grad_norm_blowup", step,
                               f"the gradient norm is {value:.3g} (first logged {first if first is not None else 0:.3g}).",
                               "lower the learning rate, keep max_grad_norm at 1.0 or below, or use bf16 instead of fp16.")
        return None

    def _repetition(self, rows, rollouts):
        by_step: dict[int, list[float]] = {}
        for r in rollouts:
            text = r.get("completion") or ""
            if len(text) >= 20:
                by_step.setdefault(int(r.get("step", 0)), []).append(distinct_ngram_share(text))
        for step in sorted(by_step):
            shares = by_step[step]
            repeating = sum(s <= self.t.distinct_4grams for s in shares)
            if repeating >= self.t.repetition_share * len(shares):
                return Finding("repetition", step,
                               f"{repeating} of {len(shares)} rollouts repeat themselves (at most "
                               f"{100 * self.t.distinct_4grams:.0f}% distinct 4-grams): the output is collapsing into "
                               "repeated tokens.",
                               "lower the learning rate or raise beta; check that no reward grows with length; a "
                               "repetition penalty in generation_kwargs hides the symptom, not the cause.")
        return None

    def _length(self, rows, rollouts):
        series = _series(rows, "completions/mean_length")
        if len(series) < 2 or not self.max_completion_length:
            return None
        first = series[0][1]
        for step, value in series[1:]:
            if first > 0 and value >= self.t.length_growth * first and value >= self.t.length_of_max * self.max_completion_length:
                return Finding("length_explosion", step,
                               f"the mean completion length grew from {first:.0f} to {value:.0f} tokens (max "
                               f"{self.max_completion_length}).",
                               "check for a reward that grows with length (per-token losses favour long outputs: "
                               "loss_type dr_grpo or dapo), lower the learning rate, or cap max_completion_length.")
        return None

    def _format(self, rows, rollouts):
        keys = {k for r in rows for k in r}
        acc = _accuracy_key(rows)
        fmt = next((k for k in sorted(keys) if re.fullmatch(r"rewards/.*format.*/std", k)), None)
        if acc is None or fmt is None:
            return None
        acc_std = acc[: -len("/mean")] + "/std"
        w_acc = self.reward_weights.get(acc.split("/")[1], 1.0)
        w_fmt = self.reward_weights.get(fmt.split("/")[1], 1.0)
        streak, start = 0, None
        accuracy = _series(rows, acc)
        for r in rows:
            if fmt in r and acc_std in r and w_fmt * r[fmt] > w_acc * r[acc_std]:
                streak, start = streak + 1, start if start is not None else int(r.get("step", 0))
            else:
                streak, start = 0, None
            if streak >= self.t.window:
                rising = len(accuracy) >= 2 and accuracy[-1][1] > accuracy[0][1]
                if rising:
                    return None
                return Finding("format_dominates", start,
                               f"the format reward's spread ({fmt}: {w_fmt:g} x {r[fmt]:.3g}) exceeds the accuracy "
                               f"reward's ({acc_std}: {w_acc:g} x {r[acc_std]:.3g}), and accuracy is not rising: the "
                               "advantages mostly reward the format.",
                               "lower the format reward's weight (reward_weights, e.g. 0.1 as the recipes do) or drop it "
                               "once the format is learnt.")
        return None

    # ----- keeping them -------------------------------------------------------------------------
    def save(self, folder: str) -> str:
        path = os.path.join(folder, FINDINGS_FILE)
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"run": {"max_completion_length": self.max_completion_length, "reward_weights": self.reward_weights},
                       "thresholds": asdict(self.t), "findings": [asdict(x) for x in self.findings.values()]}, f, indent=2)
        return path


class DoctorCallback(TrainerCallback):
    """The doctor during training (``GRPOTrainer`` adds it unless ``doctor=False``): at every logged step it
    checks the rows logged so far and the rollouts written, says each new finding once (a warning),
    logs it as ``doctor/<finding>`` (the step it was found at) and keeps them all in ``output_dir/doctor.json``."""

    def __init__(self, doctor: Doctor, rollouts=None):
        self.doctor, self.rollouts = doctor, rollouts

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step > 0:  # resumed: what the earlier segment found stays found (its rollouts are gone)
            for f in load_findings(args.output_dir):
                self.doctor.findings.setdefault(f.name, f)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return control
        recent = self.rollouts.recent() if self.rollouts is not None else []
        for finding in self.doctor.check(state.log_history, recent):
            logger.warning(finding.line())
            if logs is not None:  # the reporting callbacks come after this one (GRPOTrainer puts it first)
                logs[f"doctor/{finding.name}"] = float(finding.step)
            if state.log_history:
                state.log_history[-1][f"doctor/{finding.name}"] = float(finding.step)
        self.doctor.save(args.output_dir)
        return control


def load_findings(folder: str) -> list[Finding]:
    """The findings kept in ``folder/doctor.json`` (none when it is missing or unreadable)."""
    path = os.path.join(folder, FINDINGS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        return [Finding(**{k: v for k, v in x.items() if k in {f.name for f in fields(Finding)}})
                for x in saved.get("findings", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def diagnose(run_dir: str, thresholds: Thresholds | None = None) -> list[Finding]:
    """The doctor on a finished or crashed run's folder: the checks of its newest ``trainer_state.json`` and
    its rollouts, with what the doctor kept in ``doctor.json`` while the run was alive (a crash after the
    last checkpoint, or a run killed before any, loses no finding); lasting ones are marked recovered."""
    from .report import load_log_history, run_folder
    from .rollouts import read_rollouts

    try:
        history, _ = load_log_history(run_dir)
        folder = run_folder(run_dir)
    except FileNotFoundError:
        if not os.path.isfile(os.path.join(run_dir, FINDINGS_FILE)):
            raise
        history, folder = [], run_dir
    kept = next((c for c in (run_dir, folder) if os.path.isfile(os.path.join(c, FINDINGS_FILE))), None)
    saved = {}
    if kept is not None:
        try:
            with open(os.path.join(kept, FINDINGS_FILE), encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError):
            saved = {}
    run = saved.get("run", {}) if isinstance(saved, dict) else {}
    doctor = Doctor(thresholds, max_completion_length=run.get("max_completion_length"),
                    reward_weights=run.get("reward_weights"))
    doctor.check(history, read_rollouts(folder) or read_rollouts(run_dir))
    for finding in load_findings(kept) if kept is not None else []:
        doctor.findings.setdefault(finding.name, finding)
    doctor._mark_recoveries([r for r in history if "loss" in r or any(k.startswith("rewards/") for k in r)])
    return sorted(doctor.findings.values(), key=lambda f: f.step)


__all__ = ["Doctor", "DoctorCallback", "Finding", "Thresholds", "diagnose", "distinct_ngram_share", "load_findings"]
