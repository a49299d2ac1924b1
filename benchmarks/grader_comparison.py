"""grpo-ext's default grader beside DeepSeek-Math's rules, on real reference solutions.

Writes samples files that ``grpo-ext eval --samples FILE --grader both`` reads (one question per line,
its reference solution as the one completion) and scores them with both graders:

- **math500**: MATH-500's 500 reference solutions (``solution``) against their ``answer``; the
  question and solution go along, so DeepSeek's rules read the gold from the solution, as they do
  (for them this row is right by construction);
- **math500-answer**: the same, without the solution: both graders read the ``answer`` column, so
  the figure says how each matches a solution's box against the dataset's separately written answer;
- **math500-unboxed**: the same with every ``\boxed{X}`` of the completion replaced by ``X``, as a model
  that forgets the box writes it: the extraction without its marker;
- **gsm8k**: GSM8K test's 1,319 worked answers (calculator annotations removed, ending ``#### N``)
  against ``N``.

A reference solution is right by construction, so each figure is that grader's agreement with the
dataset's own label; every miss is listed (``--show``) with what each grader read.

    python benchmarks/grader_comparison.py [--data ../shared/data] [--out /tmp/grader-samples] [--show 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_CALCULATOR_RE = re.compile(r"<<[^<>]*>>")


def _unbox(text: str) -> str:
    """``text`` with each ``\\boxed{X}`` replaced by ``X`` (braces matched)."""
    out, i = [], 0
    while True:
        j = text.find("\\boxed{", i)
        if j < 0:
            return "".join(out) + text[i:]
        out.append(text[i:j])
        depth, k = 0, j + len("\\boxed{")
        start = k
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                if depth == 0:
                    break
                depth -= 1
            k += 1
        out.append(text[start:k])
        i = k + 1


def write_samples(data: str, out: str) -> dict[str, str]:
    os.makedirs(out, exist_ok=True)
    paths = {}
    rows = [json.loads(line) for line in open(os.path.join(data, "math500", "test.jsonl"), encoding="utf-8")]
    paths["math500"] = os.path.join(out, "math500.jsonl")
    with open(paths["math500"], "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"benchmark": "math500", "question": r["problem"], "solution": r["solution"],
                                "answer": r["answer"], "completions": [r["solution"]], "level": r["level"],
                                "subject": r["subject"]}, ensure_ascii=False) + "\n")
    for name, keep_solution, unbox in (("math500-answer", False, False), ("math500-unboxed", False, True)):
        paths[name] = os.path.join(out, f"{name}.jsonl")
        with open(paths[name], "w", encoding="utf-8") as f:
            for r in rows:
                text = _unbox(r["solution"]) if unbox else r["solution"]
                f.write(json.dumps({"benchmark": name, "question": r["problem"], "answer": r["answer"],
                                    "completions": [text]}, ensure_ascii=False) + "\n")
    rows = [json.loads(line) for line in open(os.path.join(data, "gsm8k", "test.jsonl"), encoding="utf-8")]
    paths["gsm8k"] = os.path.join(out, "gsm8k.jsonl")
    with open(paths["gsm8k"], "w", encoding="utf-8") as f:
        for r in rows:
            text = _CALCULATOR_RE.sub("", r["answer"])
            f.write(json.dumps({"benchmark": "gsm8k", "question": r["question"],
                                "answer": text.rpartition("####")[2].strip().replace(",", ""),
                                "completions": [text]}, ensure_ascii=False) + "\n")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    parser.add_argument("--out", default="/tmp/grader-samples")
    parser.add_argument("--show", type=int, default=20, help="misses to list per benchmark and grader")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        sys.exit(f"no benchmark files at {args.data}: pass --data")
    paths = write_samples(args.data, args.out)
    from grpo_ext.evaluation import evaluate_samples

    print("| benchmark | n | default grader | DeepSeek's rules | both right | default only | DeepSeek only | neither |")
    print("|---|---|---|---|---|---|---|---|")
    misses = []
    for name, path in paths.items():
        (result,) = evaluate_samples(path, grader="both")
        records = result["records"]
        ours = [r["sample_correct"][0] for r in records]
        theirs = [r["deepseek"]["sample_correct"][0] for r in records]
        n = len(records)
        counts = [sum(a and b for a, b in zip(ours, theirs)), sum(a and not b for a, b in zip(ours, theirs)),
                  sum(b and not a for a, b in zip(ours, theirs)), sum(not a and not b for a, b in zip(ours, theirs))]
        print(f"| {name} | {n} | {100 * sum(ours) / n:.1f} | {100 * sum(theirs) / n:.1f} | "
              + " | ".join(str(c) for c in counts) + " |")
        for r, a, b in zip(records, ours, theirs):
            if not (a and b):
                misses.append((name, a, b, r["gold"], r["sample_answers"][0], r["deepseek"]["sample_answers"][0]))
    for grader, index in (("default", 1), ("DeepSeek", 2)):
        listed = [m for m in misses if not m[index]][: args.show * len(paths)]
        if listed:
            print(f"\nmissed by the {grader} grader (benchmark | gold | default read | DeepSeek read):")
        for name, _, _, gold, ours, theirs in listed:
            print(f"- {name} | {gold!r} | {ours!r} | {theirs!r}")
    print(f"\nsamples files: {', '.join(paths.values())}; the CLI: grpo-ext eval --samples FILE --grader both")
    subprocess.run([sys.executable, "-m", "grpo_ext.cli", "eval", "--samples", paths["math500"], "--grader", "both",
                    "--output_dir", os.path.join(args.out, "eval")], check=True)


if __name__ == "__main__":
    main()
