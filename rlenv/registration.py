"""Registering rlenv's environment ids with Gymnasium, and listing them."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvInfo:
    """What ``rlenv envs`` prints for one id."""

    id: str
    summary: str
    reward: str
    prompts: str
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskEntryPoint:
    """A picklable Gymnasium entry point: ``builder(**kwargs)`` -> TextGenEnv kwargs -> env.

    ``builder`` is a ``"module:function"`` that consumes task options (e.g. ``difficulty``) and
    returns the keyword arguments of :class:`rlenv.TextGenEnv`.
    """

    builder: str
    vector: bool = False

    def __call__(self, num_envs: int = 1, **kwargs: Any) -> Any:
        module, name = self.builder.split(":")
        env_kwargs = getattr(importlib.import_module(module), name)(**kwargs)
        if self.vector:
            from rlenv.vector_env import TextGenVectorEnv

            return TextGenVectorEnv(num_envs, **env_kwargs)
        from rlenv.env import TextGenEnv

        return TextGenEnv(**env_kwargs)


_INFOS: dict[str, EnvInfo] = {}


def register_task(info: EnvInfo, builder: str) -> None:
    """Register ``info.id`` for ``gym.make`` and ``gym.make_vec`` (native vector entry point)."""
    if info.id not in gym.registry:
        gym.register(
            id=info.id,
            entry_point=TaskEntryPoint(builder),
            vector_entry_point=TaskEntryPoint(builder, vector=True),
            disable_env_checker=False,
        )
    _INFOS[info.id] = info


def envs() -> list[EnvInfo]:
    """Every registered rlenv id with its one-line summary, reward, prompt source and defaults."""
    return [_INFOS[k] for k in sorted(_INFOS)]


class UnknownEnvError(KeyError):
    """An env id that is not registered; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0]) if self.args else ""


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if registered, else raise :class:`UnknownEnvError` suggesting close matches."""
    if env_id in gym.registry:
        return env_id
    ours = list(_INFOS)
    close = difflib.get_close_matches(env_id, ours + list(gym.registry), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEnvError(f"unknown env id {env_id!r}{hint} (`rlenv envs` lists them: {', '.join(sorted(ours))})")


def identity_builder(**kwargs: Any) -> dict[str, Any]:
    """Builder of the generic TextGen env: its kwargs are TextGenEnv's own."""
    return kwargs


Builder = Callable[..., dict[str, Any]]
