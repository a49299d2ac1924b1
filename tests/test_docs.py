"""The docs build strictly, every Python snippet in them runs, every public name is documented."""

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import grpo_ext

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"```python\n(.*?)```", re.S)
INCLUDE = re.compile(r'--8<-- "([^"]+)"')


def python_blocks():
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        for i, block in enumerate(FENCE.findall(page.read_text(encoding="utf-8"))):
            blocks.append(pytest.param(block, id=f"{page.relative_to(DOCS)}#{i}"))
    return blocks


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=str(ROOT),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_docs_build_strictly(site):
    assert (site / "index.html").exists() and (site / "recipes" / "paper-outcome" / "index.html").exists()


@pytest.mark.parametrize("block", python_blocks())
def test_docs_snippet_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    included = INCLUDE.findall(block)
    if included:
        for path in included:
            runpy.run_path(str(ROOT / path), run_name="__main__")
    else:
        exec(compile(block, "<docs snippet>", "exec"), {"__name__": "__main__"})


def test_every_public_name_has_a_docstring():
    missing = [n for n in grpo_ext.__all__ if not (getattr(grpo_ext, n).__doc__ or "").strip()]
    assert missing == []


def test_every_public_name_renders_on_the_api_page(site):
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    # mkdocstrings gives each documented object a heading whose id is its dotted path
    absent = [n for n in grpo_ext.__all__ if not re.search(rf'id="grpo_ext(\.\w+)*\.{n}"', html)]
    assert absent == []
