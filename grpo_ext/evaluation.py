"""Benchmark evaluation: top-1, maj@k and pass@k, and paper-style before/after tables.

- **top-1**: greedy decoding, one answer per question (the paper's Table 5 numbers).
- **maj@k**: k sampled answers per question, grouped by mathematical equivalence (``1/2`` and
  ``0.5`` are one vote); the biggest group wins, a tie goes to the group whose first member was
  sampled first; correct when that group's answer is equivalent to the gold. Samples with no
  extractable answer do not vote.
- **pass@k**: the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` from ``n >= k`` samples of
  which ``c`` are correct (Chen et al., 2021).

Generation uses transformers' ``generate`` by default and vLLM when asked (``use_vllm=True``).
Sampling runs under its own seed inside ``torch.random.fork_rng``, so evaluating during training
does not change the training RNG stream.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import torch

from . import verify
from .rewards._common import completion_text
from .verify.verdicts import EQUAL

GROUP_COLUMNS = ("level", "subject", "grade")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct: ``1 - C(n-c, k) / C(n, k)``."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def equivalence_groups(answers: Sequence[str | None]) -> list[list[int]]:
    """Indices of ``answers`` grouped by equivalence, groups ordered by their first index.

    None (no answer) is left out of every group.
    """
    normalised = {}
    for i, a in enumerate(answers):
        if a is not None:
            normalised.setdefault(verify.normalize_answer(a), []).append(i)
    keys = list(normalised)
    parent = list(range(len(keys)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = [(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys))]
    if pairs:
        same = verify.are_equivalent([keys[j] for _, j in pairs], [keys[i] for i, _ in pairs])
        for (i, j), eq in zip(pairs, same):
            if eq:
                parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for idx, key in enumerate(keys):
        groups.setdefault(find(idx), []).extend(normalised[key])
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def majority_vote(answers: Sequence[str | None]) -> int | None:
    """Index of the answer that wins the equivalence-grouped vote (ties: earliest group), or None."""
    groups = equivalence_groups(answers)
    if not groups:
        return None
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return best[0]


# ----- generation ----------------------------------------------------------------------------
def _prompt_texts(tokenizer, prompts: Sequence[Any]) -> tuple[list[str], bool]:
    conversational = bool(prompts) and isinstance(prompts[0], list)
    if conversational:
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "the prompts are conversational but the tokenizer has no chat template; load the dataset with "
                "template='text' (or 'raw'), or use a tokenizer with a chat template"
            )
        # a conversation that ends in an assistant message is continued (a step prefix, for step labels)
        return [tokenizer.apply_chat_template(p, tokenize=False, continue_final_message=True)
                if p and p[-1].get("role") == "assistant" else
                tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts], True
    return [str(p) for p in prompts], False


def _hf_generate(model, tokenizer, texts, add_special, num_samples, do_sample, temperature, max_new_tokens,
                 batch_size):
    device = next(model.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    outputs: list[list[str]] = []
    try:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=add_special).to(device)
            kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=pad_id, num_return_sequences=num_samples)
            kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0) if do_sample else kwargs.update(
                do_sample=False)
            out = model.generate(**enc, **kwargs)
            decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            outputs.extend(decoded[i : i + num_samples] for i in range(0, len(decoded), num_samples))
    finally:
        tokenizer.padding_side = side
    return outputs


def _vllm_generate(model, tokenizer, texts, add_special, num_samples, do_sample, temperature, max_new_tokens, seed):
    """vLLM's completions of ``texts``, given as token ids tokenised as the HF path does them: a chat
    template's text already holds the BOS, so it is not added twice; greedy (or sampling at
    ``temperature``) with ``top_p=1``, stopping at the tokenizer's EOS."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as err:
        raise ImportError("use_vllm=True needs vLLM: pip install 'grpo-ext[vllm]'") from err
    if not isinstance(model, str):
        raise ValueError("with use_vllm=True, pass the model as a path or Hub id (vLLM loads its own copy)")
    llm = LLM(model=model, seed=seed)
    stop = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else None
    params = SamplingParams(n=num_samples, temperature=temperature if do_sample else 0.0, top_p=1.0,
                            max_tokens=max_new_tokens, seed=seed, stop_token_ids=stop)
    ids = tokenizer(list(texts), add_special_tokens=add_special)["input_ids"]
    requests = llm.generate([{"prompt_token_ids": list(row)} for row in ids], params)
    return [[o.text for o in request.outputs] for request in requests]


def load_for_generation(path: str, device: str = "auto"):
    """A causal LM from ``path`` on the accelerator: one GPU (``device_map`` on it), several (``"auto"``,
    spread by accelerate), or the CPU; bf16 where the GPU has it (fp16 otherwise), float32 on the CPU.

    Args:
        device: ``"auto"`` (the GPUs if there are any), ``"cpu"``, ``"cuda"`` (all GPUs) or ``"cuda:N"``.

    Returns:
        ``(model, placement)``: the model and a line saying where it runs and in which dtype.
    """
    from transformers import AutoModelForCausalLM

    kwargs, where = placement(device)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model, where


def placement(device: str = "auto") -> tuple[dict, str]:
    """``from_pretrained`` arguments for ``device`` (see :func:`load_for_generation`) and a description."""
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cpu" or (device == "auto" and gpus == 0):
        return {"dtype": torch.float32}, "cpu, float32"
    if gpus == 0:
        raise ValueError(f"device {device!r}: no CUDA GPU is visible (torch.cuda.is_available() is False)")
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    name = "bfloat16" if dtype == torch.bfloat16 else "float16"
    if device.startswith("cuda:"):
        index = int(device[5:])
        if index >= gpus:
            raise ValueError(f"device {device!r}: only {gpus} GPU(s) are visible")
        return {"dtype": dtype, "device_map": {"": index}}, f"{device}, {name}"
    if gpus == 1:
        return {"dtype": dtype, "device_map": {"": 0}}, f"cuda:0, {name}"
    return {"dtype": dtype, "device_map": "auto"}, f"{gpus} GPUs (device_map auto), {name}"


def generate_completions(model, tokenizer, prompts: Sequence[Any], *, num_samples: int = 1, do_sample: bool = False,
                         temperature: float = 0.7, max_new_tokens: int = 1024, batch_size: int = 64, seed: int = 0,
                         use_vllm: bool = False) -> list[list[str]]:
    """``num_samples`` completions for each prompt (strings or conversational message lists)."""
    texts, chat = _prompt_texts(tokenizer, prompts)
    if use_vllm:
        return _vllm_generate(model, tokenizer, texts, not chat, num_samples, do_sample, temperature, max_new_tokens,
                              seed)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices), torch.no_grad():
            torch.manual_seed(seed)
            return _hf_generate(model, tokenizer, texts, not chat, num_samples, do_sample, temperature,
                                max_new_tokens, batch_size)
    finally:
        model.train(was_training)


# ----- scoring -------------------------------------------------------------------------------
#: ``default``: grpo-ext's verifier; ``deepseek``: DeepSeek-Math's rules (:mod:`grpo_ext.verify.deepseek`);
#: ``both``: the default's metrics, and each again under DeepSeek's rules as ``"<metric> (deepseek)"``.
GRADERS = ("default", "deepseek", "both")


def _check_grader(grader: str) -> None:
    if grader not in GRADERS:
        raise ValueError(f"grader must be one of {', '.join(GRADERS)}, got {grader!r}")


def _default_records(greedy, samples, golds, k) -> list[dict]:
    n_q = len(golds)
    records = [{"gold": g} for g in golds]
    if greedy is not None:
        answers = verify.extract_answers([completion_text(c) for c in greedy])
        verdicts = verify.judge(answers, list(golds))
        for r, c, a, v in zip(records, greedy, answers, verdicts):
            r.update(greedy=c, greedy_answer=a, top1=float(v == EQUAL), greedy_no_answer=float(a is None))
    if samples is not None:
        flat_texts, flat_golds = [], []
        for q in range(n_q):
            flat_texts.extend(completion_text(c) for c in samples[q])
            flat_golds.extend([golds[q]] * len(samples[q]))
        flat_answers = verify.extract_answers(flat_texts)
        flat_correct = [v == EQUAL for v in verify.judge(flat_answers, flat_golds)]
        _add_sample_metrics(records, samples, flat_answers, flat_correct, k)
    return records


def _add_sample_metrics(records, samples, flat_answers, flat_correct, k, vote=None) -> None:
    """Each question's samples: their answers and correctness, maj@k (the winner among the first k:
    :func:`majority_vote`, or ``vote(start, k)`` over the flat lists from ``start``), pass@k and the share
    with no answer."""
    pos = 0
    for q, r in enumerate(records):
        n = len(samples[q])
        answers, correct = flat_answers[pos : pos + n], flat_correct[pos : pos + n]
        pos += n
        winner = majority_vote(answers[:k]) if vote is None else vote(pos - n, k)
        r.update(
            sample_answers=answers,
            sample_correct=correct,
            majority_answer=answers[winner] if winner is not None else None,
            maj=float(winner is not None and correct[winner]),
            pass_k=pass_at_k(n, sum(correct), k),
            samples_no_answer=float(sum(a is None for a in answers)) / max(n, 1),
        )


def _deepseek_records(greedy, samples, golds, k, rules, questions, solutions) -> list[dict]:
    """Records as :func:`_default_records` makes them, graded by DeepSeek-Math's rules (an answer it
    reads as empty is no answer; maj@k groups the answers it reads by DeepSeek's equality)."""
    from .verify import deepseek

    records: list[dict] = [{} for _ in golds]
    if greedy is not None:
        for r, c, g, rule, q, sol in zip(records, greedy, golds, rules, questions, solutions):
            graded = deepseek.grade(completion_text(c), g, rules=rule, question=q or "", solution=sol)
            r.update(greedy_answer=graded["answer"] or None, top1=float(graded["correct"]),
                     greedy_no_answer=float(not graded["answer"]))
    if samples is not None:
        flat_answers, flat_correct, flat_read = [], [], []
        for q_index, texts in enumerate(samples):
            for c in texts:
                graded = deepseek.grade(completion_text(c), golds[q_index], rules=rules[q_index],
                                        question=questions[q_index] or "", solution=solutions[q_index])
                flat_answers.append(graded["answer"] or None)
                flat_correct.append(graded["correct"])
                flat_read.append(graded["read"])

        def vote(start: int, count: int) -> int | None:  # the biggest group by DeepSeek's equality, ties: first
            read = flat_read[start : start + count]
            groups: list[list[int]] = []
            for i, answer in enumerate(read):
                if not answer:
                    continue
                home = next((g for g in groups if deepseek.same_answer(read[g[0]], answer)), None)
                home.append(i) if home is not None else groups.append([i])
            return max(groups, key=lambda g: (len(g), -g[0]))[0] if groups else None

        _add_sample_metrics(records, samples, flat_answers, flat_correct, k, vote=vote)
    return records


def score_samples(greedy: Sequence[str] | None, samples: Sequence[Sequence[str]] | None, golds: Sequence[str], k: int,
                  last_number_fallback: bool = False, *, grader: str = "default", benchmark: str | None = None,
                  questions: Sequence[str | None] | None = None,
                  solutions: Sequence[str | None] | None = None) -> list[dict]:
    """Per-question records with top-1, maj@k and pass@k correctness from given completions.

    Answers are extracted as :func:`grpo_ext.verify.extract_answers` does by default (markers, then
    math-verify's extraction, then the last number); ``last_number_fallback`` is kept for callers
    of the strict mode and has no effect here. Each record also says whether its greedy completion
    (``greedy_no_answer``) and how many of its samples (``samples_no_answer``) had no answer at all.

    Args:
        grader: ``default``, ``deepseek`` (DeepSeek-Math's rules for ``benchmark``, reading
            ``questions`` and the reference ``solutions`` where MATH's rules need them) or ``both``
            (the default's records, each with its DeepSeek grading under ``"deepseek"``).
    """
    _check_grader(grader)
    if samples is not None:
        for q in range(len(golds)):
            if len(samples[q]) < k:
                raise ValueError(f"question {q} has {len(samples[q])} samples, fewer than k={k}")
    if grader == "default":
        return _default_records(greedy, samples, golds, k)
    from .verify import deepseek

    n = len(golds)
    rules = [deepseek.rules_for(benchmark)] * n
    questions = list(questions) if questions is not None else [""] * n
    solutions = list(solutions) if solutions is not None else [None] * n
    theirs = _deepseek_records(greedy, samples, golds, k, rules, questions, solutions)
    if grader == "deepseek":
        for r, g, c in zip(theirs, golds, greedy if greedy is not None else [None] * n):
            r["gold"] = g
            if c is not None:
                r["greedy"] = c
        return theirs
    records = _default_records(greedy, samples, golds, k)
    for r, t in zip(records, theirs):
        r["deepseek"] = t
    return records


def summarise(records: list[dict], k: int) -> dict[str, float]:
    """Accuracies (top1, maj@k, pass@k) over records of :func:`score_samples`, with their count n; records
    graded by both graders also give each metric under DeepSeek's rules, as ``"<metric> (deepseek)"``."""
    out: dict[str, float] = {"n": len(records)}
    if records and "deepseek" in records[0]:
        theirs = summarise([r["deepseek"] for r in records], k)
        out.update(summarise([{x: v for x, v in r.items() if x != "deepseek"} for r in records], k))
        out.update({f"{m} (deepseek)": v for m, v in theirs.items() if m != "n"})
        return out
    if records and "top1" in records[0]:
        out["top1"] = sum(r["top1"] for r in records) / len(records)
    if records and "maj" in records[0]:
        out[f"maj@{k}"] = sum(r["maj"] for r in records) / len(records)
        out[f"pass@{k}"] = sum(r["pass_k"] for r in records) / len(records)
    # the share of completions with no extractable answer (greedy ones if there are, else samples)
    key = "greedy_no_answer" if records and "greedy_no_answer" in records[0] else "samples_no_answer"
    if records and key in records[0]:
        out["no_answer"] = sum(r[key] for r in records) / len(records)
    return out


def evaluate(model, tokenizer, dataset, *, benchmark: str | None = None, k: int = 1, num_samples: int | None = None,
             greedy: bool = True, temperature: float = 0.7, max_new_tokens: int = 1024, batch_size: int = 32,
             seed: int = 0, use_vllm: bool = False, last_number_fallback: bool = False,
             group_by: Sequence[str] = GROUP_COLUMNS, keep_samples: bool = True, grader: str = "default") -> dict:
    """Evaluate ``model`` on a dataset with ``prompt`` and ``answer`` columns (:func:`load_math_dataset`).

    Args:
        k: samples per question for maj@k and pass@k; ``k=1`` evaluates greedy top-1 only.
        num_samples: samples drawn per question (default ``k``); pass@k uses all of them.
        greedy: also decode greedily for top-1.
        group_by: dataset columns to break the metrics down by, where present.
        keep_samples: keep the per-question records (completions, answers) in the result.
        grader: ``default`` (grpo-ext's verifier), ``deepseek`` (DeepSeek-Math's grading rules,
            :mod:`grpo_ext.verify.deepseek`, by ``benchmark``) or ``both`` (each metric also as
            ``"<metric> (deepseek)"``).

    Returns:
        ``{"benchmark", "k", "grader", "metrics": {"n", "top1", "maj@k", "pass@k", "no_answer", "no_gold"}, "by":
        {column: {value: metrics}}, "records": [...]}``; save it with :func:`save_results`. Rows without a
        gold answer are left out of every metric and counted in ``no_gold``.
    """
    for col in ("prompt", "answer"):
        if col not in dataset.column_names:
            raise ValueError(f"the dataset has no {col!r} column (columns: {dataset.column_names}); "
                             "load it with grpo_ext.data.load_math_dataset")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to evaluate")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check_grader(grader)
    num_samples = num_samples or k
    if num_samples < k:
        raise ValueError(f"num_samples ({num_samples}) must be at least k ({k})")
    from .data import drop_rows_without_gold

    dataset, no_gold = drop_rows_without_gold(dataset, benchmark or "evaluation")
    if len(dataset) == 0:
        raise ValueError(f"no row of the dataset has a gold answer ({no_gold} without one): nothing to evaluate")
    prompts, golds = list(dataset["prompt"]), [str(a) for a in dataset["answer"]]
    verify.warm_up()  # the verification workers start while the model generates
    common = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, use_vllm=use_vllm)
    greedy_out = [c[0] for c in generate_completions(model, tokenizer, prompts, **common)] if greedy else None
    sampled = (generate_completions(model, tokenizer, prompts, num_samples=num_samples, do_sample=True,
                                    temperature=temperature, **common) if k > 1 else None)
    name = benchmark or (dataset["source"][0] if "source" in dataset.column_names else "dataset")
    column = (lambda c: list(dataset[c]) if c in dataset.column_names else None)
    records = score_samples(greedy_out, sampled, golds, k, last_number_fallback, grader=grader, benchmark=name,
                            questions=column("question"), solutions=column("solution"))
    by: dict[str, dict[str, dict]] = {}
    for col in group_by:
        if col in dataset.column_names:
            values = dataset[col]
            for value in sorted({v for v in values if v is not None}, key=str):
                subset = [r for r, v in zip(records, values) if v == value]
                by.setdefault(col, {})[str(value)] = summarise(subset, k)
    result = {"benchmark": name, "k": k, "grader": grader, "metrics": {**summarise(records, k), "no_gold": no_gold},
              "by": by}
    if keep_samples:
        result["records"] = records
    return result


# ----- completions made elsewhere ------------------------------------------------------------
def _sample_rows(path: str) -> list[dict]:
    """The rows of a samples file, checked: ``answer`` and ``completions`` (a list of strings) in each."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {number}: not JSON ({err.msg}); the file must be JSONL, one question "
                                 "per line") from None
            where = f"{path} line {number}"
            if not isinstance(row, dict) or "answer" not in row or "completions" not in row:
                raise ValueError(f"{where}: each row needs 'answer' (the gold) and 'completions' (a list of strings)")
            if not isinstance(row["completions"], list) or not row["completions"] or not all(
                    isinstance(c, str) for c in row["completions"]):
                raise ValueError(f"{where}: 'completions' must be a non-empty list of strings")
            if row["answer"] is None or not str(row["answer"]).strip():
                raise ValueError(f"{where}: 'answer' is empty; every question needs its gold answer")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def evaluate_samples(path: str, k: int | None = None, group_by: Sequence[str] = GROUP_COLUMNS,
                     keep_samples: bool = True, grader: str = "default") -> list[dict]:
    """Score completions generated elsewhere (vLLM, an API, another framework) without loading a model.

    ``path`` is JSONL, one row per question: ``answer`` (gold), ``completions`` (list of strings),
    optional ``benchmark`` (default: the file name without extension), optional ``level`` /
    ``subject`` / ``grade``, ``question`` and ``solution`` (the reference solution, which
    ``grader="deepseek"`` reads MATH golds from, as DeepSeek does). ``grader`` as in :func:`evaluate`;
    the benchmark name picks DeepSeek's rules (GSM8K, CMATH, MGSM-zh: one answer; any other: MATH's). ``k`` defaults to the number of completions of the
    question that has the fewest; every question needs at least ``k``.

    Returns one result per benchmark, as :func:`evaluate` returns them (so :func:`save_results` and
    :func:`compare_results` take them), with ``mean@k`` (the mean accuracy of the first k samples),
    ``maj@k``, ``pass@k`` and ``no_answer`` per benchmark and per level / subject / grade.
    """
    _check_grader(grader)
    rows = _sample_rows(path)
    fewest = min(len(r["completions"]) for r in rows)
    k = fewest if k is None else k
    if k < 1 or k > fewest:
        raise ValueError(f"k ({k}) must be between 1 and the fewest completions a question has ({fewest})")
    default = os.path.splitext(os.path.basename(path))[0]
    results = []
    for name in dict.fromkeys(str(r.get("benchmark") or default) for r in rows):
        subset = [r for r in rows if str(r.get("benchmark") or default) == name]
        text = (lambda key: [r[key] if isinstance(r.get(key), str) else None for r in subset])
        records = score_samples(None, [r["completions"] for r in subset], [str(r["answer"]) for r in subset], k,
                                grader=grader, benchmark=name, questions=text("question"), solutions=text("solution"))
        for record, row in zip(records, subset):
            record["mean"] = sum(record["sample_correct"][:k]) / k
            if "deepseek" in record:
                record["deepseek"]["mean"] = sum(record["deepseek"]["sample_correct"][:k]) / k
            if "question" in row:
                record["question"] = row["question"]

        def metrics(part):
            out = summarise(part, k)
            means = {f"mean@{k}": sum(r["mean"] for r in part) / len(part)}
            if part and "deepseek" in part[0]:
                means[f"mean@{k} (deepseek)"] = sum(r["deepseek"]["mean"] for r in part) / len(part)
            out.update(means)
            return out

        by: dict[str, dict[str, dict]] = {}
        for col in group_by:
            values = [r.get(col) for r in subset]
            for value in sorted({v for v in values if v is not None}, key=str):
                by.setdefault(col, {})[str(value)] = metrics([rec for rec, v in zip(records, values) if v == value])
        result = {"benchmark": name, "k": k, "grader": grader, "metrics": metrics(records), "by": by}
        if keep_samples:
            result["records"] = records
        results.append(result)
    return results


# ----- reports -------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def results_table(results: dict | Sequence[dict]) -> str:
    """A markdown table of one or several :func:`evaluate` results (accuracies in %)."""
    results = [results] if isinstance(results, dict) else list(results)
    metric_names = list(dict.fromkeys(m for r in results for m in r["metrics"] if m != "n"))
    if not any(r["metrics"].get("no_gold") for r in results):
        metric_names = [m for m in metric_names if m != "no_gold"]  # a count, shown only where rows were left out
    lines = ["| benchmark | n | " + " | ".join(metric_names) + " |", "|---|---|" + "---|" * len(metric_names)]
    for r in results:
        cells = [str(r["metrics"].get(m, 0)) if m == "no_gold" else _fmt(r["metrics"].get(m)) for m in metric_names]
        lines.append(f"| {r['benchmark']} | {r['metrics']['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_results(results: dict | Sequence[dict], output_dir: str, name: str = "results") -> dict[str, str]:
    """Write ``<name>.json`` and ``<name>.md`` to ``output_dir``; return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {"json": os.path.join(output_dir, f"{name}.json"), "markdown": os.path.join(output_dir, f"{name}.md")}
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=2)
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(results_table(results))
    return paths


def _load(results: str | dict | Sequence[dict]) -> list[dict]:
    if isinstance(results, str):
        with open(results, encoding="utf-8") as f:
            results = json.load(f)
    return [results] if isinstance(results, dict) else list(results)


def compare_results(before: str | dict | Sequence[dict], after: str | dict | Sequence[dict], metric: str = "top1",
                    output_dir: str | None = None, title: str = "Before and after GRPO") -> str:
    """A paper-style (Table 5) markdown comparison: benchmark, before, after, delta, in points.

    ``before`` and ``after`` are :func:`evaluate` results or paths to their JSON. With
    ``output_dir``, also writes ``comparison.md`` and a bar chart ``comparison.png``.
    """
    b = {r["benchmark"]: r for r in _load(before)}
    a = {r["benchmark"]: r for r in _load(after)}
    for n in (n for n in b if n in a):
        for key in ("protocol", "grader", "primary_grader"):
            x, y = b[n].get(key), a[n].get(key)
            if x is not None and y is not None and x != y:
                raise ValueError(f"{n}: before was made with {key} {x!r}, after with {y!r}; compare results made the "
                                 f"same way (grpo-ext eval --{key.replace('primary_grader', 'grader')} ...)")
    names = [n for n in b if n in a]
    if not names:
        raise ValueError(f"no benchmark in common: before has {sorted(b)}, after has {sorted(a)}")
    rows = []
    for n in names:
        if metric not in b[n]["metrics"] or metric not in a[n]["metrics"]:
            raise ValueError(f"metric {metric!r} missing for {n!r}; available: {sorted(b[n]['metrics'])}")
        rows.append((n, b[n]["metrics"][metric], a[n]["metrics"][metric]))
    lines = [f"| benchmark | before ({metric}) | after ({metric}) | delta |", "|---|---|---|---|"]
    lines += [f"| {n} | {_fmt(x)} | {_fmt(y)} | {100 * (y - x):+.1f} |" for n, x, y in rows]
    table = "\n".join(lines) + "\n"
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "comparison.md"), "w", encoding="utf-8") as f:
            f.write(table)
        plot_comparison(rows, os.path.join(output_dir, "comparison.png"), metric=metric, title=title)
    return table


def plot_comparison(rows: Sequence[tuple[str, float, float]], path: str, metric: str = "top1",
                    title: str = "Before and after GRPO") -> str:
    """Grouped bars (before, after) per benchmark, with the values and deltas written on them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r[0] for r in rows]
    before = [100 * r[1] for r in rows]
    after = [100 * r[2] for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.8 * len(rows) + 1.5), 4.4))
    width = 0.38
    bars_b = ax.bar([i - width / 2 for i in x], before, width, label="before", color="#9aa5b1")
    bars_a = ax.bar([i + width / 2 for i in x], after, width, label="after", color="#2f6fdb")
    for bars in (bars_b, bars_a):
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=9)
    for i, (b, a) in enumerate(zip(before, after)):
        ax.annotate(f"{a - b:+.1f}", (i, max(a, b) + 8), ha="center", fontsize=10, weight="bold",
                    color="#1a7f37" if a >= b else "#cf222e")
    ax.set_xticks(list(x), names)
    ax.set_ylabel(f"{metric} accuracy (%)")
    ax.set_ylim(0, min(115, max(before + after + [1]) + 20))
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
