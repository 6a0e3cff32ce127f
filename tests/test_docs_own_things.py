"""docs/your-own-things.md: every python block runs as written (each in a fresh namespace, in a tmp dir)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "your-own-things.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_its_python_blocks() -> None:
    assert len(python_blocks()) == 4


@pytest.mark.parametrize("index", range(4))
def test_python_block_runs(index, tmp_path, monkeypatch) -> None:
    import torch

    code = python_blocks()[index]
    if "rlenv.serving" in code:
        pytest.importorskip("openenv.core", reason="needs the optional extra: pip install 'rlenv[serve]'")
    monkeypatch.chdir(tmp_path)  # the blocks write runs/... relative to the working directory
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(code, f"{PAGE.name}[{index}]", "exec"), {"__name__": "__main__"})
    finally:
        torch.set_num_threads(before)
