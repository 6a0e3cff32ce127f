"""The asset build is dev tooling: it lives in the checkout's ``tools/``, and the runtime packages
neither ship it nor import it (a ``pip install`` gets the built assets and their paths only)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("rlenv", "agents", "reward_models")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_runtime_module_imports_the_build_tooling():
    offenders = [
        str(p.relative_to(ROOT))
        for package in RUNTIME
        for p in (ROOT / package).rglob("*.py")
        if any(m == "tools" or m.startswith("tools.") for m in imported_modules(p))
    ]
    assert offenders == []


def test_the_runtime_assets_folder_holds_data_and_paths_only():
    code = sorted(p.name for p in (ROOT / "rlenv" / "assets").rglob("*.py"))
    assert code == ["__init__.py"]


def test_the_tools_package_is_not_installed_with_rlenv():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(pattern.startswith("tools") for pattern in include)
    assert {
        "tools/corpus.py",
        "tools/tokenizer.py",
        "tools/model.py",
        "tools/chat.py",
        "tools/reward_model.py",
        "tools/extracts.py",
    } <= {str(p.relative_to(ROOT)) for p in (ROOT / "tools").glob("*.py")}
