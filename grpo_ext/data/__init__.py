"""Math datasets in TRL's format: the paper's benchmarks, prompt templates, offline synthetic tasks."""

from . import synthetic
from .loaders import DATASETS, drop_rows_without_gold, has_gold, load_math_dataset
from .templates import COT_INSTRUCTION_EN, COT_INSTRUCTION_ZH, TEMPLATES, format_prompt

__all__ = [
    "COT_INSTRUCTION_EN",
    "COT_INSTRUCTION_ZH",
    "DATASETS",
    "TEMPLATES",
    "drop_rows_without_gold",
    "format_prompt",
    "has_gold",
    "load_math_dataset",
    "synthetic",
]
