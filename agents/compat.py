"""The flat module paths of agents 0.1 (``agents.trainer``, ``agents.config``, ``agents.sb3`` ...),
kept working after the package was grouped by concern into :mod:`agents.training`,
:mod:`agents.benchmarking` and :mod:`agents.bridges`.

``import agents.trainer`` gives the very module object ``agents.training.trainer`` (not a copy that
re-exports its names), so attributes set through one path — a test's monkeypatching included — are
seen through the other, and nothing is imported before the old name is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

MOVED_MODULES: dict[str, str] = {
    "advantages": "agents.training.advantages",
    "checkpoint": "agents.training.checkpoint",
    "config": "agents.training.config",
    "distributed": "agents.training.distributed",
    "env_factory": "agents.training.env_factory",
    "evaluation": "agents.training.evaluation",
    "kl": "agents.training.kl",
    "kv_cache": "agents.training.kv_cache",
    "losses": "agents.training.losses",
    "policy": "agents.training.policy",
    "rollout": "agents.training.rollout",
    "run_log": "agents.training.run_log",
    "sampling": "agents.training.sampling",
    "scoring": "agents.training.scoring",
    "trainer": "agents.training.trainer",
    "transcripts": "agents.training.transcripts",
    "bench": "agents.benchmarking.bench",
    "bench_report": "agents.benchmarking.bench_report",
    "bench_stats": "agents.benchmarking.bench_stats",
    "nlpo": "agents.bridges.nlpo",
    "sb3": "agents.bridges.sb3",
    "sb3_forward": "agents.bridges.sb3_forward",
}
"""old name under ``agents`` -> the module's path now"""


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the already-importable new module (importing it if it is not yet)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: importing the target module executed it."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves ``agents.<old name>`` (see :data:`MOVED_MODULES`) to the module's new home."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "agents" or name not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(MOVED_MODULES[name]))


def install() -> None:
    """Put the finder first on ``sys.meta_path``, once (``import agents`` does this): first, so that
    no other finder resolves an old name to a stale file left from an older copy of the package."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
