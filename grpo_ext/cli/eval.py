"""``grpo-ext eval``: benchmark accuracy (top-1, maj@k, pass@k, no_answer) of a model."""

from __future__ import annotations

import argparse
import os


DEFAULT_EVAL_SPLITS = {"gsm8k": "test", "math": "test", "math500": "test", "cmath": "test", "mgsm_zh": "test"}


def evaluate_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="grpo-ext eval", description="Evaluate a model on math benchmarks.")
    p.add_argument("--model", default=None, help="model path or Hub id (or --samples)")
    p.add_argument("--samples", default=None, help="JSONL of completions made elsewhere, one question per line: answer, "
                   "completions (list), optional benchmark / level / subject / grade / question; no model is loaded")
    p.add_argument("--datasets", default="gsm8k,math500,cmath", help="comma-separated benchmark names")
    p.add_argument("--dataset_path", action="append", default=[], help="name=path of local files (repeatable)")
    p.add_argument("--template", default="chat")
    p.add_argument("--k", type=int, default=None, help="samples for maj@k / pass@k (default: 1, greedy top-1 only; "
                   "with --samples, the number of completions per question)")
    p.add_argument("--max_new_tokens", type=int, default=1024)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N questions of each benchmark")
    p.add_argument("--use_vllm", action="store_true")
    p.add_argument("--output_dir", default="grpo-ext-eval")
    p.add_argument("--compare", default=None, help="a results.json to compare with (before -> after table and PNG)")
    opts = p.parse_args(argv)
    if (opts.model is None) == (opts.samples is None):
        p.error("give either --model (generate and score) or --samples FILE (score completions made elsewhere)")
    if opts.k is not None and opts.k < 1:
        p.error(f"--k must be at least 1, got {opts.k}")

    from ..evaluation import evaluate, evaluate_samples

    if opts.samples is not None:
        if not os.path.isfile(opts.samples):
            p.error(f"--samples {opts.samples!r} does not exist")
        try:
            results = evaluate_samples(opts.samples, k=opts.k)
        except ValueError as err:
            p.error(str(err))
        return _report(results, opts)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..data import load_math_dataset

    paths = dict(item.split("=", 1) for item in opts.dataset_path)
    tokenizer = AutoTokenizer.from_pretrained(opts.model)
    model = opts.model if opts.use_vllm else AutoModelForCausalLM.from_pretrained(opts.model, dtype="auto")
    results = []
    for name in [n.strip() for n in opts.datasets.split(",") if n.strip()]:
        ds = load_math_dataset(name, DEFAULT_EVAL_SPLITS.get(name, "test"), path=paths.get(name), template=opts.template)
        if opts.limit:
            ds = ds.select(range(min(opts.limit, len(ds))))
        results.append(evaluate(model, tokenizer, ds, benchmark=name, k=opts.k or 1, max_new_tokens=opts.max_new_tokens,
                                batch_size=opts.batch_size, use_vllm=opts.use_vllm))
    return _report(results, opts)


def _report(results, opts) -> int:
    from ..evaluation import compare_results, save_results

    written = save_results(results, opts.output_dir)
    print(open(written["markdown"], encoding="utf-8").read())
    if opts.compare:  # top-1 where there is one; completions scored from --samples compare on mean@k
        first = results[0]["metrics"]
        metric = "top1" if "top1" in first else f"mean@{results[0]['k']}"
        print(compare_results(opts.compare, results, metric=metric, output_dir=opts.output_dir))
    return 0


run = evaluate_command
