"""Prompt templates: DeepSeekMath's chain-of-thought instructions and a plain one for base models.

A template turns a question into TRL's ``prompt`` column:

- ``"chat"``: conversational, ``[{"role": "user", "content": question + instruction}]``; TRL
  applies the tokenizer's chat template (instruct models).
- ``"text"``: the same content as a plain string (standard format, no chat template).
- ``"plain"``: ``"Question: ...\\nAnswer:"`` without instruction, for base models (few-shot free).
- ``"raw"``: the question unchanged (the synthetic compact tasks of the CPU demo).
- ``"deepseek"``: DeepSeekMath's own evaluation format as a plain string, whatever the tokenizer's
  chat template: ``"User: {question}\n{instruction}\n\nAssistant:"`` (no system prompt; the
  tokenizer adds its BOS), for ``grpo-ext eval --protocol deepseek``.
"""

from __future__ import annotations

from typing import Any

#: DeepSeekMath's chain-of-thought instruction (paper, appendix; as used for the RL data).
COT_INSTRUCTION_EN = "Please reason step by step, and put your final answer within \\boxed{}."
#: The Chinese counterpart used for Chinese benchmarks (CMATH, MGSM-zh).
COT_INSTRUCTION_ZH = "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。"

TEMPLATES = ("chat", "text", "plain", "raw", "deepseek")


def format_prompt(question: str, template: str = "chat", language: str = "en") -> Any:
    """The ``prompt`` value for ``question`` under ``template`` (see the module docstring)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {list(TEMPLATES)}")
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    question = question.strip()
    if template == "raw":
        return question
    if template == "plain":
        return f"问题：{question}\n答案：" if language == "zh" else f"Question: {question}\nAnswer:"
    instruction = COT_INSTRUCTION_ZH if language == "zh" else COT_INSTRUCTION_EN
    content = f"{question}\n{instruction}"
    if template == "text":
        return content
    if template == "deepseek":
        return f"User: {content}\n\nAssistant:"
    return [{"role": "user", "content": content}]
