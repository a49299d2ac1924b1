"""Step segmentation for process supervision: a completion's reasoning steps and the token where each ends.

Steps are separated by ``separator`` in the decoded text (``"\\n"``: one step per line, the default;
``"\\n\\n"``: paragraphs). The token index of a step's end is found through character offsets of
decoded prefixes, not by searching decoded tokens for the separator, so tokenizers that merge the
separator into a neighbouring token (``"3\\n"`` as one token) still get the right index: the token
that holds the step's last character (its last byte, when a byte-level tokenizer splits the character).
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase


def _prefix_length(tokenizer, ids: Sequence[int], k: int, text: str, cache: dict[int, int]) -> int:
    """Characters of ``text`` completed by the first ``k`` tokens.

    A byte-level tokenizer splits a multi-byte character (Chinese, emoji) over several tokens; a prefix
    that ends inside one decodes its bytes as U+FFFD. Those are not characters of the text yet: they are
    left out, so the character counts as held by the token that completes it.
    """
    if k not in cache:
        decoded = tokenizer.decode(list(ids[:k]), skip_special_tokens=True)
        n = len(decoded)
        while n and decoded[n - 1] == "\ufffd" and (n > len(text) or text[n - 1] != "\ufffd"):
            n -= 1
        cache[k] = n
    return cache[k]


def _token_holding(tokenizer, ids: Sequence[int], char_index: int, text: str, cache: dict[int, int]) -> int:
    """The first token whose decoded prefix completes the character at ``char_index`` (binary search)."""
    lo, hi = 0, len(ids) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _prefix_length(tokenizer, ids, mid + 1, text, cache) > char_index:
            hi = mid
        else:
            lo = mid + 1
    return lo


def segment_steps(completion_ids: Sequence[int], tokenizer: PreTrainedTokenizerBase,
                  separator: str = "\n") -> tuple[list[str], list[int]]:
    """The steps of a completion and, for each, the 0-based index of its last token.

    Args:
        completion_ids: the completion's token ids (padding and special tokens are ignored by
            decoding with ``skip_special_tokens``).
        tokenizer: the policy's tokenizer.
        separator: the text between steps; blank steps are dropped.

    Returns:
        ``(steps, ends)``: the step texts (stripped) and strictly ascending token indices.
    """
    if not separator:
        raise ValueError("separator must be a non-empty string, e.g. '\\n' or '\\n\\n'")
    ids = list(completion_ids)
    if not ids:
        return [], []
    text = tokenizer.decode(ids, skip_special_tokens=True)
    steps, ends, cache, start = [], [], {}, 0
    while start <= len(text):
        stop = text.find(separator, start)
        stop = len(text) if stop < 0 else stop
        content = text[start:stop]
        if content.strip():
            last_char = start + len(content.rstrip()) - 1
            end = _token_holding(tokenizer, ids, last_char, text, cache)
            if ends and end <= ends[-1]:  # two steps inside one token: merge them
                steps[-1] = steps[-1] + separator + content.strip()
            else:
                steps.append(content.strip())
                ends.append(end)
        start = stop + len(separator)
    return steps, ends
