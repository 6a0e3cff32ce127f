"""agents/ is grouped by concern (training, algorithms, benchmarking, bridges, the CLI at the top);
the flat module paths of 0.1 keep importing the very same modules."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from agents.compat import MOVED_MODULES

ROOT = Path(__file__).resolve().parents[2]
FLAT_MODULES = {"__init__", "cli", "cli_args", "compat", "config_files", "errors"}


def test_only_the_command_line_and_shared_leaves_stay_flat():
    flat = {p.stem for p in (ROOT / "agents").glob("*.py")}
    assert flat == FLAT_MODULES, "a new agents/ module belongs in training/, benchmarking/ or bridges/"


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_path_imports_the_same_module_object(old):
    new = importlib.import_module(MOVED_MODULES[old])
    assert importlib.import_module(f"agents.{old}") is new
    assert (ROOT / MOVED_MODULES[old].replace(".", "/")).with_suffix(".py").is_file()


def test_the_imports_users_already_write_still_work():
    from agents.bench_stats import iqm
    from agents.config import TrainConfig
    from agents.sb3 import LMActorCriticPolicy
    from agents.trainer import train

    from agents.training.config import TrainConfig as NewTrainConfig

    assert TrainConfig is NewTrainConfig
    assert train.__module__ == "agents.training.trainer"
    assert LMActorCriticPolicy.__module__ == "agents.bridges.sb3"
    assert callable(iqm)


def test_setting_an_attribute_through_an_old_path_is_seen_through_the_new(monkeypatch):
    import agents.trainer

    import agents.training.trainer

    monkeypatch.setattr(agents.trainer, "METRICS_FILE", "elsewhere.jsonl")
    assert agents.training.trainer.METRICS_FILE == "elsewhere.jsonl"


def test_an_old_path_alone_imports_nothing_heavy_before_it_is_asked_for():
    code = ("import sys, agents; assert 'torch' not in sys.modules; import agents.bench_stats; "
            "assert sys.modules['agents.bench_stats'] is sys.modules['agents.benchmarking.bench_stats']")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_an_unknown_old_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("agents.no_such_module")


def test_no_function_level_import_of_our_own_packages_outside_the_command_line():
    """Only agents/cli.py defers imports of rlenv/agents/reward_models modules — for start-up, so that
    `rlenv --help` and input errors answer without torch — and ``if TYPE_CHECKING:`` blocks import
    for annotations only; anywhere else a deferred import would be hiding a cycle."""
    import ast

    ours = ("agents", "rlenv", "reward_models")
    deferred = []
    for path in sorted((ROOT / "agents").rglob("*.py")):
        if path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text())
        allowed = {id(node) for node in tree.body}
        for node in tree.body:  # the bodies of `if TYPE_CHECKING:` at module level
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                allowed |= {id(child) for child in node.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in allowed:
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if module and module.split(".")[0] in ours:
                    deferred.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
    assert not deferred, deferred
