"""Throughput and accuracy of grpo-ext's verification against plain sequential math-verify.

Both start from the same completion texts and gold answers and end with a verdict:
- math-verify: ``verify(parse("$" + gold + "$"), parse(completion))`` in the main thread (its own
  timeouts; the gold is wrapped in ``$`` so that bare LaTeX golds parse);
- grpo-ext: ``grpo_ext.rewards.accuracy_reward`` (extraction, exact decisions, then the 2-worker
  sandbox pool), with the verdict cache cleared at the start of each workload.

Workloads, synthetic: GSM8K-style numeric answers (``#### N`` and ``\\boxed{N}``, some with ``$``
and thousands separators), MATH-style LaTeX answers (fractions, radicals, polynomials, intervals,
matrices). Real (from ``../shared/data``, skipped when absent): MATH-500's 500 reference solutions
against their answers, GSM8K train's worked answers against their ``#### N``, the same GSM8K
answers in GPT-3's form (ending ``A: N``), and **long chain-of-thought completions**: for each of
64 MATH-500 questions, 8 samples of 2-5 thousand characters (two other reference solutions as
reasoning, then the question's own), whose final answers repeat within the group: the gold as
written, the gold rewritten so that only symbolic algebra shows it equal (``1 \\cdot (gold)``),
another question's answer, and the gold stated in a sentence without a box. They are scored in
steps of 16 questions x 8 samples, as a GRPO run scores them.

**Cold and warm**: in a fresh process per mode, one such step scored as the first call (a) with no
pool started, (b) right after ``grpo_ext.verify.warm_up()`` (what ``GRPOTrainer`` and ``evaluate``
call when they are built) has the workers up, (c) 3 s after that, as when a model loads meanwhile;
then a second step, warm, with the caches cleared; plus how long the workers take to come up.

Accuracy: the project's labelled equivalence cases (tests/equivalence_cases.py) and labelled whole
completions in real-output forms (tests/real_output_cases.py).

    python benchmarks/verify_throughput.py [--n 400] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from math_verify import parse, verify  # noqa: E402

from grpo_ext import verify as gv  # noqa: E402
from grpo_ext.rewards import accuracy_reward  # noqa: E402
from tests.equivalence_cases import ALL_CASES  # noqa: E402
from tests.real_output_cases import CASES as REAL_OUTPUT_CASES  # noqa: E402


def numeric_workload(n, rng):
    rows = []
    for i in range(n):
        value = rng.randint(1, 99999)
        right = rng.random() < 0.5
        shown = value if right else value + rng.randint(1, 9)
        style = i % 4
        if style == 0:
            text = f"She sells {shown // 2} then {shown - shown // 2} more.\n#### {shown}"
        elif style == 1:
            text = f"So the total is \\boxed{{{shown:,}}}."
        elif style == 2:
            text = f"The answer is ${shown}."
        else:
            text = f"Thus we get \\boxed{{{shown}}} dollars."
        rows.append((text, str(value)))
    return rows


LATEX_TEMPLATES = [
    ("\\frac{{{a}}}{{{b}}}", "\\frac{{{a2}}}{{{b2}}}"),
    ("{a}\\sqrt{{{b}}}", "\\sqrt{{{a_sq_b}}}"),
    ("x^2+{s}x+{p}", "(x+{a})(x+{b})"),
    ("[{a},{b})", "[{a},{b})"),
    ("\\begin{{pmatrix}}{a}\\\\{b}\\end{{pmatrix}}", "\\begin{{pmatrix}}{a}\\\\{b}\\end{{pmatrix}}"),
]


def latex_workload(n, rng):
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 50), rng.randint(51, 99)
        gold_t, pred_t = LATEX_TEMPLATES[i % len(LATEX_TEMPLATES)]
        k = rng.randint(2, 5)
        fields = dict(a=a, b=b, a2=a * k, b2=b * k, a_sq_b=a * a * b, s=a + b, p=a * b)
        gold = gold_t.format(**fields)
        pred = pred_t.format(**fields)
        if rng.random() < 0.5:  # a wrong prediction half of the time
            pred = pred.replace(str(a), str(a + 1), 1)
        rows.append((f"Therefore the result is $\\boxed{{{pred}}}$.", gold))
    return rows


def real_workloads(data: Path, n: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """Reference solutions of the real benchmark files used as completions (none when absent)."""
    if not data.is_dir():
        print(f"(no real workloads: {data} not found)")
        return []

    def rows(name):
        return [json.loads(line) for line in (data / name).read_text(encoding="utf-8").splitlines() if line.strip()]

    math500 = [(r["solution"], r["answer"]) for r in rows("math500/test.jsonl")]
    gsm8k = [(r["answer"], r["answer"].split("####")[-1].strip()) for r in rows("gsm8k/train.jsonl")[: 4 * n]]
    gpt3 = [(re.sub(r"####\s*(.*)$", r"A: \1", text), gold) for text, gold in gsm8k]
    return [("MATH-500 reference solutions (real)", math500), ("GSM8K train worked answers (real)", gsm8k),
            ("GSM8K answers in GPT-3's 'A: N' form (real)", gpt3)]


_BOX_RE = re.compile(r"\\boxed\{")


def _replace_last_box(solution: str, content: str) -> str:
    start = solution.rfind("\\boxed{")
    if start < 0:
        return solution
    depth, i = 0, start + len("\\boxed")
    for i in range(start + len("\\boxed"), len(solution)):
        depth += solution[i] == "{"
        depth -= solution[i] == "}"
        if depth == 0:
            break
    return solution[:start] + "\\boxed{" + content + "}" + solution[i + 1:]


def long_cot_workload(data: Path, questions: int = 64, samples: int = 8, seed: int = 0) -> list[tuple[str, str]]:
    """Long chain-of-thought completions on MATH-500 questions, ``samples`` per question (module docstring)."""
    rows = [json.loads(line) for line in (data / "math500/test.jsonl").read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(seed)
    out = []
    for q, row in enumerate(rows[:questions]):
        gold = row["answer"]
        others = rng.sample([r for r in rows if r is not row], 2)
        reasoning = "\n\n".join(_BOX_RE.sub("{", r["solution"]) for r in others)
        prefix = f"Let me think step by step.\n\n{reasoning}\n\nNow the question itself.\n\n"
        scalar = not re.search(r"[,=\\]text|\\begin|[,=]", gold)
        variants = [
            prefix + row["solution"],
            prefix + _replace_last_box(row["solution"], f"1 \\cdot \\left({gold}\\right)" if scalar else gold),
            prefix + _replace_last_box(row["solution"], rows[(q + 1) % len(rows)]["answer"]),
            prefix + _BOX_RE.sub("{", row["solution"]) + f"\n\nSo the answer is ${gold}$.",
        ]
        picks = rng.choices(range(4), weights=[0.35, 0.25, 0.3, 0.1], k=samples)
        out += [(variants[k], gold) for k in picks]
    return out


def time_math_verify(rows):
    start = time.perf_counter()
    verdicts = [verify(parse(f"${gold}$"), parse(text)) for text, gold in rows]
    return time.perf_counter() - start, verdicts


def time_grpo_ext(rows, step: int | None = None):
    """grpo-ext's time over ``rows``, one call per ``step`` rows (all at once when None)."""
    gv.clear_cache()
    step = step or len(rows)
    start = time.perf_counter()
    rewards = []
    for i in range(0, len(rows), step):
        chunk = rows[i: i + step]
        rewards += accuracy_reward([t for t, _ in chunk], answer=[g for _, g in chunk])
    return time.perf_counter() - start, [r == 1.0 for r in rewards]


_COLD_PROBE = """
import json, logging, sys, time
logging.disable(logging.WARNING)
sys.path.insert(0, {root!r})
from benchmarks.verify_throughput import long_cot_workload
from pathlib import Path
from grpo_ext import verify
from grpo_ext.rewards import accuracy_reward
rows = long_cot_workload(Path({data!r}), questions=32)
first, second = rows[:128], rows[128:256]
out = {{}}
if {prestart!r}:
    t = time.perf_counter()
    verify.warm_up(wait=True)
    out["workers_up_s"] = time.perf_counter() - t
    time.sleep({delay!r})  # what the run does meanwhile (loading a model), if anything
t = time.perf_counter()
accuracy_reward([c for c, _ in first], answer=[g for _, g in first])
out["first_s"] = time.perf_counter() - t
verify.clear_cache()
t = time.perf_counter()
accuracy_reward([c for c, _ in second], answer=[g for _, g in second])
out["warm_s"] = time.perf_counter() - t
print("RESULT " + json.dumps(out))
"""


def cold_and_warm(data: Path) -> None:
    """The first reward call of a fresh process against a warm one (module docstring)."""
    root = str(Path(__file__).resolve().parents[1])
    print("\nCold start: one step of 16 questions x 8 long completions, each mode in a fresh process")
    print("| mode | workers up (s) | first call (s) | warm call (s) | first / warm |\n|---|---|---|---|---|")
    modes = (("no pool started before the call", False, 0.0),
             ("warm_up(), the call as soon as the workers are up", True, 0.0),
             ("warm_up(), the call 3 s later (a model loading meanwhile)", True, 3.0))
    for label, prestart, delay in modes:
        code = _COLD_PROBE.format(root=root, data=str(data), prestart=prestart, delay=delay)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"| {label} | failed: {proc.stderr.strip().splitlines()[-1:]} | | | |")
            continue
        r = json.loads(line[len("RESULT "):])
        up = f"{r['workers_up_s']:.2f}" if "workers_up_s" in r else "-"
        print(f"| {label} | {up} | {r['first_s']:.3f} | {r['warm_s']:.3f} | {r['first_s'] / r['warm_s']:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="completions per synthetic workload (GSM8K: 4n)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                        help="the real benchmark files (../shared/data)")
    opts = parser.parse_args()
    logging.disable(logging.WARNING)
    rng = random.Random(0)
    gv.configure(num_workers=2)
    gv.warm_up(wait=True)  # start the workers outside the timing

    print("| workload | n | math-verify (completions/s) | grpo-ext, 2 workers (completions/s) | speed-up | verdicts agree |")
    print("|---|---|---|---|---|---|")
    workloads = [("GSM8K-style numbers", numeric_workload(opts.n, rng)), ("MATH-style LaTeX", latex_workload(opts.n, rng))]
    real = real_workloads(Path(opts.data), opts.n)
    if real:
        real.append(("Long chain-of-thought, 64 MATH-500 questions x 8 samples (real questions)",
                     long_cot_workload(Path(opts.data))))
    for name, rows in workloads + real:
        step = 128 if name.startswith("Long") else None
        t_mv, v_mv = time_math_verify(rows)
        t_ge, v_ge = time_grpo_ext(rows, step=step)
        agree = sum(a == b for a, b in zip(v_mv, v_ge)) / len(rows)
        print(f"| {name} | {len(rows)} | {len(rows) / t_mv:.0f} | {len(rows) / t_ge:.0f} | {t_mv / t_ge:.2f}x | {agree:.1%} |")
        if step:  # the same rows again: both warm (math-verify's parse cache, the workers' parser tables)
            t_mv, _ = time_math_verify(rows)
            t_ge, _ = time_grpo_ext(rows, step=step)
            print(f"| {name}, warm (second pass, verdict caches cleared) | {len(rows)} | {len(rows) / t_mv:.0f} | "
                  f"{len(rows) / t_ge:.0f} | {t_mv / t_ge:.2f}x | |")

    completions = [f"The final result is $\\boxed{{{pred}}}$." for pred, _, _, _ in ALL_CASES]
    golds = [gold for _, gold, _, _ in ALL_CASES]
    expected = [e for _, _, e, _ in ALL_CASES]
    _, mv = time_math_verify(list(zip(completions, golds)))
    _, ge = time_grpo_ext(list(zip(completions, golds)))
    mv_right = sum(a == b for a, b in zip(mv, expected))
    ge_right = sum(a == b for a, b in zip(ge, expected))
    print(f"\nAccuracy on {len(expected)} labelled equivalence cases (tests/equivalence_cases.py):")
    print("| verifier | correct | accuracy |\n|---|---|---|")
    print(f"| math-verify | {mv_right} | {mv_right / len(expected):.1%} |")
    print(f"| grpo-ext | {ge_right} | {ge_right / len(expected):.1%} |")
    misses = [(c[0], c[1], c[2]) for c, v in zip(ALL_CASES, mv) if v != c[2]]
    print("\nmath-verify's misses (prediction, gold, expected):")
    for miss in misses:
        print(f"  {miss}")

    rows = [(c, g) for c, g, _ in REAL_OUTPUT_CASES]
    expected = [r == 1.0 for _, _, r in REAL_OUTPUT_CASES]
    _, mv = time_math_verify(rows)
    _, ge = time_grpo_ext(rows)
    print(f"\nAccuracy on {len(rows)} labelled whole completions in real-output forms (tests/real_output_cases.py):")
    print("| verifier | correct | accuracy |\n|---|---|---|")
    for name, verdicts in (("math-verify", mv), ("grpo-ext", ge)):
        right = sum(a == b for a, b in zip(verdicts, expected))
        print(f"| {name} | {right} | {right / len(rows):.1%} |")
    print("math-verify's misses:", [c[:60] for (c, _), v, e in zip(rows, mv, expected) if v != e])
    print("grpo-ext's misses:", [c[:60] for (c, _), v, e in zip(rows, ge, expected) if v != e])
    if Path(opts.data).is_dir():
        cold_and_warm(Path(opts.data))


if __name__ == "__main__":
    main()
