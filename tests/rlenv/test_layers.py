"""rlenv's layers (docs/architecture.md): imports only go down, and no import hides inside a function.

Two independent checks of the same arrows:

- statically, by parsing every module with ``ast``: its module-level imports of rlenv modules name
  only modules of its own layer or below, and no function imports an rlenv module (a deferred import
  is how a cycle gets hidden; a lazy import of a heavy or optional *third-party* package is fine);
- dynamically, in a fresh interpreter with the package ``__init__`` files stubbed out (they import
  everything): importing each layer, bottom up, loads no module of a layer above it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rlenv"

# bottom (0) to top; a module may import modules of its own layer or a lower one
LAYERS: dict[str, int] = {
    "rlenv.assets": 0,  # built assets and their build tooling: import no other rlenv module
    "rlenv.core": 1,
    "rlenv.prompts": 1,
    "rlenv.tokenizer": 1,
    "rlenv.render": 1,
    "rlenv.turns": 2,
    "rlenv.chat": 3,
    "rlenv.tools": 3,
    "rlenv.env_setup": 4,
    "rlenv.env": 4,
    "rlenv.vector_env": 4,
    "rlenv.tasks.": 5,
    "rlenv.remote": 5,  # the task builders (rlenv.tasks.builtin, ...)
    "rlenv.registration": 6,
    "rlenv.tasks": 6,  # rlenv/tasks/__init__.py holds the table of ids
    "rlenv.wrappers": 7,
    "rlenv.hf_dataset": 7,
    "rlenv.multiturn": 7,
    "rlenv.serving": 7,
    "rlenv": 7,
}
LAYER_NAMES = ["assets", "core", "turns", "chat and tools", "environments", "tasks", "registration", "top"]

# function-level imports of rlenv modules that are not cycle dodges, with the reason
ALLOWED_DEFERRED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer of ``module``: its own entry, else its longest prefix entry (``"rlenv.tasks."``)."""
    if module in LAYERS:
        return LAYERS[module]
    for key in sorted((k for k in LAYERS if k != "rlenv"), key=len, reverse=True):
        if module.startswith(key if key.endswith(".") else key + "."):
            return LAYERS[key]
    raise AssertionError(f"{module} has no layer; add it to LAYERS here and to docs/architecture.md")


def rlenv_imports(tree: ast.AST, module: str) -> list[tuple[ast.AST, str]]:
    """(node, imported module) for every import of an rlenv module in ``tree``."""
    found = []
    package = (
        module
        if (PACKAGE / Path(*module.split(".")[1:]) / "__init__.py").exists()
        else module.rpartition(".")[0]
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, a.name) for a in node.names if a.name == "rlenv" or a.name.startswith("rlenv.")]
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, name] if name else base)
            if name == "rlenv" or name.startswith("rlenv."):
                found.append((node, name))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def function_level(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a function body."""
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return inside


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_function_level_import_of_an_rlenv_module(path: Path) -> None:
    module = module_name(path)
    tree = ast.parse(path.read_text())
    deferred = function_level(tree)
    bad = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {name} inside a function"
        for node, name in rlenv_imports(tree, module)
        if id(node) in deferred and (module, name) not in ALLOWED_DEFERRED
    ]
    assert not bad, (
        "; ".join(bad) + " (import it at the top of the module; if that makes a cycle, the layering is wrong)"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_only_go_down(path: Path) -> None:
    module = module_name(path)
    here = layer_of(module)
    tree = ast.parse(path.read_text())
    bad = []
    for node, name in rlenv_imports(tree, module):
        if (module, name) in ALLOWED_DEFERRED:
            continue
        there = layer_of(name)
        if there > here:
            bad.append(
                f"{module} ({LAYER_NAMES[here]}) imports {name} ({LAYER_NAMES[there]}) at line {node.lineno}"
            )
    assert not bad, "; ".join(bad)


def test_every_layer_key_names_a_module() -> None:
    names = {module_name(p) for p in MODULES}
    for key in LAYERS:
        assert any(
            n == key.rstrip(".") or n.startswith(key if key.endswith(".") else key + ".") for n in names
        ), key


IMPORT_ORDER = r"""
import importlib, sys, types
from pathlib import Path
root = Path(sys.argv[1])
for name in ("rlenv", "rlenv.tasks"):   # stub the package inits: they import every layer
    stub = types.ModuleType(name)
    stub.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
    sys.modules[name] = stub
layers = [["rlenv.core", "rlenv.prompts", "rlenv.tokenizer", "rlenv.render"], ["rlenv.turns"],
          ["rlenv.chat", "rlenv.tools"], ["rlenv.env_setup", "rlenv.env", "rlenv.vector_env"],
          ["rlenv.tasks.builtin", "rlenv.tasks.multiturn_tasks", "rlenv.remote"], ["rlenv.registration"]]
for k, layer in enumerate(layers):
    for name in layer:
        if root.joinpath(*name.split(".")[1:]).with_suffix(".py").exists():
            importlib.import_module(name)
    above = [m for upper in layers[k + 1:] for m in upper if m in sys.modules]
    assert not above, f"importing {layer} loaded {above}, a layer above it"
print("ok")
"""


def test_importing_a_layer_loads_nothing_above_it() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ORDER, str(PACKAGE)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
