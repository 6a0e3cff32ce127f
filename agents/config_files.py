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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agents.errors import ConfigError

SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def read_config_file(path: str | Path, known: Iterable[str], what: str) -> dict[str, Any]:
    """The settings in ``path`` as ``{field: value}``, refusing a field not in ``known`` (with the close
    match) and a file that is missing, of another type, or malformed (with the parser's message).
    ``what`` names the file in messages (``"config file"``, ``"bench grid file"``)."""
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
    return settings


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
