"""Step segmentation for process supervision: a completion's reasoning steps and the token where each ends.

Steps are separated by ``separator`` in the decoded text (``"\\n"``: one step per line, the default;
``"\\n\\n"``: paragraphs). The token index of a step's end is found through character offsets of
decoded prefixes, not by searching decoded tokens for the separator, so tokenizers that merge the
separator into a neighbouring token (``"3\\n"`` as one token) still get the right index: the token
that holds the step's last character.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase


def _prefix_length(tokenizer, ids: Sequence[int], k: int, cache: dict[int, int]) -> int:
    if k not in cache:
        cache[k] = len(tokenizer.decode(list(ids[:k]), skip_special_tokens=True))
    return cache[k]


def _token_holding(tokenizer, ids: Sequence[int], char_index: int, cache: dict[int, int]) -> int:
    """The first token whose decoded prefix extends past ``char_index`` (binary search)."""
    lo, hi = 0, len(ids) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _prefix_length(tokenizer, ids, mid + 1, cache) > char_index:
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
            end = _token_holding(tokenizer, ids, last_char, cache)
            if ends and end <= ends[-1]:  # two steps inside one token: merge them
                steps[-1] = steps[-1] + separator + content.strip()
            else:
                steps.append(content.strip())
                ends.append(end)
        start = stop + len(separator)
    return steps, ends
