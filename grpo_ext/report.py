"""A run's curves on one PNG page and a markdown summary, from its ``trainer_state.json``.

Works on a finished run (``RUN_DIR/trainer_state.json``) and on one still in progress (the newest
``RUN_DIR/checkpoint-*/trainer_state.json``); given two runs, overlays them.

    grpo-ext report RUN_DIR [OTHER_RUN_DIR] [--output report]
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Sequence

#: (panel title, y label, metric keys or key patterns) of the report page, in order.
PANELS: list[tuple[str, str, list[str]]] = [
    ("Reward", "mean reward", ["reward", r"rewards/.+/mean"]),
    ("Benchmark accuracy", "accuracy", [r"eval/.+/(top1|maj@\d+|pass@\d+)"]),
    ("KL to the reference", "KL", ["kl"]),
    ("Completion length", "tokens", ["completions/mean_length"]),
    ("Clipped completions", "share hitting the length cap", ["completions/clipped_ratio"]),
    ("Zero-variance groups", "frac_reward_zero_std", ["frac_reward_zero_std"]),
    ("Advantages", "value", ["advantages/mean", "advantages/std", "advantages/frac_zero"]),
    ("Learning rate", "learning rate", ["learning_rate"]),
]


_CHECKPOINT_RE = re.compile(r"checkpoint-(\d+)")


def _state_candidates(run_dir: str) -> list[str]:
    """The run's own ``trainer_state.json``, then its numbered checkpoints' from the newest (a folder
    ``checkpoint-best`` or one that merely contains the word is not a numbered checkpoint)."""
    found = []
    direct = os.path.join(run_dir, "trainer_state.json")
    if os.path.isfile(direct):
        found.append(direct)
    numbered = []
    for path in glob.glob(os.path.join(glob.escape(run_dir), "checkpoint-*", "trainer_state.json")):
        m = _CHECKPOINT_RE.fullmatch(os.path.basename(os.path.dirname(path)))
        if m:
            numbered.append((int(m.group(1)), path))
    return found + [path for _, path in sorted(numbered, reverse=True)]


def _read_state(path: str) -> dict:
    """A ``trainer_state.json``, or ValueError naming the file and what is wrong with it."""
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                         "was it cut off while being written?") from None
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(state, dict) or not isinstance(state.get("log_history", []), list):
        raise ValueError(f"{path} is not a trainer state: expected a JSON object with a 'log_history' list, "
                         f"found {type(state).__name__}")
    return state


def _own_trainer_state(run_dir: str) -> str | None:
    """The newest readable state of the run in ``run_dir``; a half-written newest checkpoint is passed
    over for the one before. ValueError when states exist but none can be read."""
    candidates = _state_candidates(run_dir)
    problems = []
    for path in candidates:
        try:
            _read_state(path)
            return path
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise ValueError("no readable trainer state: " + "; ".join(problems))
    return None


def find_trainer_state(run_dir: str) -> str:
    """Path of the run's ``trainer_state.json``: the run's own, else its newest checkpoint's, else the one run
    found in its subfolders (``grpo-ext-demo`` -> ``grpo-ext-demo/grpo``)."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"{run_dir!r} is not a directory")
    own = _own_trainer_state(run_dir)
    if own:
        return own
    runs = {}
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("checkpoint-", ".")))
        if root != run_dir and os.path.relpath(root, run_dir).count(os.sep) < 3:
            found = _own_trainer_state(root)
            if found:
                runs[os.path.relpath(root, run_dir)] = found
                dirs[:] = []  # a run's own subfolders are not other runs
    if len(runs) == 1:
        return next(iter(runs.values()))
    if runs:
        raise FileNotFoundError(
            f"{run_dir!r} holds several runs: {', '.join(sorted(runs))}; point at one of them "
            f"(e.g. grpo-ext report {os.path.join(run_dir, sorted(runs)[0])}), or two to compare")
    raise FileNotFoundError(
        f"no trainer_state.json in {run_dir!r} or its subfolders: expected RUN_DIR/trainer_state.json (written at "
        "the end of training) or RUN_DIR/checkpoint-N/trainer_state.json (written at each save); point at a "
        "training output_dir, and set save_steps to see a run in progress"
    )


def wall_time(history: Sequence[dict], state: dict) -> tuple[float | None, int]:
    """(seconds, segments) of a run: summed over resumed segments where :class:`grpo_ext.callbacks.WallClock`
    kept them, else the last segment's ``train_runtime`` (None while it runs)."""
    clock = (state.get("stateful_callbacks") or {}).get("WallClock")
    if isinstance(clock, list):
        clock = clock[-1] if clock else None
    if clock and "seconds" in clock.get("attributes", {}):
        return float(clock["attributes"]["seconds"]), int(clock["attributes"].get("segments", 1))
    runtime = next((h["train_runtime"] for h in reversed(history) if "train_runtime" in h), None)
    return runtime, 1


def load_log_history(run_dir: str) -> tuple[list[dict], dict]:
    state = _read_state(find_trainer_state(run_dir))
    return [h for h in state.get("log_history", []) if isinstance(h, dict)], state


def _series(log_history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    rows = [(h["step"], h[key]) for h in log_history if key in h and "step" in h
            and isinstance(h[key], (int, float))]
    return [r[0] for r in rows], [r[1] for r in rows]


def _keys(log_history: Sequence[dict], patterns: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(k for h in log_history for k in h))
    return [k for p in patterns for k in present if re.fullmatch(p, k)]


def plot_reward_curve(log_history: Sequence[dict], path: str, keys: Sequence[str] | None = None) -> str:
    """Reward per logged step (total, and each reward function's mean when there are several)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not keys:
        per_function = _keys(log_history, [r"rewards/.+/mean"])
        keys = ["reward"] + (per_function if len(per_function) > 1 else [])  # one function: same curve as reward
    fig, ax = plt.subplots(figsize=(6, 3.6))
    plotted = 0
    for key in keys:
        steps, values = _series(log_history, key)
        if steps:
            ax.plot(steps, values, label=key, linewidth=1.6 if key == "reward" else 1.0)
            plotted += 1
    if not plotted:
        raise ValueError(f"the log history has none of {list(keys)}: was anything logged (logging_steps)?")
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


def plot_report(runs: dict[str, Sequence[dict]], path: str, findings: Sequence[dict] = ()) -> str:
    """One PNG page with a panel per entry of :data:`PANELS`, each run's curves overlaid, and the doctor's
    findings as dashed lines at their steps."""
    import matplotlib.pyplot as plt

    fig = report_figure(runs, findings)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report_figure(runs: dict[str, Sequence[dict]], findings: Sequence[dict] = ()):
    """The matplotlib figure of :func:`plot_report` (one axes per panel, titled as in :data:`PANELS`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 2, figsize=(12, 13))
    styles = ["-", "--", ":", "-."]
    for ax, (title, ylabel, patterns) in zip(axes.flat, PANELS):
        drawn = 0
        for r, (run, history) in enumerate(runs.items()):
            for key in _keys(history, patterns):
                steps, values = _series(history, key)
                if steps:
                    label = key if len(runs) == 1 else f"{run}: {key}"
                    ax.plot(steps, values, styles[r % len(styles)], label=label, linewidth=1.2,
                            marker="o" if len(steps) < 15 else None, markersize=3)
                    drawn += 1
        by_step: dict[int, list[str]] = {}
        for finding in findings:  # the doctor's findings on the timeline (of the panels that show data)
            by_step.setdefault(int(finding["step"]), []).append(finding["name"])
        for step, names in by_step.items() if drawn else ():
            ax.axvline(step, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.7)
            ax.annotate(", ".join(names), (step, 0.98), xycoords=("data", "axes fraction"), fontsize=6,
                        color="tab:red", rotation=90, va="top", ha="right")
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(frameon=False, fontsize=7)
        else:
            ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes,
                    color="gray")
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("grpo-ext run report: " + " vs ".join(runs), fontsize=13)
    fig.tight_layout()
    return fig


def summary_markdown(runs: dict[str, tuple[Sequence[dict], dict]]) -> str:
    """Start, best and final value of each reported metric; steps and wall time of each run."""
    lines = []
    for run, (history, state) in runs.items():
        seconds, segments = wall_time(history, state)
        wall = f"{seconds:.0f} s" if seconds is not None else "in progress"
        if seconds is not None and segments > 1:
            wall += f" over {segments} segments (resumed)"
        lines += [f"## {run}", "", f"steps: {state.get('global_step', 0)} of {state.get('max_steps', '?')}; "
                  f"wall time: {wall}", "", "| metric | start | best | final |", "|---|---|---|---|"]
        for _, _, patterns in PANELS:
            for key in _keys(history, patterns):
                _, values = _series(history, key)
                if not values:
                    continue
                lower_is_better = key in ("kl", "completions/clipped_ratio", "frac_reward_zero_std")
                best = min(values) if lower_is_better else max(values)
                lines.append(f"| {key} | {values[0]:.4g} | {best:.4g} | {values[-1]:.4g} |")
        lines.append("")
    return "\n".join(lines)


def run_folder(run_dir: str) -> str:
    """The ``output_dir`` of the run :func:`find_trainer_state` finds under ``run_dir`` (the folder of its
    ``trainer_state.json``, or that of its checkpoint's parent): where ``doctor.json`` and the rollouts
    are. ``grpo-ext report grpo-ext-demo`` finds the demo's run in ``grpo-ext-demo/grpo``."""
    folder = os.path.dirname(find_trainer_state(run_dir))
    if re.fullmatch(r"checkpoint-\d+", os.path.basename(folder)):
        folder = os.path.dirname(folder)
    return folder


def _read_findings(run_dir: str) -> list[dict]:
    path = os.path.join(run_dir, "doctor.json")
    if not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            return list(json.load(f).get("findings", []))
    except (ValueError, OSError):
        return []


def make_report(run_dirs: Sequence[str], output: str | None = None,
                findings: dict[str, Sequence[dict]] | None = None) -> dict[str, str]:
    """Write ``<output>.png`` (curves), ``<output>.md`` (summary) and ``<output>.html`` (a self-contained page:
    summary, curves, the doctor's findings, a rollouts browser) for one run or a comparison of two.

    ``output`` defaults to ``RUN_DIR/report``; ``findings`` (run folder -> the doctor's findings as dicts)
    default to each run's ``doctor.json``.
    """
    if not 1 <= len(run_dirs) <= 2:
        raise ValueError(f"give one run directory, or two to compare; got {len(run_dirs)}")
    if len(run_dirs) == 2 and os.path.realpath(run_dirs[0]) == os.path.realpath(run_dirs[1]):
        raise ValueError(f"{run_dirs[0]!r} was given twice: give two different runs to compare, or one")
    runs, folders = {}, {}
    for d in run_dirs:
        name = os.path.basename(os.path.normpath(d))
        name = name if name not in runs else d
        runs[name] = load_log_history(d)
        folders[name] = run_folder(d)
    output = output or os.path.join(run_dirs[0], "report")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    given = dict(zip(folders, run_dirs))  # run name -> the folder as given
    findings = findings or {}
    found = {name: list(findings.get(given[name]) or findings.get(folder) or _read_findings(folder))
             for name, folder in folders.items()}
    first = next(iter(found.values()))
    png = plot_report({k: v[0] for k, v in runs.items()}, output + ".png", first if len(runs) == 1 else ())
    md = output + ".md"
    summary = summary_markdown(runs)
    with open(md, "w", encoding="utf-8") as f:
        f.write(summary)
    html = output + ".html"
    from .rollouts import read_rollouts

    rollouts = {name: read_rollouts(d, limit=MAX_PAGE_ROLLOUTS) for name, d in folders.items()}
    with open(html, "w", encoding="utf-8") as f:
        f.write(html_page(list(runs), summary, png, found, rollouts))
    return {"png": png, "markdown": md, "html": html}


#: Rollouts embedded in the page at most (the last ones of each run).
MAX_PAGE_ROLLOUTS = 2000


def _markdown_tables_to_html(text: str) -> str:
    """The summary's headings and tables as HTML (the only markdown it holds)."""
    import html

    out, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            out.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in cells[0]) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[1:])
                       + "</tbody></table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h3>{html.escape(line[3:])}</h3>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def html_page(runs: Sequence[str], summary: str, png_path: str, findings: dict[str, Sequence[dict]],
              rollouts: dict[str, Sequence[dict]]) -> str:
    """The report as one self-contained HTML file: nothing is loaded from the network when it is opened."""
    import base64
    import html

    with open(png_path, "rb") as f:
        png = base64.b64encode(f.read()).decode("ascii")
    # every '<' escaped: model output such as '<!--<script' must not change how the page's HTML parses
    data = json.dumps({"findings": findings, "rollouts": rollouts}, ensure_ascii=False).replace("<", "\\u003c")
    title = "grpo-ext run report: " + " vs ".join(runs)
    return _PAGE.format(title=html.escape(title), summary=_markdown_tables_to_html(summary), png=png, data=data)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; }}
img {{ max-width: 100%; }}
.finding {{ background: #fff3f0; border-left: 4px solid #d33; padding: .4em .8em; margin: .4em 0; }}
.finding b {{ color: #b00; }}
#controls label {{ margin-right: 1em; font-size: 14px; }}
.rollout {{ border: 1px solid #ddd; border-radius: 6px; padding: .5em .8em; margin: .6em 0; }}
.rollout .meta {{ font-size: 12px; color: #555; }}
.rollout pre {{ white-space: pre-wrap; margin: .3em 0; font-size: 13px; }}
.badge {{ display: inline-block; border-radius: 4px; padding: 0 5px; margin-left: 4px; font-size: 11px; }}
.good {{ background: #dff5df; }} .bad {{ background: #fde2e2; }} .cut {{ background: #fff1c2; }}
mark {{ background: #ffe066; }}
.step {{ display: block; }}
</style></head>
<body>
<h1>{title}</h1>
<section id="summary"><h2>Summary</h2>{summary}</section>
<section id="curves"><h2>Curves</h2><img alt="training curves" src="data:image/png;base64,{png}"></section>
<section id="doctor"><h2>Doctor</h2><div id="findings"></div></section>
<section id="rollouts"><h2>Rollouts</h2>
<div id="controls">
<label>run <select id="run"></select></label>
<label>step <select id="step"></select></label>
<label>answer form <select id="form"></select></label>
<label>order <select id="order"><option value="group">by group</option><option value="reward-desc">reward, high first</option>
<option value="reward-asc">reward, low first</option><option value="advantage-desc">advantage, high first</option></select></label>
</div>
<p id="count"></p><div id="list"></div></section>
<script id="data" type="application/json">{data}</script>
<script>
(function () {{
  const data = JSON.parse(document.getElementById("data").textContent);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"]/g, (c) => ({{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}})[c]);
  const num = (x) => (x == null ? "-" : Number(x).toFixed(3));
  const el = (id) => document.getElementById(id);
  const findings = el("findings");
  const all = [];
  for (const [run, list] of Object.entries(data.findings)) for (const f of list) all.push([run, f]);
  findings.innerHTML = all.length ? all.map(([run, f]) => `<div class="finding" data-name="${{esc(f.name)}}"><b>${{esc(f.name)}}</b>
    at step ${{f.step}} (${{esc(run)}}): ${{esc(f.message)}}<br>Fix: ${{esc(f.fix)}}</div>`).join("")
    : "<p>No finding: none of the doctor's checks fired.</p>";
  const runs = Object.keys(data.rollouts);
  el("run").innerHTML = runs.map((r) => `<option>${{esc(r)}}</option>`).join("");
  function highlight(text, answer) {{
    const t = esc(text);
    if (!answer) return t;
    const a = esc(answer), at = t.lastIndexOf(a);
    return at < 0 ? t : t.slice(0, at) + "<mark>" + a + "</mark>" + t.slice(at + a.length);
  }}
  function body(r) {{
    if (r.steps && r.step_rewards && r.steps.length === r.step_rewards.length) {{
      return r.steps.map((s, i) => {{
        const v = r.step_rewards[i];
        return `<span class="step">${{highlight(s, i === r.steps.length - 1 ? r.answer : null)}}<span class="badge ${{v > 0.5 ? "good" : "bad"}}">step reward ${{num(v)}}</span></span>`;
      }}).join("");
    }}
    return highlight(r.completion, r.answer);
  }}
  function fill() {{
    const rows = data.rollouts[el("run").value] || [];
    const steps = [...new Set(rows.map((r) => r.step))].sort((a, b) => a - b);
    const forms = [...new Set(rows.map((r) => r.answer_form || "none"))].sort();
    el("step").innerHTML = steps.map((s) => `<option value="${{s}}">${{s}}</option>`).join("");
    el("step").value = steps.length ? String(steps[steps.length - 1]) : "";
    el("form").innerHTML = `<option value="">all</option>` + forms.map((f) => `<option>${{esc(f)}}</option>`).join("");
    render();
  }}
  function render() {{
    let rows = (data.rollouts[el("run").value] || []).filter((r) => String(r.step) === el("step").value);
    const form = el("form").value;
    if (form) rows = rows.filter((r) => (r.answer_form || "none") === form);
    const order = el("order").value;
    if (order === "reward-desc") rows.sort((a, b) => b.reward - a.reward);
    if (order === "reward-asc") rows.sort((a, b) => a.reward - b.reward);
    if (order === "advantage-desc") rows.sort((a, b) => (b.advantage || 0) - (a.advantage || 0));
    el("count").textContent = `${{rows.length}} rollouts at step ${{el("step").value}}`;
    el("list").innerHTML = rows.map((r) => `<div class="rollout">
      <div class="meta">group ${{r.group}} · reward ${{num(r.reward)}} · advantage ${{num(r.advantage)}} · ${{r.length}} tokens
      · answer <code>${{esc(r.answer)}}</code> (${{esc(r.answer_form || "none")}})
      ${{r.correct == null ? "" : `<span class="badge ${{r.correct > 0.5 ? "good" : "bad"}}">${{r.correct > 0.5 ? "right" : "wrong"}}</span>`}}
      ${{r.truncated ? `<span class="badge cut">truncated</span>` : ""}}</div>
      <pre class="prompt">${{esc(r.prompt)}}</pre><pre class="completion">${{body(r)}}</pre></div>`).join("");
  }}
  el("run").addEventListener("change", fill);
  for (const id of ["step", "form", "order"]) el(id).addEventListener("change", render);
  if (runs.length) fill(); else el("count").textContent = "No rollouts were kept for this run (rollouts: false, or none logged yet).";
}})();
</script>
</body></html>
"""
