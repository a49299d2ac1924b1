"""Process rewards: one reward per reasoning step, ``f(completions, steps, **columns) -> list[list[float]]``.

``steps[i]`` are the step texts of completion i (:func:`grpo_ext.rewards.steps.segment_steps`); a
process reward returns one float per step, in order.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import verify
from ..data.synthetic import check_step, parse_step
from ..verify.verdicts import EQUAL

ProcessRewardFunc = Callable[..., list]


def step_check_reward(completions: list[Any], steps: list[list[str]], answer: list[str | None] | None = None,
                      solution: list[str | None] | None = None, **kwargs: Any) -> list[list[float]]:
    """The programmatic step checker of the synthetic arithmetic tasks.

    A step ``"a op b = c"`` scores 1.0 when it is right, else 0.0. When the dataset has a
    ``solution`` column (the reference solution, one equation per line, as
    :func:`grpo_ext.data.synthetic.to_dataset` writes it), equation j must also be the reference's
    equation j (:func:`~grpo_ext.data.synthetic.check_step` with ``gold``), so true but irrelevant
    equations and equations past the reference's last earn 0; without it (or when the reference has no
    equation lines), right arithmetic is enough. Any other step is read as a final answer (``#### N``, ``答案是 N``, a bare number) and
    scores 1.0 when it is equivalent to the gold ``answer``, else 0.0.
    """
    if len(steps) != len(completions):
        raise ValueError(f"got {len(completions)} completions but steps for {len(steps)}")
    rewards: list[list[float]] = []
    finals: list[tuple[int, int, str | None, str | None]] = []
    for i, completion_steps in enumerate(steps):
        row = []
        gold_steps = None
        if solution is not None and solution[i] is not None:
            gold_steps = [g for g in map(parse_step, str(solution[i]).splitlines()) if g is not None] or None
        equations = 0
        for j, step in enumerate(completion_steps):
            if gold_steps is None:
                ok = check_step(step)
            elif parse_step(step) is None:
                ok = None
            else:
                ok = equations < len(gold_steps) and check_step(step, gold_steps[equations])
                equations += 1
            if ok is None:
                gold = answer[i] if answer is not None else None
                finals.append((i, j, verify.extract_answer(step, strict=True, last_number_fallback=True), gold))
                row.append(0.0)
            else:
                row.append(1.0 if ok else 0.0)
        rewards.append(row)
    scorable = [f for f in finals if f[3] is not None]
    verdicts = verify.judge([f[2] for f in scorable], [str(f[3]) for f in scorable]) if scorable else []
    for (i, j, _, _), verdict in zip(scorable, verdicts):
        rewards[i][j] = 1.0 if verdict == EQUAL else 0.0
    return rewards


_PROCESS_REWARDS: dict[str, ProcessRewardFunc] = {"step_check": step_check_reward}


PRM_PREFIX = "prm:"


def check_process_reward(name: str) -> None:
    """Raise ValueError unless ``name`` names a process reward (without loading any model)."""
    if name.startswith(PRM_PREFIX):
        if not name[len(PRM_PREFIX):].strip():
            raise ValueError(f"process reward {name!r} names no model: write 'prm:<local path or Hub id>'")
        return
    if name not in _PROCESS_REWARDS:
        raise ValueError(f"unknown process reward {name!r}; known: {sorted(_PROCESS_REWARDS)}, or "
                         "'prm:<local path or Hub id>' for a Math-Shepherd-style process reward model")


def get_process_reward(name: str) -> ProcessRewardFunc:
    """The process reward called ``name``: ``step_check``, or ``prm:<path or Hub id>`` for a
    :class:`grpo_ext.rewards.models.ProcessRewardModel` (Math-Shepherd's step tag and labels)."""
    check_process_reward(name)
    if name.startswith(PRM_PREFIX):
        from .models import ProcessRewardModel

        return ProcessRewardModel(name[len(PRM_PREFIX):].strip())
    return _PROCESS_REWARDS[name]
