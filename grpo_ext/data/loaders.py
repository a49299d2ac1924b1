"""GSM8K, MATH, MATH-500, CMATH and MGSM-zh in the shape GRPOTrainer wants.

Every loader reads the benchmark's own Hub format, from the Hub or from local JSON / JSONL /
Parquet files (``path=``), and returns at least ``prompt`` (TRL format, by ``template``),
``answer`` (the gold final answer) and ``source``; level / subject / grade columns are kept where
the source has them.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Callable

import datasets
from datasets import Dataset

from ..verify.extract import find_answer
from .templates import TEMPLATES, format_prompt

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Spec:
    hub_id: str
    hub_config: str | None
    language: str
    required: tuple[str, ...]
    convert: Callable[[dict], dict]
    splits: tuple[str, ...]


_CALCULATOR_RE = re.compile(r"<<[^<>]*>>")


def _gold(value) -> str | None:
    """A gold answer as a string, or None when the row has none (never the string "None")."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _gsm8k(row: dict) -> dict:
    text = row["answer"] if isinstance(row["answer"], str) else ""
    solution, marker, final = text.rpartition("####")
    return {
        "question": row["question"],
        "solution": _CALCULATOR_RE.sub("", solution if marker else text).strip(),
        "answer": _gold(final.replace(",", "")) if marker else None,  # no "####": no gold, not the whole text
    }


def _boxed_or_none(solution) -> str | None:
    return find_answer(solution, "boxed") if isinstance(solution, str) else None


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
        "answer": _gold(row["answer"]),
        "level": str(row["level"]) if row.get("level") is not None else None,
        "subject": row.get("subject"),
    }


def _cmath(row: dict) -> dict:
    return {"question": row["question"], "answer": _gold(row["golden"]), "grade": str(row.get("grade", ""))}


def _mgsm_zh(row: dict) -> dict:
    value = row["answer_number"]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {"question": row["question"], "answer": _gold(value)}


DATASETS: dict[str, _Spec] = {
    "gsm8k": _Spec("openai/gsm8k", "main", "en", ("question", "answer"), _gsm8k, ("train", "test")),
    "math": _Spec("DigitalLearningGmbH/MATH-lighteval", None, "en", ("problem", "solution"), _math, ("train", "test")),
    "math500": _Spec("HuggingFaceH4/MATH-500", None, "en", ("problem", "solution", "answer"), _math500, ("test",)),
    "cmath": _Spec("weitianwen/cmath", None, "zh", ("question", "golden"), _cmath, ("validation", "test")),
    "mgsm_zh": _Spec("juletxara/mgsm", "zh", "zh", ("question", "answer_number"), _mgsm_zh, ("train", "test")),
}


_FORMATS = (".json", ".jsonl", ".parquet")


def local_files(path: str) -> list[str]:
    """The data files ``path`` names (a file, or a folder's .json / .jsonl / .parquet files), checked
    without reading them: ValueError / FileNotFoundError saying what is wrong and what to pass."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"path={path!r} does not exist")
    if os.path.isfile(path):
        if not path.endswith(_FORMATS):
            raise ValueError(f"path={path!r} is not a .json, .jsonl or .parquet file; convert it to JSON lines "
                             "in the Hub dataset's own format")
        files = [path]
    else:
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(_FORMATS))
        if not files:
            raise ValueError(f"no .json, .jsonl or .parquet files in {path!r}")
    kinds = {"parquet" if f.endswith(".parquet") else "json" for f in files}
    if len(kinds) > 1:
        raise ValueError(f"{path!r} mixes Parquet and JSON files; keep one format per folder")
    for f in files:
        if os.path.getsize(f) == 0:
            raise ValueError(f"{f!r} is empty: it holds no rows")
    return files


def _check_utf8(files: list[str]) -> None:
    for f in files:
        if f.endswith(".parquet"):
            continue
        with open(f, "rb") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ValueError(f"{f!r} line {number} is not UTF-8 text ({err.reason} at byte {err.start} of the "
                                     "line): save the file as UTF-8") from None


def _read_local(path: str) -> Dataset:
    files = local_files(path)
    _check_utf8(files)
    kind = "parquet" if files[0].endswith(".parquet") else "json"
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()  # "Generating train split" for a local file says nothing
    try:
        return datasets.load_dataset(kind, data_files=files, split="train")
    except Exception as err:  # pyarrow's and datasets' own errors do not say which file, or what to do
        if "no data" in str(err) or isinstance(err, StopIteration):
            raise ValueError(f"path={path!r} holds no rows: the split is empty") from None
        raise ValueError(f"cannot read {path!r} as {kind.upper()} rows ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:300] if str(err) else 'no detail'}); each line must be one JSON "
                         "object in the Hub dataset's own format") from None
    finally:
        if not was_disabled:
            enable_progress_bars()


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
    rows = [convert(row) for row in raw]
    missing_gold = sum(row["answer"] is None for row in rows)
    if missing_gold:
        logger.warning("%s%s: %d of %d rows have no usable gold answer; they are kept with answer None and left out "
                       "of training and of every evaluation metric (counted there as no_gold)", name,
                       f" ({path})" if path else "", missing_gold, len(rows))
    return Dataset.from_list(rows)


def has_gold(answer) -> bool:
    """Whether a row's ``answer`` is a usable gold (not None, not empty)."""
    return answer is not None and bool(str(answer).strip())


def drop_rows_without_gold(dataset: Dataset, what: str = "dataset") -> tuple[Dataset, int]:
    """``dataset`` without its rows whose ``answer`` is missing, and how many were left out (logged)."""
    keep = [i for i, a in enumerate(dataset["answer"]) if has_gold(a)]
    dropped = len(dataset) - len(keep)
    if dropped:
        logger.warning("%s: %d of %d rows have no gold answer and are left out", what, dropped, len(dataset))
        dataset = dataset.select(keep)
    return dataset, dropped


def load_math_dataset(name: str, split: str = "train", path: str | dict[str, str] | None = None,
                      template: str = "chat") -> Dataset:
    """A math benchmark as a dataset with ``prompt``, ``answer``, ``source`` (and level/subject/grade).

    A row whose gold is missing (a null CMATH ``golden`` or MGSM ``answer_number``, a GSM8K answer
    without ``####``, a MATH solution without ``\\boxed{}``) keeps ``answer`` None (never the string
    "None"), with a warning that counts them; :func:`drop_rows_without_gold` leaves them out, as
    ``grpo-ext train`` and :func:`grpo_ext.evaluation.evaluate` do.

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
