"""``grpo-ext train RECIPE.yaml [--field value ...]``: a recipe through ``trl.TrlParser``, then train, save, push."""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import textwrap
from dataclasses import dataclass, field

import yaml

from ._common import RecipeError

logger = logging.getLogger("grpo_ext.cli.train")


@dataclass
class ScriptArguments:
    """What a recipe says besides the training and model configs: data, rewards, launch."""

    dataset_name: str = field(
        default="gsm8k+math",
        metadata={"help": "Benchmark(s) to train on: gsm8k, math, math500, cmath, mgsm_zh, joined by '+', or "
                          "synthetic_en / synthetic_zh (offline arithmetic tasks)."},
    )
    dataset_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_path: str | None = field(
        default=None,
        metadata={"help": "Local files in the dataset's own format: a path, or name=path pairs joined by ',' for a mix."},
    )
    template: str = field(default="chat", metadata={"help": "Prompt template: chat, text, plain or raw."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training rows."})
    synthetic_size: int = field(default=9000, metadata={"help": "Rows of a synthetic dataset."})
    synthetic_style: str = field(default="word", metadata={"help": "Synthetic style: word or compact."})
    synthetic_num_steps: int = field(default=2, metadata={"help": "Operations per synthetic problem."})
    synthetic_operand_max: int = field(default=20, metadata={"help": "Largest start value / operand (from 0)."})
    synthetic_ops: str = field(default="+-*", metadata={"help": "Synthetic operations to draw from, e.g. '+'."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "Reward functions by name (grpo_ext.rewards.get_reward_funcs)."},
    )
    reward_last_number_fallback: bool = field(
        default=False, metadata={"help": "accuracy, strict mode: also accept the last number when no answer form is "
                                         "found (the default mode always does)."}
    )
    reward_strict: bool = field(
        default=False, metadata={"help": "accuracy: accept only marked answers (\\boxed{}, '#### N', 'The answer is N', "
                                         "'答案是 N', a final 'A: N' line); off: also math-verify's extraction and the "
                                         "last number."}
    )
    answer_form: str = field(default="any", metadata={"help": "format: any, boxed, gsm8k, answer_is or chinese."})
    math_eval_datasets: list[str] | None = field(
        default=None,
        metadata={"help": "Benchmarks to evaluate during training with MathEvalCallback (e.g. gsm8k cmath); "
                          "local files through dataset_path name=path pairs."},
    )
    math_eval_steps: int | None = field(default=None, metadata={"help": "Evaluate every N steps (default eval_steps)."})
    math_eval_limit: int | None = field(default=None, metadata={"help": "Questions per benchmark."})
    math_eval_k: int = field(default=1, metadata={"help": "Samples for maj@k / pass@k during training (1: top-1)."})
    iterative: bool = field(
        default=False,
        metadata={"help": "Iterative RL (DeepSeekMath algorithm 1): the policy's reward includes an outcome reward model "
                          "that is retrained on fresh policy samples between GRPO stages (grpo_ext.iterative)."},
    )
    reward_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "iterative: the reward model to keep training. Outcome supervision: a sequence classifier, or "
                          "a causal LM whose body gets a fresh one-output head (the paper initialises its RM from the "
                          "SFT model). Process supervision (supervision: process): a causal LM that reads prm_step_tag "
                          "after each step and answers prm_good_token / prm_bad_token (Math-Shepherd's format)."},
    )
    prm_step_tag: str = field(default="ки", metadata={"help": "iterative, process: the tag after each step (one token)."})
    prm_good_token: str = field(default="+", metadata={"help": "iterative, process: the label of a good step (one token)."})
    prm_bad_token: str = field(default="-", metadata={"help": "iterative, process: the label of a bad step (one token)."})
    prm_rollouts: int = field(default=4, metadata={"help": "iterative, process: continuations of each step's prefix by "
                                                           "the policy for its Math-Shepherd label (N)."})
    prm_labels: str = field(default="hard", metadata={"help": "iterative, process: hard (good when any continuation "
                                                              "reaches the gold) or soft (the share that does)."})
    iterations: int = field(default=2, metadata={"help": "iterative: number of iterations."})
    iteration_steps: int = field(default=500, metadata={"help": "iterative: GRPO steps per iteration."})
    rm_questions: int = field(default=2000, metadata={"help": "iterative: training questions the RM's samples come from."})
    rm_samples: int = field(default=4, metadata={"help": "iterative: completions sampled per question for the RM."})
    rm_steps: int = field(default=200, metadata={"help": "iterative: RM training steps per iteration."})
    rm_initial_steps: int = field(default=0, metadata={"help": "iterative: RM steps before the first iteration."})
    rm_learning_rate: float = field(default=2e-5, metadata={"help": "iterative: the RM's learning rate."})
    rm_batch_size: int = field(default=16, metadata={"help": "iterative: RM texts per step and per forward pass."})
    rm_lora_r: int = field(default=0, metadata={"help": "iterative: LoRA rank of the RM's adapter (0: train it fully)."})
    replay_ratio: float = field(default=0.1, metadata={"help": "iterative: share of replayed history (paper: 0.1)."})
    accelerate_config: str | None = field(
        default=None, metadata={"help": "The accelerate config this recipe is meant for (checked by --dry_run)."}
    )
    num_processes: int | None = field(
        default=None, metadata={"help": "--dry_run's memory plan: the GPUs to plan for (default: the accelerate config's)."}
    )
    gpu_memory_gb: float = field(default=80.0, metadata={"help": "--dry_run's memory plan: the GPU size to check it "
                                                                 "against, in GB."})
    max_prompt_tokens: int = field(default=512, metadata={"help": "--dry_run's memory plan: the longest prompt, in tokens."})
    dry_run: bool = field(default=False, metadata={"help": "Validate the recipe without loading weights or data."})
    smoke: bool = field(
        default=False,
        metadata={"help": "Run the recipe for 2 steps on the CPU: float32, no vLLM, 2 prompts x 4 completions of 32 "
                          "tokens, logging every step, nothing saved during training; every other field as written "
                          "(what it changes is printed). With --model_name_or_path pointing at a grpo-ext tiny-model "
                          "folder it runs offline."},
    )


def _parser():
    from trl import ModelConfig, TrlParser

    from ..config import GRPOConfig

    return TrlParser((ScriptArguments, GRPOConfig, ModelConfig))


def _known_fields() -> set[str]:
    return {f["name"] for _, fields in field_groups() for f in fields} | {"env"}


# ----- --help --------------------------------------------------------------------------------
TRAIN_USAGE = "usage: grpo-ext train RECIPE.yaml [--field value ...]"
TRAIN_ABOUT = (
    "Train with a YAML recipe, read by trl.TrlParser into three groups of fields: the script arguments below, "
    "grpo_ext.GRPOConfig and trl.ModelConfig. Any field can be set on the command line as --field value "
    "(--field-name value works too). `grpo-ext train RECIPE.yaml [--field value ...] --help` shows the values "
    "the recipe resolves to; `--dry_run true` checks it without loading weights.")


def _field_groups() -> list[tuple[str, list[dict]]]:
    """(title, fields) of what ``train`` reads, each field ``{name, type, default, help}`` (imports TRL)."""
    from transformers import TrainingArguments
    from trl import GRPOConfig as TrlGRPOConfig
    from trl import ModelConfig

    from ..config import GRPOConfig

    def describe(f) -> dict:
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        return {"name": f.name, "type": kind, "default": repr(default),
                "help": " ".join(str(f.metadata.get("help", "")).split())}

    ours = {f.name for f in dataclasses.fields(GRPOConfig)} - {f.name for f in dataclasses.fields(TrlGRPOConfig)}
    trl_own = {f.name for f in dataclasses.fields(TrlGRPOConfig)} - {f.name for f in dataclasses.fields(TrainingArguments)}
    config = [describe(f) for f in dataclasses.fields(GRPOConfig)]
    return [
        ("script arguments (grpo-ext: data, rewards, launch)", [describe(f) for f in dataclasses.fields(ScriptArguments)]),
        ("GRPOConfig: grpo-ext's fields", [f for f in config if f["name"] in ours]),
        ("GRPOConfig: TRL's GRPO fields", [f for f in config if f["name"] in trl_own]),
        ("GRPOConfig: transformers' TrainingArguments", [f for f in config if f["name"] not in ours | trl_own]),
        ("model (trl.ModelConfig)", [describe(f) for f in dataclasses.fields(ModelConfig)]),
    ]


def _help_cache_path() -> str:
    """Where the field list is kept: keyed by the versions and sources that define the fields."""
    from importlib.metadata import PackageNotFoundError, version

    key = []
    for package in ("grpo-ext", "trl", "transformers"):
        try:
            key.append(version(package))
        except PackageNotFoundError:
            key.append("-")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for source in (os.path.join(here, "config.py"), os.path.abspath(__file__)):  # an editable install changes them
        key.append(str(int(os.path.getmtime(source))))
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "grpo-ext", f"train-fields-{'-'.join(key)}.json")


def field_groups() -> list[tuple[str, list[dict]]]:
    """:func:`_field_groups`, cached on disk: listing the fields needs TRL, whose import takes seconds."""
    path = _help_cache_path()
    try:
        with open(path, encoding="utf-8") as f:
            return [tuple(group) for group in json.load(f)]
    except (OSError, ValueError):
        pass
    groups = _field_groups()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(groups, f)
        os.replace(path + ".tmp", path)
    except OSError:
        pass  # a read-only home: the list is built again next time
    return groups


def fields_help() -> str:
    """``grpo-ext train --help``: every field, grouped, with its type, default and help."""
    lines = [TRAIN_USAGE, "", textwrap.fill(TRAIN_ABOUT, 100)]
    for title, fields in field_groups():
        lines += ["", f"{title}:"]
        for f in fields:
            lines.append(f"  --{f['name']} {f['type']}  (default {f['default']})")
            if f["help"]:
                lines += textwrap.wrap(f["help"], 96, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def resolved_help(argv: list[str]) -> str:
    """``grpo-ext train RECIPE [--field value ...] --help``: each field's resolved value and where it came from."""
    from ..config import _has_accelerator

    on_cpu = not _has_accelerator()
    (script_args, training_args, model_args), recipe = parse_train_args(argv, as_on_cpu=on_cpu)
    overrides = {a[2:].split("=")[0] for a in argv[1:] if a.startswith("--")}
    groups = field_groups()
    lines = [f"{argv[0]}: the values it resolves to. [recipe]: set there; [command line]: overridden; [resolved]: "
             "not set, and not the field's default (the config resolved it)"]
    if on_cpu:
        lines.append("No GPU here: " + ", ".join(CPU_CHECK) + " are shown as a CPU run resolves them "
                     "(marked [on this CPU]); on a GPU they follow the recipe.")
    for (title, fields), obj in zip(groups, (script_args, training_args, training_args, training_args, model_args)):
        lines += ["", f"{title}:"]
        for f in fields:
            value = getattr(obj, f["name"])
            source = ("on this CPU" + (f"; recipe: {recipe[f['name']]!r}" if f["name"] in recipe else "")
                      if on_cpu and f["name"] in CPU_CHECK and obj is training_args
                      else "command line" if f["name"] in overrides else "recipe" if f["name"] in recipe
                      else "resolved" if repr(value) != f["default"] else "")
            lines.append(f"  {f['name']}: {value!r}" + (f"   [{source}]" if source else ""))
    return "\n".join(lines)


def _check_fields(names, where: str) -> None:
    known = _known_fields()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"unknown field {name!r} in {where}.{hint}")


def _read_recipe(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            recipe = yaml.safe_load(f)
    except OSError as err:
        raise RecipeError(f"cannot read the recipe {path!r}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise RecipeError(f"the recipe {path!r} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    except yaml.YAMLError as err:
        raise RecipeError(f"the recipe {path!r} is not valid YAML: {err}") from err
    if not isinstance(recipe, dict):
        raise RecipeError(f"the recipe {path!r} must be a YAML mapping of field: value")
    _check_fields(recipe, f"recipe {path!r}")
    return recipe


#: Precision fields a check on a machine without a GPU resolves as a CPU run would (a dry run, --help).
CPU_CHECK = {"bf16": "false", "fp16": "false", "use_cpu": "true"}


def parse_train_args(argv: list[str], as_on_cpu: bool = False):
    """(script_args, training_args, model_args) from ``RECIPE.yaml [--field value ...]``.

    ``as_on_cpu`` (and ``dry_run``) resolve bf16 / fp16 / use_cpu as on a CPU, so that a GPU recipe
    can be checked on any machine.
    """
    if not argv or argv[0].startswith("-"):
        raise RecipeError("usage: grpo-ext train RECIPE.yaml [--field value ...]")
    recipe_path, overrides = argv[0], list(argv[1:])
    recipe = _read_recipe(recipe_path)
    _check_fields([a[2:].split("=")[0] for a in overrides if a.startswith("--")], "the command line")
    dry = str(recipe.get("dry_run", False)).lower() == "true" or _flag_value(overrides, "dry_run") == "true"
    if dry or as_on_cpu:
        # validate GPU recipes on any machine: bf16/fp16 need a GPU, which a dry run does not use
        overrides += [x for name, value in CPU_CHECK.items() for x in (f"--{name}", value)]
    if str(recipe.get("smoke", False)).lower() == "true" or _flag_value(overrides, "smoke") == "true":
        overrides += smoke_overrides(recipe, overrides)
    try:
        parsed = _parser().parse_args_and_config(args=["--config", recipe_path, *overrides])
    except ValueError as err:  # a config's own check (batch arithmetic, choices): one line, not a traceback
        raise RecipeError(f"{recipe_path}: {str(err).splitlines()[0]}") from None
    return parsed, recipe


#: What ``--smoke true`` sets: a 2-step CPU run of any recipe.
SMOKE_SETTINGS = {
    "bf16": "false", "fp16": "false", "use_cpu": "true", "dtype": "float32", "use_vllm": "false",
    "gradient_checkpointing": "false", "per_device_train_batch_size": "8", "num_generations": "4",
    "gradient_accumulation_steps": "1", "max_completion_length": "32", "max_steps": "2", "logging_steps": "1",
    "save_strategy": "no", "push_to_hub": "false", "report_to": "none",
}


def smoke_overrides(recipe: dict, overrides: list[str]) -> list[str]:
    """The command-line overrides of a smoke run, after the user's own (which still win); prints each change.

    A process reward model named on the Hub (``prm:owner/name``) cannot load offline: the smoke run
    scores steps with the ``step_check`` checker instead, and says so.
    """
    settings = dict(SMOKE_SETTINGS)
    process_reward = _flag_value(overrides, "process_reward") or str(recipe.get("process_reward", ""))
    if process_reward.startswith("prm:") and not os.path.isdir(process_reward[4:]):
        settings["process_reward"] = "step_check"
    if "generation_batch_size" in recipe:  # a recipe's global generation batch: the smoke run's one batch
        settings["generation_batch_size"] = settings["per_device_train_batch_size"]
    changed = []
    for name, value in settings.items():
        if _flag_value(overrides, name) is not None:
            continue  # the user's own override wins
        before = recipe.get(name)
        if str(before).lower() != value:
            changed.append(f"{name}: {before if before is not None else '(default)'} -> {value}")
    print("smoke run, changed from the recipe: " + "; ".join(changed), flush=True)
    extra = []
    for name, value in settings.items():
        if _flag_value(overrides, name) is None:
            extra += [f"--{name}", value]
    return extra


def _flag_value(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == f"--{name}":
            return args[i + 1].lower() if i + 1 < len(args) and not args[i + 1].startswith("--") else "true"
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1].lower()
    return None


def _dataset_paths(script_args: ScriptArguments) -> tuple[str | None, dict[str, str]]:
    """``dataset_path`` as (one plain path, {benchmark: path}). An item is ``NAME=PATH`` only when NAME
    is a benchmark (any case: ``GSM8K=...``); anything else is a path, ``=`` and all
    (``data/split=train/x.jsonl``)."""
    from ..data import DATASETS

    raw = script_args.dataset_path
    if not raw:
        return None, {}
    named, plain = {}, []
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        name, sep, path = item.partition("=")
        if sep and name.strip().lower() in DATASETS:
            named[name.strip().lower()] = os.path.expanduser(path.strip())
        else:
            plain.append(os.path.expanduser(item))
    if plain and (named or len(plain) > 1):
        raise RecipeError(f"dataset_path {raw!r}: give one path, or NAME=PATH pairs joined by ',' "
                          f"(NAME one of {sorted(DATASETS)})")
    return (plain[0] if plain else None), named


SYNTHETIC = ("synthetic_en", "synthetic_zh")


def _paths_for(script_args: ScriptArguments, name: str, evaluation: bool):
    """The local files of ``name`` (a benchmark or a '+' mix), or None for the Hub. A plain
    ``dataset_path`` is the training data's: held-out evaluation never reads it."""
    plain, named = _dataset_paths(script_args)
    parts = name.split("+")
    if named:
        return {n: named[n] for n in parts if n in named} or None
    if plain is not None and evaluation:
        logger.warning("math_eval_datasets %s: dataset_path %r is the training data, so %s is loaded from the Hub; "
                       "pass dataset_path %s=FILE (with the training data as %s=FILE) to evaluate a local copy",
                       name, plain, name, name, script_args.dataset_name)
        return None
    return plain


def _check_paths(script_args: ScriptArguments) -> None:
    """Every local path of ``dataset_path`` exists and holds JSON / JSONL / Parquet files (not read yet)."""
    from ..data.loaders import local_files

    plain, named = _dataset_paths(script_args)
    for label, path in ([("dataset_path", plain)] if plain else []) + [(f"dataset_path {n}=", p) for n, p in named.items()]:
        try:
            local_files(path)
        except (OSError, ValueError) as err:
            raise RecipeError(f"{label} {path}: {err}") from None


def _load_named(script_args: ScriptArguments, name: str, split: str, seed: int, size: int, evaluation: bool = False):
    from ..data import load_math_dataset
    from ..data.synthetic import synthetic_dataset

    if name in SYNTHETIC:
        return synthetic_dataset(size, language=name[-2:], style=script_args.synthetic_style, seed=seed,
                                 template=script_args.template, num_steps=script_args.synthetic_num_steps,
                                 operand_range=(0, script_args.synthetic_operand_max),
                                 ops=tuple(script_args.synthetic_ops))
    paths = _paths_for(script_args, name, evaluation)
    where = "math_eval_datasets" if evaluation else "dataset_name"
    try:
        return load_math_dataset(name, split, path=paths, template=script_args.template)
    except (OSError, ValueError, RuntimeError) as err:
        flag = f"dataset_path {paths}" if paths else f"{where} {name}"
        raise RecipeError(f"{flag}: {err}") from None


def load_train_dataset(script_args: ScriptArguments, seed: int = 0):
    """The training dataset a recipe names."""
    from ..data import drop_rows_without_gold

    ds = _load_named(script_args, script_args.dataset_name, script_args.dataset_split, seed, script_args.synthetic_size)
    ds, _ = drop_rows_without_gold(ds, f"the training data {script_args.dataset_name}")
    if len(ds) == 0:
        raise RecipeError(f"no row of the training data {script_args.dataset_name!r} has a gold answer")
    if script_args.max_train_samples is not None:
        ds = ds.select(range(min(script_args.max_train_samples, len(ds))))
    return ds


def load_eval_benchmarks(script_args: ScriptArguments, seed: int = 0) -> dict:
    """The held-out sets MathEvalCallback evaluates (synthetic ones drawn with another seed)."""
    from ..data import DATASETS

    out = {}
    for name in script_args.math_eval_datasets or []:
        if name not in DATASETS and name not in SYNTHETIC:
            raise RecipeError(f"unknown math_eval_datasets entry {name!r}; known: {sorted(DATASETS) + list(SYNTHETIC)}")
        out[name] = _load_named(script_args, name, "test", seed + 10_000, script_args.math_eval_limit or 200,
                                evaluation=True)
    return out


def reward_functions(script_args: ScriptArguments):
    from ..rewards import get_reward_funcs

    options = {}
    if "accuracy" in script_args.reward_funcs:
        options["last_number_fallback"] = script_args.reward_last_number_fallback
        options["strict"] = script_args.reward_strict
    if "format" in script_args.reward_funcs:
        options["answer_form"] = script_args.answer_form
    if not script_args.reward_funcs:
        if script_args.iterative:
            return []  # the reward model alone, as in the paper
        raise RecipeError("reward_funcs is empty: name at least one reward function (e.g. [accuracy])")
    try:
        return get_reward_funcs(script_args.reward_funcs, **options)
    except ValueError as err:
        raise RecipeError(f"reward_funcs {script_args.reward_funcs}: {err}") from None


def check_output_dir(path: str) -> None:
    """``output_dir`` can be a folder: neither it nor a folder above it is a file, and it can be written."""
    here = os.path.abspath(os.path.expanduser(path))
    while not os.path.exists(here):
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    if not os.path.isdir(here):
        raise RecipeError(f"output_dir {path}: {here} is a file, not a folder; choose another output_dir")
    if not os.access(here, os.W_OK):
        raise RecipeError(f"output_dir {path}: {here} is not writable; choose another output_dir")


def _accelerate_processes(path: str) -> tuple[int, str]:
    from accelerate.commands.config.config_args import load_config_from_file

    if not os.path.isfile(path):
        raise RecipeError(f"the accelerate config {path!r} does not exist")
    cfg = load_config_from_file(path)
    zero = (cfg.deepspeed_config or {}).get("zero_stage")
    kind = f"{cfg.distributed_type}" + (f" ZeRO-{zero}" if zero is not None else "")
    return int(cfg.num_processes or 1), kind, int(zero or 0)


def dry_run(script_args: ScriptArguments, training_args, model_args, explicit_generation_batch: bool = False) -> str:
    """Check what a recipe names without loading weights or data; return a summary."""
    from ..data import DATASETS

    reward_functions(script_args)  # unknown names and options raise here
    check_output_dir(training_args.output_dir)
    _check_paths(script_args)
    if training_args.supervision == "process":
        from ..rewards.process import check_process_reward

        try:
            check_process_reward(training_args.process_reward)
        except ValueError as err:
            raise RecipeError(str(err)) from None
    names = script_args.dataset_name.split("+")
    for n in names + list(script_args.math_eval_datasets or []):
        if n not in DATASETS and n not in SYNTHETIC:
            raise RecipeError(f"unknown dataset {n!r}; known: {sorted(DATASETS) + list(SYNTHETIC)}")
    if not model_args.model_name_or_path:
        raise RecipeError("the recipe names no model_name_or_path")
    if script_args.iterative and not script_args.reward_model_name_or_path:
        raise RecipeError("iterative: true needs reward_model_name_or_path (the reward model to keep training)")
    if script_args.iterative and script_args.prm_labels not in ("hard", "soft"):
        raise RecipeError(f"prm_labels {script_args.prm_labels!r}: it must be hard or soft")
    if script_args.iterative and script_args.prm_rollouts < 1:
        raise RecipeError(f"prm_rollouts {script_args.prm_rollouts}: it must be at least 1")
    processes, kind, zero = (1, "no accelerate config", 0)
    if script_args.accelerate_config:
        processes, kind, zero = _accelerate_processes(script_args.accelerate_config)
    if script_args.num_processes is not None:
        if script_args.num_processes < 1:
            raise RecipeError(f"num_processes {script_args.num_processes}: it must be at least 1")
        processes = script_args.num_processes
    spg = training_args.steps_per_generation
    batch = training_args.per_device_train_batch_size * processes * spg
    g = training_args.num_generations
    if batch % g:
        raise RecipeError(
            f"per_device_train_batch_size {training_args.per_device_train_batch_size} x {processes} processes x "
            f"steps_per_generation {spg} = {batch} completions per generation batch, not a multiple of "
            f"num_generations ({g})"
        )
    return (
        f"recipe OK: model {model_args.model_name_or_path}; data {script_args.dataset_name}; rewards "
        f"{script_args.reward_funcs}; {kind} with {processes} process(es): {training_args.per_device_train_batch_size}"
        f" x {processes} x {spg} = {batch} completions ({batch // g} prompts x {g} generations) per generation "
        f"batch; loss {training_args.loss_type}, beta {training_args.beta}, kl {training_args.kl_estimator}, "
        f"lr {training_args.learning_rate}; supervision {training_args.supervision}"
        + ((f" (a learned process reward model, Math-Shepherd labels: {script_args.prm_rollouts} rollouts, "
           f"{script_args.prm_labels})" if script_args.iterative else f" ({training_args.process_reward})")
           if training_args.supervision == "process" else "")
        + f"; zero-variance groups {training_args.zero_variance_groups}"
        + (f"; iterative RL: {script_args.iterations} x {script_args.iteration_steps} steps, reward model "
           f"{script_args.reward_model_name_or_path}, replay {script_args.replay_ratio}" if script_args.iterative else "")
    ) + "\n" + memory_plan(script_args, training_args, model_args, processes, zero, explicit_generation_batch)


def memory_plan(script_args: ScriptArguments, training_args, model_args, processes: int, zero: int,
                explicit_generation_batch: bool = False) -> str:
    """The recipe's memory plan per GPU (:mod:`grpo_ext.memory`), from the model's config only."""
    from .. import memory

    if script_args.gpu_memory_gb <= 0:
        raise RecipeError(f"gpu_memory_gb {script_args.gpu_memory_gb}: it must be positive (e.g. 24, 48, 80)")
    try:
        shape = memory.load_shape(model_args.model_name_or_path)
    except ValueError as err:
        return f"memory plan: not made: {err}"
    dtype = str(model_args.dtype or "bfloat16")
    setup = memory.Setup(
        processes=processes, zero_stage=zero, dtype_bytes=4 if dtype in ("float32", "torch.float32") else 2,
        peft=bool(model_args.use_peft), lora_r=model_args.lora_r, lora_targets=model_args.lora_target_modules,
        load_in_4bit=bool(model_args.load_in_4bit), nested_quant=bool(model_args.use_bnb_nested_quant),
        beta=training_args.beta, micro_batch=training_args.per_device_train_batch_size,
        prompt_length=script_args.max_prompt_tokens, completion_length=training_args.max_completion_length or 256,
        gradient_checkpointing=bool(training_args.gradient_checkpointing),
        # per process: a recipe's own generation_batch_size is global (TRL splits it over the processes);
        # otherwise TRL generates per_device_train_batch_size x steps_per_generation on each process
        generation_batch=(training_args.generation_batch_size // processes if explicit_generation_batch
                          else training_args.per_device_train_batch_size * training_args.steps_per_generation),
        vllm_colocate=bool(training_args.use_vllm) and training_args.vllm_mode == "colocate",
        vllm_share=training_args.vllm_gpu_memory_utilization or 0.0)
    text = memory.describe(shape, setup, script_args.gpu_memory_gb)
    others = [gb for gb in (24, 48, 80) if gb != script_args.gpu_memory_gb]
    return text + "\n" + "\n".join(f"  on {gb} GB GPUs: {memory.plan(shape, setup, gb).verdict(gb, setup)}"
                                    for gb in others)


def train(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        rest = [a for a in argv if a not in ("--help", "-h")]
        print(resolved_help(rest) if rest and not rest[0].startswith("-") else fields_help())
        return 0
    (script_args, training_args, model_args), recipe = parse_train_args(argv)
    if script_args.dry_run:
        explicit = "generation_batch_size" in recipe or any(a.startswith("--generation_batch_size") for a in argv)
        print(dry_run(script_args, training_args, model_args, explicit_generation_batch=explicit))
        return 0
    check_output_dir(training_args.output_dir)  # before any weights or data load
    _check_paths(script_args)
    reward_funcs = reward_functions(script_args)

    from transformers.trainer_utils import get_last_checkpoint
    from trl import get_peft_config, get_quantization_config

    from ..trainer import GRPOTrainer

    init = dict(revision=model_args.model_revision,
                attn_implementation=model_args.attn_implementation, dtype=model_args.dtype)
    quantization = get_quantization_config(model_args)
    init.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = {k: v for k, v in init.items() if v is not None}

    callbacks = []
    if script_args.math_eval_datasets:
        from ..callbacks import MathEvalCallback

        callbacks.append(MathEvalCallback(
            load_eval_benchmarks(script_args, training_args.seed), eval_steps=script_args.math_eval_steps,
            limit=script_args.math_eval_limit, k=script_args.math_eval_k,
            max_new_tokens=training_args.max_completion_length or 512,
            last_number_fallback=script_args.reward_last_number_fallback,
        ))
    train_dataset = load_train_dataset(script_args, seed=training_args.seed)
    if script_args.iterative:
        return train_iterative(script_args, training_args, model_args, train_dataset, callbacks)
    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        quantization_config=quantization,
        callbacks=callbacks or None,
    )
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and os.path.isdir(training_args.output_dir):
        checkpoint = get_last_checkpoint(training_args.output_dir)
    if checkpoint is not None:
        trainer.accelerator.print(f"resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json beside the model, for `grpo-ext report`
    from ..data import DATASETS

    hub_dataset = DATASETS[script_args.dataset_name].hub_id if script_args.dataset_name in DATASETS else None
    model_name = training_args.hub_model_id or os.path.basename(os.path.normpath(training_args.output_dir))
    if trainer.accelerator.is_main_process:
        trainer.create_model_card(model_name=model_name, dataset_name=hub_dataset, tags=["grpo-ext", "deepseekmath"])
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=hub_dataset)
    plugin = trainer.accelerator.state.deepspeed_plugin
    engine = f"DeepSpeed ZeRO-{plugin.zero_stage}" if plugin is not None else str(trainer.accelerator.distributed_type)
    quantized = sum(type(m).__name__ == "Linear4bit" for m in trainer.model.modules())
    if quantized:
        engine += f", {quantized} 4-bit linear layers"
    trainer.accelerator.print(f"trained {trainer.state.global_step} steps ({engine}, "
                              f"{trainer.accelerator.num_processes} process(es)); model saved to {training_args.output_dir}")
    return 0


def load_reward_model(script_args: ScriptArguments, max_length: int = 2048):
    """The iterative loop's outcome reward model: a sequence classifier with one output (optionally LoRA)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..rewards.models import OutcomeRewardModel

    import transformers.integrations.deepspeed as hf_deepspeed

    path = script_args.reward_model_name_or_path
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Under ZeRO-3 transformers would partition a model loaded now (the training args registered the
    # DeepSpeed config); the reward model is a whole copy on each process, trained outside DeepSpeed.
    registered = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype="auto")
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = registered
    if script_args.rm_lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=script_args.rm_lora_r, lora_alpha=2 * script_args.rm_lora_r,
                                                 target_modules="all-linear", task_type="SEQ_CLS"))
    return OutcomeRewardModel(model, tokenizer, learning_rate=script_args.rm_learning_rate,
                              batch_size=script_args.rm_batch_size,
                              max_length=max_length)


def load_process_reward_model(script_args: ScriptArguments, max_length: int = 2048):
    """The iterative loop's process reward model: a causal LM read at step tags (optionally LoRA)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..rewards.models import ProcessRewardModel

    import transformers.integrations.deepspeed as hf_deepspeed

    path = script_args.reward_model_name_or_path
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    registered = hf_deepspeed._hf_deepspeed_config_weak_ref  # a whole copy per process, as for the outcome RM
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = registered
    if script_args.rm_lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=script_args.rm_lora_r, lora_alpha=2 * script_args.rm_lora_r,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    try:
        return ProcessRewardModel(model, tokenizer, step_tag=script_args.prm_step_tag,
                                  good_token=script_args.prm_good_token, bad_token=script_args.prm_bad_token,
                                  batch_size=script_args.rm_batch_size, max_length=max_length,
                                  learning_rate=script_args.rm_learning_rate)
    except ValueError as err:
        raise RecipeError(f"reward_model_name_or_path {path}: {err}") from None


def train_iterative(script_args, training_args, model_args, train_dataset, callbacks) -> int:
    """``grpo-ext train`` with ``iterative: true``: :class:`grpo_ext.iterative.IterativeGRPO` around the recipe."""
    from trl import get_peft_config

    from ..iterative import IterativeConfig, IterativeGRPO
    from ..trainer import GRPOTrainer

    named = reward_functions(script_args)
    held = min(script_args.rm_questions, max(len(train_dataset) // 10, 2))
    questions = train_dataset.shuffle(seed=training_args.seed).select(range(held))

    process = training_args.supervision == "process"

    def factory(model, reward_model, output_dir):
        # The same args object: a copy would lose the DeepSpeed ZeRO-3 config that transformers keeps a
        # reference to when the args are built (the copy's forward would see partitioned weights).
        training_args.output_dir = output_dir
        rewards = {"reward_funcs": named, "process_reward_funcs": [reward_model]} if process else {
            "reward_funcs": [reward_model, *named]}
        return GRPOTrainer(model=model, args=training_args, train_dataset=train_dataset,
                           peft_config=get_peft_config(model_args) if isinstance(model, str) else None,
                           callbacks=callbacks or None, **rewards)

    length = 1024 + (training_args.max_completion_length or 512)
    rm = load_process_reward_model(script_args, length) if process else load_reward_model(script_args, length)
    loop = IterativeGRPO(factory, model_args.model_name_or_path, rm, questions,
                         IterativeConfig(
                             output_dir=training_args.output_dir, iterations=script_args.iterations,
                             policy_steps=script_args.iteration_steps, rm_samples=script_args.rm_samples,
                             rm_steps=script_args.rm_steps, initial_rm_steps=script_args.rm_initial_steps,
                             replay_ratio=script_args.replay_ratio,
                             max_new_tokens=training_args.max_completion_length or 512,
                             temperature=training_args.temperature,
                             last_number_fallback=script_args.reward_last_number_fallback, seed=training_args.seed,
                             supervision=training_args.supervision, prm_rollouts=script_args.prm_rollouts,
                             prm_labels=script_args.prm_labels, step_separator=training_args.step_separator))
    root = training_args.output_dir
    log = loop.run()
    training_args.output_dir = root
    if loop.trainer is None:
        print(f"iterative RL: the run in {training_args.output_dir} had already finished ({len(log)} reward-model updates)")
        return 0
    final = os.path.join(training_args.output_dir, "model")
    loop.trainer.save_model(final)
    if loop.trainer.accelerator.is_main_process:
        loop.trainer.processing_class.save_pretrained(final)
        loop.trainer.save_state()
    loop.trainer.accelerator.print(f"iterative RL: {len(log)} reward-model updates; policy saved to {final}")
    if training_args.push_to_hub:
        loop.trainer.push_to_hub()
    return 0


run = train
