"""Reward functions named by import path: ``"my_module:my_reward"`` or ``"path/to/rewards.py:my_reward"``.

This is how a user's own reward reaches the command line (``--reward-funcs``), a config file or a
saved run: a string that names the function, which a resumed run or a benchmark worker imports
again. :func:`reward_models.make` accepts these strings wherever it accepts a registry name.

- ``module:attr`` imports ``module`` the usual way; when that fails, the current directory is tried
  too (``python script.py`` puts the script's directory on the path, the ``rlenv`` console script
  does not), so a ``rewards.py`` beside you is found either way.
- ``file.py:attr`` runs that file as a module (once per absolute path) and takes ``attr`` from it.
- ``attr`` may be dotted (``module:Class.from_pretrained``).

The target may be a reward function (it takes ``completions``) or a factory (a class, or a function
that builds one from options); :func:`is_reward_function` tells them apart.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from reward_models.base import RewardModelError

FORM = "MODULE:FUNCTION or path/to/file.py:FUNCTION"


def is_import_path(name: str) -> bool:
    """Whether a reward-model name is an import path (registry names never contain ``:``)."""
    return isinstance(name, str) and ":" in name


def is_reward_function(obj: Any) -> bool:
    """A reward function scores texts (its signature names ``completions``, as TRL's do); anything
    else callable — a class, a function of options — is a factory that builds one."""
    if isinstance(obj, type) or not callable(obj):
        return False
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return "completions" in params


def load_object(spec: str) -> Any:
    """The object ``spec`` (``module:attr`` or ``file.py:attr``) names.

    Raises :class:`RewardModelError` naming what is missing — the file, the module or the attribute —
    and how to fix it.
    """
    location, sep, attr = spec.rpartition(":")
    if not sep or not location or not attr:
        raise RewardModelError(f"reward function {spec!r} is not an import path; write it as {FORM}")
    module = _load_file(location, spec) if location.endswith(".py") else _import_module(location, spec)
    obj: Any = module
    for i, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            owner = location if i == 0 else f"{location}:{'.'.join(attr.split('.')[:i])}"
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise RewardModelError(
                f"{owner} has no {part!r} (from {spec!r}); {hint}it defines: {', '.join(names) or 'nothing callable'}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise RewardModelError(
            f"{spec!r} names a {type(obj).__name__}, not a function; point it at a reward function"
        )
    return obj


def _load_file(location: str, spec: str) -> ModuleType:
    path = Path(location).expanduser().resolve()
    if not path.is_file():
        looked = f", looked at {path}" if str(path) != location else ""
        raise RewardModelError(
            f"reward function file {location!r} does not exist (from {spec!r}{looked}); give a path relative to "
            "the current directory or an absolute one"
        )
    # one module per absolute path: a file loaded twice gives the same functions (and their state)
    name = f"_rlenv_rewards_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise RewardModelError(f"cannot load {path} as a Python module (from {spec!r})")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise RewardModelError(f"running {path} (from {spec!r}) raised {type(err).__name__}: {err}") from err
    return module


def _import_module(location: str, spec: str) -> ModuleType:
    module = _try_import(location, spec)
    cwd = os.getcwd()
    if (
        module is None and cwd not in sys.path
    ):  # the console script does not put the current directory on the path
        sys.path.append(cwd)
        try:
            module = _try_import(location, spec)
        finally:
            sys.path.remove(cwd)
    if module is None:
        raise RewardModelError(
            f"cannot import module {location!r} (from {spec!r}): no such module on the Python path or in the current "
            f"directory; add its directory to PYTHONPATH, or name the file: path/to/{location.split('.')[-1]}.py:"
            f"{spec.rpartition(':')[2]}"
        )
    return module


def _try_import(location: str, spec: str) -> ModuleType | None:
    """The module, or None when ``location`` itself is not found (an error inside it is re-raised)."""
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as err:
        if _missing_is(err, location):
            return None
        raise RewardModelError(f"importing {location!r} (from {spec!r}) failed: {err}") from err
    except Exception as err:
        raise RewardModelError(
            f"importing {location!r} (from {spec!r}) raised {type(err).__name__}: {err}"
        ) from err


def _missing_is(err: ModuleNotFoundError, location: str) -> bool:
    """Whether ``err`` says ``location`` itself (or a parent package) is missing, not one of its imports."""
    return err.name is not None and (location == err.name or location.startswith(err.name + "."))
