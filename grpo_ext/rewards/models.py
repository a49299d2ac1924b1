"""Reward models used as reward functions: an outcome reward model (trainable) and a process one."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ._common import completion_text


def _prompt_text(prompt: Any) -> str:
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") != "system")


class _Trainable:
    """AdamW training, saving and restoring shared by the trainable reward models (each has its ``train_step``)."""

    model: Any
    tokenizer: Any
    learning_rate: float
    batch_size: int
    _optimizer: torch.optim.Optimizer | None = None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        if self._optimizer is None:  # created on first use: a model that only scores keeps no optimizer state
            trainable = [p for p in self.model.parameters() if p.requires_grad]  # a PEFT model: its adapter only
            self._optimizer = torch.optim.AdamW(trainable, lr=self.learning_rate)
        return self._optimizer

    def fit(self, texts: list[str], labels: list, steps: int, generator: torch.Generator | None = None) -> list[float]:
        """``steps`` training steps on batches of ``batch_size`` drawn at random from the examples."""
        losses = []
        for _ in range(steps):
            pick = torch.randint(len(texts), (min(self.batch_size, len(texts)),), generator=generator).tolist()
            losses.append(self.train_step([texts[i] for i in pick], [labels[i] for i in pick]))
        return losses

    def save(self, path: str) -> None:
        """Model, tokenizer and optimizer state (training resumes exactly from them)."""
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        torch.save(self.optimizer.state_dict(), os.path.join(path, "optimizer.pt"))

    def load_state(self, path: str) -> None:
        """Load weights and optimizer state saved by :meth:`save` into this model (an adapter for PEFT)."""
        from peft import PeftModel, set_peft_model_state_dict
        from safetensors.torch import load_file

        if isinstance(self.model, PeftModel):
            set_peft_model_state_dict(self.model, load_file(os.path.join(path, "adapter_model.safetensors")))
        else:
            self.model.load_state_dict(load_file(os.path.join(path, "model.safetensors")), strict=False)
        self.optimizer.load_state_dict(torch.load(os.path.join(path, "optimizer.pt"), weights_only=True))


class ProcessRewardModel(_Trainable):
    """A Math-Shepherd-style process reward model as a process reward function, trainable in place.

    The question and the steps are written as ``question step_1 TAG\nstep_2 TAG\n...``; the
    reward of step j is the probability of ``good_token`` against ``bad_token`` in the causal LM's
    prediction at the j-th ``TAG`` (Math-Shepherd: tag ``ки``, labels ``+`` / ``-``). Call it as
    ``prm(completions, steps, prompts=...)``; a step cut off by ``max_length`` scores NaN (left out
    of the group's statistics). Inputs are padded and truncated on the right whatever the tokenizer's
    own setting, so step j's score is read at step j's tag.

    Training (:meth:`train_step`, :meth:`fit`, as the iterative loop does with Math-Shepherd's automatic
    labels): binary cross-entropy of the good-vs-bad probability at each tag against the step's label,
    1/0 (hard) or the share of rollouts that reached the gold (soft).

    Args:
        model: a causal LM, or a local path / Hub id to load one from.
        tokenizer: its tokenizer (loaded with the model when ``model`` is a path).
        step_tag: the token written after each step (one token of the tokenizer).
        good_token: the label token of a good step.
        bad_token: the label token of a bad step.
        batch_size: completions scored per forward pass, and per training step.
        max_length: longer inputs are truncated; their cut-off steps score NaN.
        dtype: the dtype to load a model from a path in (``"auto"``: as saved, bf16 for most PRMs).
        learning_rate: AdamW's learning rate for the training steps.

    The trainer moves the model to its process's device.
    """

    def __init__(self, model: PreTrainedModel | str, tokenizer: PreTrainedTokenizerBase | None = None,
                 step_tag: str = "ки", good_token: str = "+", bad_token: str = "-", batch_size: int = 8,
                 max_length: int = 4096, dtype: str | torch.dtype = "auto", learning_rate: float = 1e-4):
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        if tokenizer is None:
            raise ValueError("pass the PRM's tokenizer (or a model path to load both from)")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.step_tag, self.batch_size, self.max_length = step_tag, batch_size, max_length
        self.learning_rate = learning_rate
        self.tag_id = self._single_id(step_tag, "step_tag")
        self.good_id, self.bad_id = self._single_id(good_token, "good_token"), self._single_id(bad_token, "bad_token")
        self.__name__ = "process_reward_model"

    def _single_id(self, text: str, what: str) -> int:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{what} {text!r} must be one token of the PRM's tokenizer; it is {len(ids)}")
        return ids[0]

    def texts(self, steps: list[list[str]], prompts: list[Any] | None = None) -> list[str]:
        """The text the model reads: the question, then each step followed by the step tag."""
        prompts = prompts or [None] * len(steps)
        return [f"{_prompt_text(p)} " + "".join(f"{s} {self.step_tag}\n" for s in row) for p, row in zip(prompts, steps)]

    def _encode(self, texts: list[str]):
        sides = self.tokenizer.padding_side, self.tokenizer.truncation_side
        self.tokenizer.padding_side = self.tokenizer.truncation_side = "right"  # step j's tag stays the j-th
        try:
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        finally:
            self.tokenizer.padding_side, self.tokenizer.truncation_side = sides
        device = next(self.model.parameters()).device
        return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def _good_at_tags(self, enc) -> list[torch.Tensor]:
        """Per text, the good-vs-bad log-probabilities (tags, 2) at its step tags, in order."""
        logits = self.model(**enc).logits[..., [self.good_id, self.bad_id]].float().log_softmax(-1)
        return [row[ids == self.tag_id] for row, ids in zip(logits, enc["input_ids"])]

    @torch.no_grad()
    def score_texts(self, texts: list[str]) -> list[list[float]]:
        """The probability that each tagged step of each text is good."""
        was_training = self.model.training
        self.model.eval()
        out: list[list[float]] = []
        try:
            for start in range(0, len(texts), self.batch_size):
                out += [t[:, 0].exp().tolist() for t in self._good_at_tags(self._encode(texts[start: start + self.batch_size]))]
        finally:
            self.model.train(was_training)
        return out

    @torch.no_grad()
    def __call__(self, completions: list[Any], steps: list[list[str]], prompts: list[Any] | None = None,
                 **kwargs: Any) -> list[list[float]]:
        del completions  # the steps carry the completion's text
        scores = self.score_texts(self.texts(steps, prompts))
        return [row[:len(s)] + [math.nan] * (len(s) - len(row[:len(s)])) for row, s in zip(scores, steps)]

    def train_step(self, texts: list[str], labels: list[list[float]]) -> float:
        """One AdamW step of binary cross-entropy at the step tags (labels in [0, 1], one per step; steps cut
        off by ``max_length`` are left out); returns the loss."""
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"need as many label lists as texts (got {len(texts)} texts, {len(labels)}), at least one")
        self.model.train()
        terms = []
        for at_tags, row in zip(self._good_at_tags(self._encode(texts)), labels):
            n = min(len(row), at_tags.shape[0])
            if n:
                y = torch.tensor(row[:n], dtype=torch.float32, device=at_tags.device)
                terms.append(-(y * at_tags[:n, 0] + (1 - y) * at_tags[:n, 1]))
        if not terms:
            raise ValueError("no labelled step fits in max_length: raise max_length or shorten the examples")
        loss = torch.cat(terms).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def accuracy(self, texts: list[str], labels: list[list[float]]) -> float:
        """Share of labelled steps whose probability of "good" is on the side of 0.5 their label is on."""
        right = total = 0
        for scores, row in zip(self.score_texts(texts), labels):
            for score, y in zip(scores, row):
                total += 1
                right += (score >= 0.5) == (y >= 0.5)
        if not total:
            raise ValueError("no labelled steps to measure the accuracy on")
        return right / total


class OutcomeRewardModel(_Trainable):
    """A sequence-classification model that scores whole completions, used as a TRL reward function.

    ``orm(completions, prompts=...)`` returns, per completion, the probability that its final answer
    is right: the sigmoid of the model's single logit on ``prompt + completion``. It is trainable in
    place (:meth:`train_step`, :meth:`fit`) with binary cross-entropy on outcome labels (1 right, 0
    wrong), the pointwise objective of DeepSeekMath's reward model; TRL's ``RewardTrainer`` fits a
    Bradley-Terry loss on chosen/rejected pairs instead, which would drop every group whose samples
    are all right or all wrong and change the objective, so the step here is ours (a dozen lines).

    Args:
        model: a model with ``num_labels=1`` (``AutoModelForSequenceClassification``), or a local
            path / Hub id to load one (and its tokenizer) from.
        tokenizer: its tokenizer (loaded with the model when ``model`` is a path); needs a pad token.
        learning_rate: AdamW's learning rate for the training steps.
        batch_size: texts per forward pass when scoring and per training step.
        max_length: longer texts are truncated (on the left, so the final answer stays).
    """

    def __init__(self, model: PreTrainedModel | str, tokenizer: PreTrainedTokenizerBase | None = None,
                 learning_rate: float = 1e-4, batch_size: int = 32, max_length: int = 1024):
        if isinstance(model, str):
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
        if tokenizer is None:
            raise ValueError("pass the reward model's tokenizer (or a model path to load both from)")
        if getattr(model.config, "num_labels", 1) != 1:
            raise ValueError(f"an outcome reward model has one output (num_labels=1), this one has "
                             f"{model.config.num_labels}")
        if tokenizer.pad_token_id is None:
            raise ValueError("the reward model's tokenizer needs a pad token (set tokenizer.pad_token)")
        model.config.pad_token_id = tokenizer.pad_token_id
        self.model, self.tokenizer = model, tokenizer
        self.learning_rate, self.batch_size, self.max_length = learning_rate, batch_size, max_length
        self.__name__ = "outcome_reward_model"

    @staticmethod
    def texts(completions: list[Any], prompts: list[Any] | None = None) -> list[str]:
        """The text the model reads: the prompt (its user turns) followed by the completion."""
        prompts = prompts or [None] * len(completions)
        return [_prompt_text(p) + completion_text(c) for p, c in zip(prompts, completions)]

    def _encode(self, texts: list[str]):
        side = self.tokenizer.truncation_side
        self.tokenizer.truncation_side = "left"
        try:
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        finally:
            self.tokenizer.truncation_side = side
        device = next(self.model.parameters()).device
        return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    @torch.no_grad()
    def score_texts(self, texts: list[str]) -> list[float]:
        """Probability of "right" for each text."""
        was_training = self.model.training
        self.model.eval()
        out: list[float] = []
        try:
            for start in range(0, len(texts), self.batch_size):
                logits = self.model(**self._encode(texts[start : start + self.batch_size])).logits
                out += torch.sigmoid(logits.float().view(-1)).tolist()
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, completions: list[Any], prompts: list[Any] | None = None, **kwargs: Any) -> list[float]:
        return self.score_texts(self.texts(completions, prompts))

    def train_step(self, texts: list[str], labels: list[float]) -> float:
        """One AdamW step of binary cross-entropy on ``texts`` with 0/1 ``labels``; returns the loss."""
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"need as many labels as texts (got {len(texts)} texts, {len(labels)} labels), at least one")
        self.model.train()
        logits = self.model(**self._encode(texts)).logits.float().view(-1)
        target = torch.tensor(labels, dtype=torch.float32, device=logits.device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def accuracy(self, texts: list[str], labels: list[float]) -> float:
        """Share of texts whose probability of "right" is on the side of 0.5 their label is on."""
        if not texts:
            raise ValueError("no examples to measure the accuracy on")
        scores = self.score_texts(texts)
        return sum((s >= 0.5) == (y >= 0.5) for s, y in zip(scores, labels)) / len(texts)


__all__ = ["OutcomeRewardModel", "ProcessRewardModel"]
