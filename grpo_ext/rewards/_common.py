"""Helpers shared by the reward functions."""

from __future__ import annotations

from typing import Any


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or TRL's conversational list of messages.

    For a conversation, the assistant messages' contents are joined (string contents, or lists of
    ``{"type": "text", "text": ...}`` parts).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, dict) for m in completion):
        texts = []
        for message in completion:
            if message.get("role", "assistant") != "assistant":
                continue
            content = message.get("content", "")
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            if not isinstance(content, str):
                raise TypeError(f"message content must be a string or a list of text parts, got {type(content).__name__}")
            texts.append(content)
        return "\n".join(texts)
    raise TypeError(
        "a completion must be a string or a list of {'role': ..., 'content': ...} messages (TRL's conversational "
        f"format), got {type(completion).__name__}"
    )
