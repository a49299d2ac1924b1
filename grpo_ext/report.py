"""Plots of a run from its trainer log history (``trainer_state.json``'s ``log_history``)."""

from __future__ import annotations

from collections.abc import Sequence


def _series(log_history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    rows = [(h["step"], h[key]) for h in log_history if key in h and "step" in h]
    return [r[0] for r in rows], [r[1] for r in rows]


def plot_reward_curve(log_history: Sequence[dict], path: str, keys: Sequence[str] | None = None) -> str:
    """Reward per logged step (total, and each reward function's mean), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not keys:
        per_function = sorted({k for h in log_history for k in h if k.startswith("rewards/") and k.endswith("/mean")})
        keys = ["reward"] + (per_function if len(per_function) > 1 else [])  # one function: same curve as reward
    fig, ax = plt.subplots(figsize=(6, 3.6))
    plotted = 0
    for key in keys:
        steps, values = _series(log_history, key)
        if steps:
            ax.plot(steps, values, label=key, linewidth=1.6 if key == "reward" else 1.0)
            plotted += 1
    if not plotted:
        raise ValueError(f"the log history has none of {keys}: was anything logged (logging_steps)?")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("mean reward")
    ax.set_title("Training reward")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
