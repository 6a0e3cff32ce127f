"""Package attributes that import their module on first access (PEP 562), for light package imports.

``import reward_models``, ``import rlenv`` and ``import agents`` stay cheap — the ``rlenv`` command's
``--help`` and one-line errors must not wait for torch and transformers — while ``from agents import
LMPolicy`` still works: the name's module is imported the first time it is asked for. This module
sits in the lowest package so that all three can use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[name]`` (a module path) on first
    access of ``name`` and keeps the value in the package, so later lookups are ordinary."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
