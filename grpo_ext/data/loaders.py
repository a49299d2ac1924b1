"""GSM8K, MATH, MATH-500, CMATH and MGSM-zh in the shape GRPOTrainer wants.

Every loader reads the benchmark's own Hub format, from the Hub or from local JSON / JSONL /
Parquet files (``path=``), and returns at least ``prompt`` (TRL format, by ``template``),
``answer`` (the gold final answer) and ``source``; level / subject / grade columns are kept where
the source has them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

import datasets
from datasets import Dataset

from ..verify.extract import find_answer
from .templates import TEMPLATES, format_prompt


@dataclass(frozen=True)
class _Spec:
    hub_id: str
    hub_config: str | None
    language: str
    required: tuple[str, ...]
    convert: Callable[[dict], dict]
    splits: tuple[str, ...]


_CALCULATOR_RE = re.compile(r"<<[^<>]*>>")


def _gsm8k(row: dict) -> dict:
    solution, _, final = row["answer"].rpartition("####")
    return {
        "question": row["question"],
        "solution": _CALCULATOR_RE.sub("", solution).strip(),
        "answer": final.strip().replace(",", ""),
    }


def _boxed_or_none(solution: str) -> str | None:
    return find_answer(solution, "boxed")


def _math(row: dict) -> dict:
    return {
        "question": row["problem"],
        "solution": row["solution"],
        "answer": _boxed_or_none(row["solution"]),
        "level": row.get("level"),
        "subject": row.get("type"),
    }


def _math500(row: dict) -> dict:
    return {
        "question": row["problem"],
        "solution": row["solution"],
        "answer": row["answer"],
        "level": str(row["level"]) if row.get("level") is not None else None,
        "subject": row.get("subject"),
    }


def _cmath(row: dict) -> dict:
    return {"question": row["question"], "answer": str(row["golden"]).strip(), "grade": str(row.get("grade", ""))}


def _mgsm_zh(row: dict) -> dict:
    value = row["answer_number"]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {"question": row["question"], "answer": str(value)}


DATASETS: dict[str, _Spec] = {
    "gsm8k": _Spec("openai/gsm8k", "main", "en", ("question", "answer"), _gsm8k, ("train", "test")),
    "math": _Spec("DigitalLearningGmbH/MATH-lighteval", None, "en", ("problem", "solution"), _math, ("train", "test")),
    "math500": _Spec("HuggingFaceH4/MATH-500", None, "en", ("problem", "solution", "answer"), _math500, ("test",)),
    "cmath": _Spec("weitianwen/cmath", None, "zh", ("question", "golden"), _cmath, ("validation", "test")),
    "mgsm_zh": _Spec("juletxara/mgsm", "zh", "zh", ("question", "answer_number"), _mgsm_zh, ("train", "test")),
}


def _read_local(path: str) -> Dataset:
    if not os.path.exists(path):
        raise FileNotFoundError(f"path={path!r} does not exist")
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(path, f) for f in os.listdir(path) if f.endswith((".json", ".jsonl", ".parquet"))
    )
    if not files:
        raise ValueError(f"no .json, .jsonl or .parquet files in {path!r}")
    kinds = {"parquet" if f.endswith(".parquet") else "json" for f in files}
    if len(kinds) > 1:
        raise ValueError(f"{path!r} mixes Parquet and JSON files; keep one format per folder")
    try:
        return datasets.load_dataset(kinds.pop(), data_files=files, split="train")
    except ValueError as err:
        if "no data" in str(err):
            raise ValueError(f"path={path!r} holds no rows: the split is empty") from err
        raise


def _read_hub(name: str, spec: _Spec, split: str) -> Dataset:
    try:
        return datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    except Exception as err:  # offline, gated, renamed: the fix is the same
        raise RuntimeError(
            f"could not load {name!r} ({spec.hub_id}, split {split!r}) from the Hugging Face Hub: {err}. "
            f"Offline? Pass path= with local JSON / JSONL / Parquet files in the dataset's own format "
            f"(columns {list(spec.required)})."
        ) from err


def _load_one(name: str, split: str, path: str | None, template: str) -> Dataset:
    spec = DATASETS[name]
    raw = _read_local(path) if path is not None else _read_hub(name, spec, split)
    missing = [c for c in spec.required if c not in raw.column_names]
    if missing:
        raise ValueError(
            f"{name} data is missing the column(s) {missing} (found {raw.column_names}); "
            f"expected the Hub dataset's own format: {list(spec.required)}"
        )
    if len(raw) == 0:
        raise ValueError(f"the {name} split {split!r} is empty" + (f" (path={path!r})" if path else ""))

    def convert(row):
        out = spec.convert(row)
        out["prompt"] = format_prompt(out["question"], template, spec.language)
        out["source"] = name
        return out

    # built afresh rather than with map(), which would keep the source's types for reused column names
    return Dataset.from_list([convert(row) for row in raw])


def load_math_dataset(name: str, split: str = "train", path: str | dict[str, str] | None = None,
                      template: str = "chat") -> Dataset:
    """A math benchmark as a dataset with ``prompt``, ``answer``, ``source`` (and level/subject/grade).

    Args:
        name: ``gsm8k``, ``math``, ``math500``, ``cmath``, ``mgsm_zh``, or several joined by ``+``
            (``"gsm8k+math"``, the paper's RL mix): their rows are concatenated, and columns one
            source lacks are None.
        split: the Hub split (ignored with ``path``).
        path: local JSON / JSONL / Parquet file or folder in the Hub dataset's own format; for a
            mix, a dict from dataset name to path.
        template: ``chat`` (default: DeepSeekMath's chain-of-thought instruction, conversational),
            ``text``, ``plain`` or ``raw`` (:mod:`grpo_ext.data.templates`). English datasets get
            the English instruction, CMATH and MGSM-zh the Chinese one.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {list(TEMPLATES)}")
    names = [n.strip().lower() for n in name.split("+")]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset {unknown[0]!r}; known: {sorted(DATASETS)} (mix them with '+')")
    if len(names) > 1 and path is not None and not isinstance(path, dict):
        raise ValueError(f"for a mix like {name!r}, pass path as a dict from dataset name to path")
    parts = []
    for n in names:
        p = path.get(n) if isinstance(path, dict) else path
        if isinstance(path, dict) and p is None:
            raise ValueError(f"path has no entry for {n!r} (it has {sorted(path)})")
        parts.append(_load_one(n, split, p, template))
    if len(parts) == 1:
        return parts[0]
    columns = list(dict.fromkeys(c for part in parts for c in part.column_names))
    aligned = []
    for part in parts:
        for col in columns:
            if col not in part.column_names:  # level / subject / grade: strings where present
                part = part.add_column(col, [None] * len(part), feature=datasets.Value("string"))
        aligned.append(part.select_columns(columns))
    return datasets.concatenate_datasets(aligned)
