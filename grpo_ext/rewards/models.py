"""Reward models used as reward functions."""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase



def _prompt_text(prompt: Any) -> str:
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") != "system")


class ProcessRewardModel:
    """A Math-Shepherd-style process reward model as a process reward function.

    The question and the steps are written as ``question step_1 TAG\\nstep_2 TAG\\n...``; the
    reward of step j is the probability of ``good_token`` against ``bad_token`` in the causal LM's
    prediction at the j-th ``TAG`` (Math-Shepherd: tag ``ки``, labels ``+`` / ``-``). Call it as
    ``prm(completions, steps, prompts=...)``; a step cut off by ``max_length`` scores NaN (left out
    of the group's statistics).

    Args:
        model: a causal LM, or a local path / Hub id to load one from.
        tokenizer: its tokenizer (loaded with the model when ``model`` is a path).
        step_tag: the token written after each step (one token of the tokenizer).
        good_token: the label token of a good step.
        bad_token: the label token of a bad step.
        batch_size: completions scored per forward pass.
        max_length: longer inputs are truncated; their cut-off steps score NaN.
    """

    def __init__(self, model: PreTrainedModel | str, tokenizer: PreTrainedTokenizerBase | None = None,
                 step_tag: str = "ки", good_token: str = "+", bad_token: str = "-", batch_size: int = 8,
                 max_length: int = 4096):
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model)
        if tokenizer is None:
            raise ValueError("pass the PRM's tokenizer (or a model path to load both from)")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.step_tag, self.batch_size, self.max_length = step_tag, batch_size, max_length
        self.tag_id = self._single_id(step_tag, "step_tag")
        self.good_id, self.bad_id = self._single_id(good_token, "good_token"), self._single_id(bad_token, "bad_token")
        self.__name__ = "process_reward_model"

    def _single_id(self, text: str, what: str) -> int:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{what} {text!r} must be one token of the PRM's tokenizer; it is {len(ids)}")
        return ids[0]

    @torch.no_grad()
    def __call__(self, completions: list[Any], steps: list[list[str]], prompts: list[Any] | None = None,
                 **kwargs: Any) -> list[list[float]]:
        prompts = prompts or [None] * len(steps)
        texts = [
            f"{_prompt_text(p)} " + "".join(f"{s} {self.step_tag}\n" for s in row)
            for p, row in zip(prompts, steps)
        ]
        device = next(self.model.parameters()).device
        rewards: list[list[float]] = []
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "right"
        try:
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True,
                                     truncation=True, max_length=self.max_length).to(device)
                logits = self.model(**enc).logits[..., [self.good_id, self.bad_id]]
                good = logits.float().softmax(-1)[..., 0]
                for row, ids, n_steps in zip(good, enc["input_ids"], (len(s) for s in steps[start:])):
                    at_tags = row[ids == self.tag_id].tolist()[:n_steps]
                    rewards.append(at_tags + [math.nan] * (n_steps - len(at_tags)))
        finally:
            self.tokenizer.padding_side = side
        del completions  # the steps carry the completion's text
        return rewards


__all__ = ["ProcessRewardModel"]
