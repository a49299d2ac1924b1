"""Rollouts on disk: what the model wrote during training, kept in ``output_dir/rollouts.jsonl``.

At every ``rollouts_steps``-th logged step (default: every one), the first ``rollouts_groups``
groups of the batch just generated are appended, one JSON line per completion:

``step``, ``group``, ``prompt`` and ``completion`` (each cut at ``rollouts_max_chars`` characters, with
``prompt_cut`` / ``completion_cut: true``), ``rewards`` (per reward function), ``reward`` (their weighted sum),
``advantage``, ``answer`` and ``answer_form`` (what :func:`grpo_ext.verify.extract_answers_with_form`
reads, and in which form), ``correct`` (the accuracy reward, where there is one), ``length`` (tokens),
``truncated`` (it hit ``max_completion_length`` without its end-of-sequence token), and under process
supervision ``steps`` and ``step_rewards``.

The size is bounded: at most ``rollouts_groups x num_generations`` rows per logged step, each at most
``rollouts_max_chars`` characters of prompt and as many of completion (its steps are cut from the
kept text), plus the numbers: for the defaults, 8 x 8 rows of at most about 8,000 characters, so
about 0.5 MB per logged step at most, and the whole file at most that times the logged steps
(``max_steps / logging_steps``, divided by ``rollouts_steps``: 1,000 steps logged every 10 give at most
50 MB; raise ``rollouts_steps`` or lower ``rollouts_groups`` / ``rollouts_max_chars`` for less). ``pandas.read_json(path, lines=True)`` and
``datasets.load_dataset("json", data_files=path)`` read the file. A resumed run first drops the rows
of steps after its checkpoint, then appends: the file is the run's, over all its segments.
``rollouts=False`` turns it off.
"""

from __future__ import annotations

import json
import os
from collections import deque

FILE = "rollouts.jsonl"


class RolloutWriter:
    """Collects the rows of the last scored batch (:meth:`collect`) and writes them at logged steps (:meth:`write`)."""

    def __init__(self, output_dir: str, groups: int = 8, max_chars: int = 4000, every: int = 1, keep_recent: int = 512):
        self.path = os.path.join(output_dir, FILE)
        self.groups, self.max_chars, self.every = groups, max_chars, max(1, every)
        self.pending: dict = {}
        self._recent: deque = deque(maxlen=keep_recent)
        self._logged = 0

    def start(self, global_step: int) -> None:
        """At the start of a (resumed) run: drop the rows of steps after ``global_step``."""
        if not os.path.isfile(self.path):
            return
        if global_step == 0:
            os.remove(self.path)
            return
        kept = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    if json.loads(line).get("step", 0) <= global_step:
                        kept.append(line)
                except ValueError:
                    continue  # a line cut by a kill
        with open(self.path, "w", encoding="utf-8") as f:
            f.writelines(kept)

    def collect(self, **batch) -> None:
        """The batch just scored, as :func:`make_rows` takes it (it replaces the previous batch; rows are made
        only when written, so a batch that is never logged costs nothing more)."""
        self.pending = batch

    def write(self, step: int) -> int:
        """Append the pending batch's rows at ``step`` if this logged step is one to keep; how many were written."""
        self._logged += 1
        if not self.pending or (self._logged - 1) % self.every:
            return 0
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        rows = [dict(r, step=step) for r in make_rows(**self.pending, groups=self.groups, max_chars=self.max_chars)]
        with open(self.path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self._recent.extend(rows)
        self.pending = {}
        return len(rows)

    def recent(self) -> list[dict]:
        return list(self._recent)


def make_rows(prompts: list, completions: list[str], rewards: dict[str, list[float]], weights: dict[str, float],
              advantages: list[float], lengths: list[int], truncated: list[bool], group_size: int, groups: int = 8,
              max_chars: int = 4000, separator: str | None = None,
              step_rewards: list[list[float]] | None = None) -> list[dict]:
    """One row per completion of the first ``groups`` groups (see the module docstring)."""
    from .verify import extract_answers_with_form

    n = min(len(completions), groups * group_size)
    answers = extract_answers_with_form(list(completions[:n]))
    accuracy = next((name for name in rewards if "accuracy" in name), None)
    rows = []
    for i in range(n):
        text = completions[i]
        per_function = {name: _number(values[i]) for name, values in rewards.items()}
        total = sum(weights.get(name, 1.0) * v for name, v in per_function.items() if v is not None)
        prompt = _text(prompts[i])
        row = {
            "group": i // group_size, "prompt": prompt[:max_chars], "completion": text[:max_chars],
            "rewards": per_function, "reward": total, "advantage": _number(advantages[i]),
            "answer": answers[i][0], "answer_form": answers[i][1],
            "correct": per_function.get(accuracy) if accuracy else None,
            "length": int(lengths[i]), "truncated": bool(truncated[i]),
        }
        if len(text) > max_chars:
            row["completion_cut"] = True
        if len(prompt) > max_chars:
            row["prompt_cut"] = True
        if step_rewards is not None and i < len(step_rewards):
            steps = [part.strip() for part in text[:max_chars].split(separator or "\n") if part.strip()]
            row["steps"] = steps  # of the kept text: a cut completion keeps the rewards of its kept steps
            row["step_rewards"] = [_number(r) for r in step_rewards[i]][: len(steps)]
        rows.append(row)
    return rows


def _number(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if x != x else x


def _text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in prompt if isinstance(m, dict))
    return str(prompt)


def read_rollouts(run_dir: str, limit: int | None = None) -> list[dict]:
    """The rollouts of a run (its folder, or the folder holding its ``rollouts.jsonl``); the last ``limit``."""
    path = run_dir if run_dir.endswith(".jsonl") else os.path.join(run_dir, FILE)
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill
    return rows[-limit:] if limit else rows


__all__ = ["FILE", "RolloutWriter", "make_rows", "read_rollouts"]
