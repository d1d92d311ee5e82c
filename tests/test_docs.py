"""The docs' Python examples run, as written, from a copy of the project's examples/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    "README.md",
    "docs/quickstart.md",
    "docs/embedding.md",
    "docs/custom-backend.md",
    "docs/timeline.md",
]
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks(name: str) -> list[str]:
    return FENCE.findall((ROOT / name).read_text())


CASES = [
    pytest.param(name, i, code, id=f"{name}#{i}")
    for name in DOCS
    for i, code in enumerate(_blocks(name))
    if "broken_history" not in code  # the README's sketch names a variable it leaves to you
]


@pytest.mark.parametrize(("name", "index", "code"), CASES)
def test_the_example_runs(name: str, index: int, code: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, f"{name}#{index}", "exec"), {"__name__": f"doc_{index}"})
    finally:
        os.chdir(cwd)


def test_every_doc_with_python_has_examples_under_test() -> None:
    assert sum(1 for name in DOCS for _ in _blocks(name)) >= 6
