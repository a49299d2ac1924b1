"""The tiny local model and character tokenizer, and transformers 5's reload pitfall."""

from transformers import AutoModelForCausalLM, AutoTokenizer

from grpo_ext.tiny import build_char_tokenizer, build_tiny_model, load_char_tokenizer

PROMPT = "12加34等于"


def test_every_character_round_trips_newlines_included():
    tok = build_char_tokenizer()
    text = "5 + 3 = 8\n\n\n答案是 8。"
    assert tok.decode(tok(text)["input_ids"]) == text


def test_saved_tiny_model_reloads_its_chinese_tokenizer_with_autotokenizer(tmp_path):
    # transformers 5 rebuilds a tokenizer saved beside a Qwen2 config as byte-level and drops 加/等/于;
    # the tiny model's Llama config keeps the saved character tokenizer
    tok = build_char_tokenizer()
    build_tiny_model(tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.decode(reloaded(PROMPT)["input_ids"]) == PROMPT
    assert reloaded(PROMPT)["input_ids"] == tok(PROMPT)["input_ids"]
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.vocab_size == len(tok)


def test_load_char_tokenizer_restores_the_pipeline(tmp_path):
    build_char_tokenizer().save_pretrained(tmp_path)
    tok = load_char_tokenizer(tmp_path)
    assert tok.decode(tok(PROMPT + "<eos>")["input_ids"], skip_special_tokens=True) == PROMPT
