"""A memory plan per GPU for a GRPO recipe, from the model's config alone (no weights are loaded).

What :func:`plan` counts, per GPU, in bytes (the formulas of docs/recipes/fit.md):

- **parameters** of a decoder-only transformer from its config: embeddings ``V h`` (and an untied
  output layer ``V h``), per layer the attention ``h (h + 2 k d) + h h`` (``k`` key/value heads of
  ``d = h / heads`` dimensions each) and the gated MLP ``3 h I``, and norms;
- **trainable parameters**: all of them, or under LoRA ``r (in + out)`` per adapted linear layer;
- **policy weights**: ``2 N`` bytes in bf16/fp16 (``4 N`` in fp32); 4-bit NF4 (QLoRA) linear weights
  ``0.5`` bytes each plus their quantisation constants (``4 / 64`` bytes, ``~0.127 / 64`` with nested
  quantisation), embeddings and norms in the compute dtype;
- **gradients** ``2 T`` and **optimizer** ``12 T`` (AdamW's fp32 master copy and two moments, as
  DeepSpeed's mixed precision keeps them) for ``T`` trainable parameters; without DeepSpeed, AdamW's
  two moments in the parameters' dtype, ``2 x 2 T``, and no master copy;
- **the reference model**: a frozen copy of the weights when ``beta > 0`` and no PEFT (under PEFT the
  reference is the base with the adapter off: nothing more), none when ``beta == 0``;
- **ZeRO**: stage 2 divides gradients and optimizer states by the number of GPUs; stage 3 also the
  weights (the policy's and the reference's);
- **activations** of one micro-batch of ``b`` sequences of ``s = prompt + completion`` tokens, with
  SDPA / flash attention (no ``s^2`` term): ``34 b s h`` bytes per layer without gradient
  checkpointing (Korthikanti et al., 2022, in 16-bit), ``2 b s h`` per layer plus one layer's
  ``34 b s h`` with it; plus the completion tokens' logits in fp32 for the log-probabilities,
  ``4 b c V``, which the loss holds once;
- **generation** on the HF path (no vLLM): the KV cache of the process's generation batch,
  ``2 L k d w s`` bytes per sequence, and under ZeRO-3 the policy's weights gathered on every GPU;
  generation and training do not overlap, so the larger of the two phases counts;
- **vLLM**, colocated: ``vllm_gpu_memory_utilization`` of the GPU (instead of the HF KV cache), which
  must hold vLLM's own unsharded 16-bit copy of the weights and a cache.

It is a plan, not a measurement: allocator fragmentation, CUDA context (~0.5-1 GB), generation's KV
cache on the HF path and framework buffers come on top; a plan within ~10% of the GPU is "tight".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GiB = 1024**3


@dataclass(frozen=True)
class Shape:
    """What the plan needs of a model's config."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    tied: bool = False

    @classmethod
    def from_config(cls, config) -> "Shape":
        heads = config.num_attention_heads
        return cls(vocab=config.vocab_size, hidden=config.hidden_size, layers=config.num_hidden_layers, heads=heads,
                   kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                   intermediate=getattr(config, "intermediate_size", None) or 4 * config.hidden_size,
                   tied=bool(getattr(config, "tie_word_embeddings", False)))

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linear_layers(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one decoder layer, by name."""
        h, kv = self.hidden, self.kv_heads * self.head_dim
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, self.intermediate), "up_proj": (h, self.intermediate), "down_proj": (self.intermediate, h)}

    def linear_params(self) -> int:
        return self.layers * sum(i * o for i, o in self.linear_layers().values())

    def other_params(self) -> int:
        """Embeddings, the output layer (when untied) and norms."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + (2 * self.layers + 1) * self.hidden

    def params(self) -> int:
        return self.linear_params() + self.other_params()

    def lora_params(self, r: int, targets: list[str] | str | None) -> int:
        layers = self.linear_layers()
        if targets in (None, "all-linear") or targets == ["all-linear"]:
            names = list(layers)
        else:
            names = [t for t in ([targets] if isinstance(targets, str) else targets) if t in layers]
        return self.layers * sum(r * (layers[n][0] + layers[n][1]) for n in names)


@dataclass
class Setup:
    """The recipe's side of the plan."""

    processes: int = 1
    zero_stage: int = 0  #: 0: no DeepSpeed
    dtype_bytes: int = 2
    peft: bool = False
    lora_r: int = 16
    lora_targets: list[str] | str | None = None
    load_in_4bit: bool = False
    nested_quant: bool = False
    beta: float = 0.04
    micro_batch: int = 8  #: per_device_train_batch_size
    prompt_length: int = 512
    completion_length: int = 1024
    gradient_checkpointing: bool = True
    generation_batch: int = 8  #: completions a process generates at once (per_device x steps_per_generation)
    vllm_colocate: bool = False
    vllm_share: float = 0.0


@dataclass
class Plan:
    """Bytes per GPU: model states (held throughout), then the generation phase and the training phase
    (which do not overlap: the larger counts), then vLLM's share; and the verdict for a GPU size."""

    states: dict[str, float] = field(default_factory=dict)
    generation: dict[str, float] = field(default_factory=dict)
    training: dict[str, float] = field(default_factory=dict)
    vllm: float = 0.0
    params: int = 0
    trainable: int = 0
    activations_with_checkpointing: float = 0.0
    activations_without_checkpointing: float = 0.0
    vllm_weights: float = 0.0  #: the unsharded 16-bit weights vLLM loads into its share

    @property
    def total(self) -> float:
        return sum(self.states.values()) + max(sum(self.generation.values()), sum(self.training.values())) + self.vllm

    def parts(self) -> dict[str, float]:
        """Every part by name (a phase's parts prefixed with it)."""
        out = dict(self.states)
        out.update({f"generation: {k}": v for k, v in self.generation.items()})
        out.update({f"training: {k}": v for k, v in self.training.items()})
        if self.vllm:
            out["vllm"] = self.vllm
        return out

    def verdict(self, gpu_gb: float, setup: Setup) -> str:
        """"fits" / "tight" (within 10% of the GPU) / "does not fit", and what to lower first when it is not fitting."""
        capacity = gpu_gb * GiB
        share = f"{self.total / GiB:.1f} GB planned, {100 * self.total / capacity:.0f}%"
        vllm_share = setup.vllm_share * capacity
        if setup.vllm_colocate and vllm_share < 1.1 * self.vllm_weights:
            return (f"does not fit in {gpu_gb:g} GB: vLLM's share ({vllm_share / GiB:.1f} GB, vllm_gpu_memory_utilization "
                    f"{setup.vllm_share:g}) cannot hold its own copy of the weights ({self.vllm_weights / GiB:.1f} GB) and "
                    "a cache: raise vllm_gpu_memory_utilization, or use_vllm: false (HF generation)")
        if self.total <= 0.9 * capacity:
            return f"fits in {gpu_gb:g} GB ({share})"
        if self.total <= capacity:
            return f"tight in {gpu_gb:g} GB ({share}): lower {_advice(self, setup)}"
        return f"does not fit in {gpu_gb:g} GB ({share}): lower {_advice(self, setup)}"

    def table(self) -> str:
        rows = [f"| {name} | {value / GiB:.2f} |" for name, value in self.parts().items()]
        return "\n".join(["| per GPU | GB |", "|---|---|", *rows,
                          f"| total (states + the larger phase{' + vLLM' if self.vllm else ''}) | {self.total / GiB:.2f} |"])


def _advice(p: Plan, setup: Setup) -> str:
    parts = p.parts()
    biggest = max(parts, key=parts.get)
    if biggest == "training: activations":
        return ("per_device_train_batch_size (raise gradient_accumulation_steps to keep the batch)"
                if setup.gradient_checkpointing else "the activations: gradient_checkpointing: true")
    if biggest in ("training: logits", "generation: KV cache"):
        return "per_device_train_batch_size or max_completion_length (or generate with vLLM: use_vllm: true)"
    if biggest == "generation: gathered weights":
        return "generation's gathered weights: use_vllm: true, or ds3_gather_for_generation: false"
    if biggest == "vllm":
        return "vllm_gpu_memory_utilization, or use vllm_mode: server on other GPUs"
    if setup.zero_stage < 3 and setup.processes > 1:
        return "the model states with ZeRO-3 (recipes/accelerate_configs/zero3.yaml), which shards them over the GPUs"
    if not setup.peft:
        return "the model states: train a LoRA adapter (use_peft: true), or use more GPUs"
    if not setup.load_in_4bit:
        return "the base weights: load them in 4 bits (QLoRA: load_in_4bit: true), or use more GPUs"
    return "the model states: use more GPUs, or GPUs with more memory"


def plan(shape: Shape, setup: Setup, gpu_gb: float = 80.0) -> Plan:
    """The memory plan per GPU (module docstring)."""
    n = shape.params()
    trainable = shape.lora_params(setup.lora_r, setup.lora_targets) if setup.peft else n
    w = setup.dtype_bytes
    if setup.load_in_4bit:
        per_quantised = 0.5 + (0.127 if setup.nested_quant else 4) / 64
        weights = shape.linear_params() * per_quantised + shape.other_params() * w
    else:
        weights = n * w
    weight_share = setup.processes if setup.zero_stage >= 3 else 1
    state_share = setup.processes if setup.zero_stage >= 2 else 1
    states: dict[str, float] = {"policy weights": weights / weight_share}
    if setup.peft:
        states["adapter weights"] = trainable * w / weight_share
    if setup.beta > 0 and not setup.peft:
        states["reference weights"] = weights / weight_share
    states["gradients"] = trainable * w / state_share
    states["optimizer"] = trainable * (12 if setup.zero_stage else 2 * w) / state_share
    b, s, h = setup.micro_batch, setup.prompt_length + setup.completion_length, shape.hidden
    full = 34 * b * s * h * shape.layers
    checkpointed = 2 * b * s * h * shape.layers + 34 * b * s * h
    training = {"activations": checkpointed if setup.gradient_checkpointing else full,
                "logits": 4 * b * setup.completion_length * shape.vocab}
    generation: dict[str, float] = {}
    if not setup.vllm_colocate:  # the HF path generates with the policy itself
        generation["KV cache"] = 2 * shape.layers * shape.kv_heads * shape.head_dim * w * s * setup.generation_batch
        if setup.zero_stage >= 3:  # ds3_gather_for_generation: the whole policy on every GPU meanwhile
            generation["gathered weights"] = weights - weights / weight_share
    vllm = setup.vllm_share * gpu_gb * GiB if setup.vllm_colocate else 0.0
    return Plan(states, generation, training, vllm, n, trainable, checkpointed, full, n * 2.0)


def load_shape(model: str) -> Shape:
    """The model's :class:`Shape` from its config only: a local folder, or a Hub id whose config is in the
    local cache (nothing is downloaded); ValueError saying so otherwise."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"no config for {model!r} on this machine (a local folder, or a Hub id whose config.json is in the "
            f"Hugging Face cache; nothing is downloaded): {str(err).splitlines()[0][:200]}. Download it once with "
            f"`huggingface-cli download {model} config.json`, or give the model's folder") from None
    config = getattr(config, "text_config", None) or config
    return Shape.from_config(config)


def describe(shape: Shape, setup: Setup, gpu_gb: float) -> str:
    """The plan as text: the setup, the parts, activations with and without checkpointing, the verdict."""
    p = plan(shape, setup, gpu_gb)
    zero = f"ZeRO-{setup.zero_stage}" if setup.zero_stage else "no DeepSpeed"
    kind = ("QLoRA (4-bit NF4 base)" if setup.load_in_4bit else "LoRA") if setup.peft else "full fine-tuning"
    return "\n".join([
        f"memory plan per GPU: {p.params / 1e9:.2f}B parameters ({p.trainable / 1e6:.1f}M trained), {kind}, {zero} "
        f"over {setup.processes} process(es), micro-batch {setup.micro_batch} x "
        f"{setup.prompt_length}+{setup.completion_length} tokens, generation batch {setup.generation_batch}",
        p.table(),
        f"activations of one micro-batch: {p.activations_with_checkpointing / GiB:.2f} GB with gradient checkpointing, "
        f"{p.activations_without_checkpointing / GiB:.2f} GB without (this recipe: "
        f"{'with' if setup.gradient_checkpointing else 'without'})",
        f"verdict: {p.verdict(gpu_gb, setup)}",
        "(planned from the config, not measured: CUDA context, fragmentation and framework buffers come on top)",
    ])


__all__ = ["GiB", "Plan", "Setup", "Shape", "describe", "load_shape", "plan"]
