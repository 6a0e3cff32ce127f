"""Settings from a file: ``rlenv train --config run.yaml`` and ``rlenv bench grid.toml``.

A file is a flat table of a config dataclass's fields — TOML, YAML or JSON — with the command line's
names in either spelling (``batch_size`` or ``batch-size``). Lists become tuples (the dataclasses'
sequence type); a ``env_args`` table becomes ``key=value`` strings like the flag's. The file's values
are the defaults of the command line, so a flag given beside ``--config`` overrides the file.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from agents.errors import ConfigError

SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def read_config_file(
    path: str | Path, known: Iterable[str], what: str, types: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The settings in ``path`` as ``{field: value}``, refusing a field not in ``known`` (with the close
    match) and a file that is missing, of another type, or malformed (with the parser's message).
    ``what`` names the file in messages (``"config file"``, ``"bench grid file"``). With ``types``
    (field -> annotation, ``typing.get_type_hints`` of the config class) a value of the wrong type
    (``steps = "ten"``) is refused too, naming the type it needs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if path.suffix not in SUFFIXES:
        raise ConfigError(f"{what} {str(path)!r} must be {', '.join(SUFFIXES)} (by its extension)")
    text = path.read_text()
    try:
        data = _parse(text, path.suffix)
    except ValueError as err:  # tomllib, json and yaml errors are ValueErrors or wrapped as one
        raise ConfigError(
            f"{what} {str(path)!r} is not valid {path.suffix.lstrip('.').upper()}: {err}"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {str(path)!r} must hold a table of settings (field: value), got a {type(data).__name__}"
        )
    known = set(known)
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{what} {str(path)!r}: unknown setting {key!r}{hint}; known: {', '.join(sorted(known))}"
            )
        settings[name] = _tuples(value)
        if types is not None and name in types and not _is_a(settings[name], types[name]):
            raise ConfigError(
                f"{what} {str(path)!r}: {key} must be {_type_name(types[name])}, got {value!r}"
                + _yaml_number_hint(value, types[name], path.suffix)
            )
    return settings


def _yaml_number_hint(value: Any, annotation: Any, suffix: str) -> str:
    """YAML 1.1 (PyYAML) reads ``1e-5`` — a number without a dot — as text: say how to write it."""
    if suffix not in (".yaml", ".yml") or not isinstance(value, str) or not _is_a(1.0, annotation):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    written = repr(number)
    if "." not in written:
        written = written.replace("e", ".0e") if "e" in written else written + ".0"
    return f" (YAML reads {value} as text; write it with a dot: {written})"


def _is_a(value: Any, annotation: Any) -> bool:
    """Whether a file's ``value`` (lists already tuples) fits a config field's ``annotation``: the types
    a TOML/YAML/JSON file can hold, in the config dataclasses' annotations (an int is a float; a bool
    is not a number)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return True
    if origin in (Union, UnionType):
        return any(_is_a(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_is_a(v, args[0]) for v in value)
        return len(value) == len(args) and all(_is_a(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        return isinstance(value, dict) and all(
            _is_a(k, args[0]) and _is_a(v, args[1]) for k, v in value.items()
        )
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return not isinstance(annotation, type) or isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    """How a message names a field's type: ``"an integer"``, ``"a list of strings"``, ``"one of 'a', 'b'"``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType):
        return " or ".join(_type_name(arg) for arg in args if arg is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin is tuple:
        inner = _type_name(args[0]) if args else "anything"
        plural = {"an integer": "integers", "a number": "numbers", "a string": "strings"}
        return f"a list of {plural[inner]}" if inner in plural else f"a list, each {inner}"
    if origin is dict:
        return f"a table (each value {_type_name(args[1])})" if args else "a table"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _parse(text: str, suffix: str) -> Any:
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.10
            import tomli as tomllib
        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(str(err)) from None


def _tuples(value: Any) -> Any:
    """Lists (also inside tables) as tuples, the type the configs' sequence fields have."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value
