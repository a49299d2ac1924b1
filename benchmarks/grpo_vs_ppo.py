"""GRPO against PPO with a value model: memory and time per step, side by side, on the CPU.

GRPO drops PPO's value model (the critic) and takes the baseline from a group of samples of the
same prompt. This script measures what that saves, with real implementations on both sides:

- GRPO: ``grpo_ext.GRPOTrainer`` on trl 1.16 (this environment).
- PPO: TRL 1.0.0's ``trl.experimental.ppo.PPOTrainer`` (with its value model), the last PPO that TRL
  ships, installed into its own virtual environment that this script creates once under
  ``--cache_dir`` (``--system-site-packages``, so torch and transformers are the same; only trl
  differs) and reuses.

Both train the same locally built tiny Llama (policy), each run in its own process, on the same
batch shape: ``--prompts`` prompts per step, ``--group`` completions per prompt (PPO: the same
number of rows, one completion per prompt row), completions of ``--length`` tokens, one policy
update per batch (PPO: ``num_ppo_epochs=1``, one mini-batch; GRPO: ``num_iterations=1``), beta /
kl_coef 0.04. PPO needs a reward *model* (an ``nn.Module``): the same locally built
``LlamaForSequenceClassification`` scores both sides (GRPO takes it as a reward model among its
reward functions), so the value model is the only difference in what is held. Two model sizes
show how the gap grows.

Printed per trainer and size: parameters held (policy, reference, value, reward), optimizer state
in bytes, peak resident memory of the process, seconds per step (median of the steps after
``--warmup`` steps). Then an analytic table (also in docs/benchmarks.md) of bytes per GPU for 1.5B
and 7B models in bf16 with Adam, with and without ZeRO-3 over 8 GPUs, computed by
:func:`bytes_per_gpu`, which the script first checks against the measured tiny-model figures. The
last line is ``GRPO/PPO: peak memory R1, step time R2`` (the larger size).

    python benchmarks/grpo_vs_ppo.py [--steps 13] [--warmup 3] [--cache_dir .bench-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PPO_TRL = "trl==1.0.0"
#: (name, hidden size, layers): about 1.1M and 30M parameters with the character vocabulary.
SIZES = [("small", 128, 4), ("large", 512, 8)]


# ----- the analytic model ----------------------------------------------------------------------
def bytes_per_param(trainable: bool, weight_bytes: int = 2, mixed_precision: bool = True) -> int:
    """Bytes one parameter costs: weights, and for a trained model its gradient and Adam's states.

    bf16 mixed precision (``weight_bytes=2``): 2 (weight) + 2 (gradient) + 4 (fp32 master copy) +
    4 + 4 (Adam's first and second moments) = 16 bytes trained, 2 frozen. fp32 (``weight_bytes=4``,
    no master copy): 4 + 4 + 4 + 4 = 16 trained, 4 frozen.
    """
    if not trainable:
        return weight_bytes
    master = 4 if mixed_precision and weight_bytes < 4 else 0
    return weight_bytes + weight_bytes + master + 8


def bytes_per_gpu(params: int, method: str, gpus: int = 1, zero3: bool = False, weight_bytes: int = 2,
                  mixed_precision: bool = True) -> dict[str, float]:
    """Model-state bytes per GPU of one method, every model of ``params`` parameters.

    GRPO holds a trained policy, a frozen reference and a frozen reward model; PPO also trains a value
    model. Without ZeRO every GPU holds everything (data parallel); ZeRO-3 partitions weights,
    gradients and optimizer states of every model over ``gpus``. Activations and generation caches
    are not counted.
    """
    trained = {"grpo": ["policy"], "ppo": ["policy", "value"]}[method]
    frozen = ["reference", "reward"]
    parts = {name: params * bytes_per_param(True, weight_bytes, mixed_precision) for name in trained}
    parts.update({name: params * bytes_per_param(False, weight_bytes, mixed_precision) for name in frozen})
    share = gpus if zero3 else 1
    parts = {name: value / share for name, value in parts.items()}
    parts["total"] = sum(parts.values())
    return parts


def adam_state_bytes(params: int) -> int:
    """What Adam keeps per trained parameter in fp32 without a master copy: two moments."""
    return 8 * params


# ----- the workers ------------------------------------------------------------------------------
def _prompts(n: int) -> list[str]:
    return [f"{a}+{b}=" for a in range(10, 99) for b in range(10, 99)][:n]


class StepTimer:
    """A TrainerCallback recording the wall time between consecutive step ends (the first from the
    start of training): TRL 1.0.0's PPO loop calls ``on_train_begin`` and ``on_step_end`` only."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                timer.last = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                now = time.perf_counter()
                timer.times.append(now - timer.last)
                timer.last = now

        self.last, self.times, self.callback = time.perf_counter(), [], Callback()


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def _optimizer_bytes(optimizer) -> int:
    import torch

    return sum(v.numel() * v.element_size() for state in optimizer.state.values() for v in state.values()
               if isinstance(v, torch.Tensor))


def worker_grpo(opts, folder: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification

    from grpo_ext import GRPOConfig, GRPOTrainer
    from grpo_ext.tiny import load_char_tokenizer

    tokenizer = load_char_tokenizer(folder / "policy")
    reward = AutoModelForSequenceClassification.from_pretrained(folder / "reward")
    args = GRPOConfig(
        output_dir=str(folder / "run-grpo"), per_device_train_batch_size=opts.prompts * opts.group,
        num_generations=opts.group, max_completion_length=opts.length, max_steps=opts.steps, learning_rate=1e-5,
        beta=0.04, loss_type="grpo", use_bias_correction_kl=False, temperature=1.0, bf16=False, use_cpu=True,
        gradient_checkpointing=False, report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
        seed=0, model_init_kwargs={"dtype": "float32"})
    timer = StepTimer()
    dataset = Dataset.from_list([{"prompt": p} for p in _prompts(opts.prompts * opts.steps)])
    trainer = GRPOTrainer(model=str(folder / "policy"), reward_funcs=[reward], reward_processing_classes=[tokenizer],
                          args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer.callback])
    trainer.train()
    return {"policy": _count(trainer.model), "reference": _count(trainer.ref_model), "value": 0,
            "reward": _count(reward), "optimizer_bytes": _optimizer_bytes(trainer.optimizer), "times": timer.times}


def _tiny_module():
    """grpo_ext/tiny.py loaded on its own: importing the grpo_ext package refuses trl 1.0.0."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("grpo_ext_tiny", ROOT / "grpo_ext" / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker_ppo(opts, folder: Path) -> dict:
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from trl.experimental.ppo import PPOConfig, PPOTrainer

    if trl.__version__ != PPO_TRL.split("==")[1]:
        raise RuntimeError(f"the PPO worker must run with {PPO_TRL}, got trl {trl.__version__}")
    tokenizer = _tiny_module().load_char_tokenizer(folder / "policy")
    policy = AutoModelForCausalLM.from_pretrained(folder / "policy")
    reference = AutoModelForCausalLM.from_pretrained(folder / "policy")
    value = AutoModelForSequenceClassification.from_pretrained(folder / "value")
    reward = AutoModelForSequenceClassification.from_pretrained(folder / "reward")
    rows = opts.prompts * opts.group  # as many completions per step as GRPO's group batch
    prompts = [p for p in _prompts(opts.prompts * opts.steps) for _ in range(opts.group)]
    dataset = Dataset.from_list([{"input_ids": tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts])
    args = PPOConfig(
        output_dir=str(folder / "run-ppo"), per_device_train_batch_size=rows, gradient_accumulation_steps=1,
        num_mini_batches=1, num_ppo_epochs=1, local_rollout_forward_batch_size=rows, response_length=opts.length,
        total_episodes=rows * opts.steps, learning_rate=1e-5, kl_coef=0.04, temperature=1.0, stop_token="eos",
        num_sample_generations=0, bf16=False, use_cpu=True, gradient_checkpointing=False, report_to="none",
        save_strategy="no", logging_steps=1, disable_tqdm=True, seed=0)
    timer = StepTimer()
    trainer = PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=reference,
                         reward_model=reward, value_model=value, train_dataset=dataset, callbacks=[timer.callback])
    trainer.train()
    return {"policy": _count(policy), "reference": _count(reference), "value": _count(value), "reward": _count(reward),
            "optimizer_bytes": _optimizer_bytes(trainer.optimizer), "times": timer.times}


# ----- orchestration ----------------------------------------------------------------------------
def build_models(cache: Path, name: str, hidden: int, layers: int) -> Path:
    """Policy, value and reward models of one size (random weights), saved once under ``cache``."""
    folder = cache / f"models-{name}"
    if (folder / "reward" / "config.json").exists():
        return folder
    from grpo_ext.tiny import build_char_tokenizer, build_tiny_model, build_tiny_reward_model

    tokenizer = build_char_tokenizer()
    sizes = dict(hidden_size=hidden, num_layers=layers)
    build_tiny_model(tokenizer, seed=0, **sizes).save_pretrained(folder / "policy")
    tokenizer.save_pretrained(folder / "policy")
    build_tiny_reward_model(tokenizer, seed=1, **sizes).save_pretrained(folder / "value")
    build_tiny_reward_model(tokenizer, seed=2, **sizes).save_pretrained(folder / "reward")
    return folder


def ppo_python(cache: Path) -> str:
    """The interpreter of the PPO environment (created on first use): a venv that sees this interpreter's
    packages (torch, transformers ...) behind its own older TRL. ``--system-site-packages`` alone sees the
    base interpreter's, not those of a virtualenv this script runs in, so a ``.pth`` file adds the running
    interpreter's site-packages after the venv's own, with ``site.addsitedir`` (which also reads their own
    ``.pth`` files: editable installs). A venv made before that, which cannot import torch, is made again."""
    import shutil
    import site
    import sysconfig

    venv = cache / "ppo-venv"
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import torch, transformers, trl"],
                                          capture_output=True).returncode != 0:
        print(f"{venv} cannot import torch, transformers and trl: making it again", flush=True)
        shutil.rmtree(venv)
    if not python.exists():
        print(f"creating {venv} with {PPO_TRL} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
        inner = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
        ours = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                                   *site.getsitepackages()]))
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in ours if os.path.isdir(p))
        Path(inner, "zz_outer_site_packages.pth").write_text(lines)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", PPO_TRL], check=True)
    return str(python)


def launch(python: str, method: str, folder: Path, opts) -> dict:
    cmd = [python, __file__, "--worker", method, "--folder", str(folder), "--steps", str(opts.steps),
           "--prompts", str(opts.prompts), "--group", str(opts.group), "--length", str(opts.length)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRL_EXPERIMENTAL_SILENCE": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"the {method} run failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}")
    return json.loads(line[len("RESULT "):])


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=13, help="optimizer steps per run")
    p.add_argument("--warmup", type=int, default=3, help="first steps left out of the median")
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--group", type=int, default=8, help="completions per prompt (GRPO's G)")
    p.add_argument("--length", type=int, default=16, help="completion tokens")
    p.add_argument("--cache_dir", default=str(ROOT / ".bench-cache"), help="models and the PPO venv (reused)")
    p.add_argument("--worker", choices=["grpo", "ppo"], help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    opts = p.parse_args()
    if opts.steps - opts.warmup < 10:
        p.error(f"--steps ({opts.steps}) must leave at least 10 steps after --warmup ({opts.warmup})")

    if opts.worker:
        import torch

        torch.manual_seed(0)
        result = (worker_grpo if opts.worker == "grpo" else worker_ppo)(opts, Path(opts.folder))
        result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print("RESULT " + json.dumps(result), flush=True)
        return

    cache = Path(opts.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    pythons = {"grpo": sys.executable, "ppo": ppo_python(cache)}
    print(f"Batch: {opts.prompts} prompts x {opts.group} completions of {opts.length} tokens per step, one update per "
          f"batch, beta 0.04, CPU fp32. The same locally built LlamaForSequenceClassification is the reward model on "
          f"both sides (PPO needs a reward module), so only the value model differs.\n")
    print("| size | trainer | policy | reference | value | reward | optimizer state (MB) | peak RSS (MB) | s/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = {}
    for name, hidden, layers in SIZES:
        folder = build_models(cache, name, hidden, layers)
        for method in ("grpo", "ppo"):
            r = launch(pythons[method], method, folder, opts)
            r["step_s"] = statistics.median(r["times"][opts.warmup:])
            results[(name, method)] = r
            label = "grpo_ext (trl 1.16)" if method == "grpo" else f"PPO ({PPO_TRL})"
            print(f"| {name} | {label} | {r['policy']:,} | {r['reference']:,} | {r['value']:,} | {r['reward']:,} | "
                  f"{_mb(r['optimizer_bytes'])} | {_mb(r['peak_rss'])} | {r['step_s']:.3f} |", flush=True)

    # the analytic model against the measurement: Adam's fp32 moments of the trained parameters
    print("\nCheck of bytes_per_gpu's optimizer part against the measured optimizer state (fp32, 2 moments):")
    for (name, method), r in results.items():
        trained = r["policy"] + r["value"]
        predicted = adam_state_bytes(trained)
        print(f"- {name} {method}: predicted {predicted:,} B, measured {r['optimizer_bytes']:,} B "
              f"({r['optimizer_bytes'] / predicted:.3f}x)")

    print("\nModel-state bytes per GPU, bf16 weights and gradients, fp32 master copy and Adam moments, every model "
          "the policy's size (activations and generation caches not counted):\n")
    print("| model | setup | GRPO (GB) | PPO (GB) | PPO / GRPO |\n|---|---|---|---|---|")
    for label, params in (("1.5B", 1.5e9), ("7B", 7e9)):
        for setup, kw in (("1 GPU / data parallel", {}), ("ZeRO-3 over 8 GPUs", {"gpus": 8, "zero3": True})):
            g, q = bytes_per_gpu(int(params), "grpo", **kw)["total"], bytes_per_gpu(int(params), "ppo", **kw)["total"]
            print(f"| {label} | {setup} | {g / 1e9:.1f} | {q / 1e9:.1f} | {q / g:.2f} |")

    grpo, ppo = results[("large", "grpo")], results[("large", "ppo")]
    print(f"\nGRPO/PPO: peak memory {grpo['peak_rss'] / ppo['peak_rss']:.2f}, step time {grpo['step_s'] / ppo['step_s']:.2f}")


if __name__ == "__main__":
    main()
