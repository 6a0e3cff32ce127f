"""Registering rlenv's environment ids with Gymnasium, and listing them.

Layer: the top of rlenv (only the package's ``__init__``, the wrappers and the server sit above it).
It imports the environments and builds ids from the tasks' builders; nothing below imports it, so
its table of ids stays private here. :func:`register_responder_env` registers a multi-turn id (it
is also reachable as ``rlenv.multiturn.register_responder_env``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rlenv.env import TextGenEnv
from rlenv.turns import Responder
from rlenv.vector_env import TextGenVectorEnv


@dataclass(frozen=True)
class EnvInfo:
    """What ``rlenv envs`` prints for one id."""

    id: str
    summary: str
    reward: str
    prompts: str
    defaults: dict[str, Any] = field(default_factory=dict)
    for_lm: bool = True
    """False for a toy with its own tiny vocabulary, meant for policies without a language model (SB3)."""
    card: dict[str, Any] = field(default_factory=dict)
    """the task card: training settings (``rlenv train`` field names, e.g. ``{"lr": 1e-5}``) measured to
    suit this task on the embedded model. ``rlenv train``/``bench`` use them where no flag is given, in
    place of the algorithm's own defaults; the run's saved config says where each value came from."""


class EnvArgumentError(ValueError):
    """An env was given a keyword argument it does not take; the message lists those it does."""


def _named_parameters(func: Callable[..., Any]) -> list[str]:
    params = inspect.signature(func).parameters.values()
    return [
        p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    ]


@dataclass(frozen=True)
class TaskEntryPoint:
    """A picklable Gymnasium entry point: ``builder(**kwargs)`` -> TextGenEnv kwargs -> env.

    ``builder`` is a ``"module:function"`` that consumes task options (e.g. ``difficulty``) and
    returns the keyword arguments of :class:`rlenv.TextGenEnv`.
    """

    builder: str
    vector: bool = False
    env_id: str = ""

    def load_builder(self) -> Callable[..., dict[str, Any]]:
        """The task's builder function (its module imported when first asked for)."""
        module, name = self.builder.split(":")
        return getattr(importlib.import_module(module), name)

    def __call__(self, num_envs: int = 1, **kwargs: Any) -> Any:
        builder = self.load_builder()
        # the vector env takes the single env's keywords (render_mode included) and its autoreset mode
        env_options = (["autoreset_mode"] if self.vector else []) + _named_parameters(TextGenEnv.__init__)
        self._check_kwargs(kwargs, _named_parameters(builder), env_options)
        env_kwargs = builder(**kwargs)
        if self.vector:
            return TextGenVectorEnv(num_envs, **env_kwargs)
        return TextGenEnv(**env_kwargs)

    def _check_kwargs(self, kwargs: dict[str, Any], task_options: list[str], env_options: list[str]) -> None:
        """Refuse a misspelt kwarg here, naming the close match and every valid one, instead of a
        ``TypeError`` from deep inside the builder."""
        valid = list(dict.fromkeys([*task_options, *env_options]))
        unknown = [k for k in kwargs if k not in valid]
        if not unknown:
            return
        who = self.env_id or self.builder
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        task = f"task options: {', '.join(task_options)}; " if task_options else ""
        raise EnvArgumentError(
            f"{who} does not accept {', '.join(parts)}; {task}env options: {', '.join(env_options)}"
        )


_INFOS: dict[str, EnvInfo] = {}


def register_task(info: EnvInfo, builder: str) -> None:
    """Register ``info.id`` for ``gym.make`` and ``gym.make_vec`` (native vector entry point)."""
    if info.id not in gym.registry:
        gym.register(
            id=info.id,
            entry_point=TaskEntryPoint(builder, env_id=info.id),
            vector_entry_point=TaskEntryPoint(builder, vector=True, env_id=info.id),
            disable_env_checker=False,
        )
    _INFOS[info.id] = info


def envs() -> list[EnvInfo]:
    """Every registered rlenv id with its one-line summary, reward, prompt source and defaults."""
    return [_INFOS[k] for k in sorted(_INFOS)]


def task_card(env_id: str) -> dict[str, Any]:
    """The training settings ``env_id`` declares (:attr:`EnvInfo.card`); ``{}`` for an id without one."""
    info = _INFOS.get(env_id)
    return dict(info.card) if info is not None else {}


class UnknownEnvError(KeyError):
    """An env id that is not registered; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0]) if self.args else ""


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if registered, else raise :class:`UnknownEnvError` suggesting close matches."""
    if env_id in gym.registry:
        return env_id
    ours = list(_INFOS)
    candidates = list(dict.fromkeys([*ours, *gym.registry]))  # ours are in gym.registry too: list each once
    close = difflib.get_close_matches(env_id, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEnvError(
        f"unknown env id {env_id!r}{hint} (`rlenv envs` lists them: {', '.join(sorted(ours))})"
    )


def has_splits(env_id: str) -> bool:
    """True when the registered task takes ``split=`` (a train and a disjoint held-out prompt split; every
    named LM task does), read from its builder's signature without building an env."""
    check_env_id(env_id)
    entry = gym.spec(env_id).entry_point
    if not isinstance(entry, TaskEntryPoint):
        return False
    return "split" in inspect.signature(entry.load_builder()).parameters


def identity_builder(**kwargs: Any) -> dict[str, Any]:
    """Builder of the generic TextGen env: its kwargs are TextGenEnv's own."""
    return kwargs


Builder = Callable[..., dict[str, Any]]


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


@dataclass(frozen=True)
class ResponderEntryPoint:
    """Gymnasium entry point binding a responder and defaults to ``TextGenEnv`` / the vector env."""

    kwargs: Mapping[str, Any] = field(default_factory=dict)
    vector: bool = False

    def __call__(self, num_envs: int = 1, **overrides: Any) -> Any:
        kwargs = {**self.kwargs, **overrides}
        if self.vector:
            return TextGenVectorEnv(num_envs, **kwargs)
        return TextGenEnv(**kwargs)


def register_responder_env(
    env_id: str, responder: Responder, prompts: Any, *, summary: str = "", **defaults: Any
) -> None:
    """Register ``env_id`` as a multi-turn env for ``gym.make`` and ``gym.make_vec``.

    ``defaults`` are :class:`rlenv.TextGenEnv` keyword arguments (tokenizer, ``stop_strings``,
    ``end_of_turn``, ``max_new_tokens`` ...); ``gym.make(env_id, **kw)`` overrides them.
    """
    kwargs = {"responder": responder, "prompts": prompts, **defaults}
    gym.register(
        id=env_id,
        entry_point=ResponderEntryPoint(kwargs),
        vector_entry_point=ResponderEntryPoint(kwargs, vector=True),
        disable_env_checker=False,
    )
    _INFOS[env_id] = EnvInfo(
        env_id,
        summary or f"multi-turn env answered by {_name(responder)}",
        f"per turn, from {_name(responder)}",
        str(getattr(prompts, "__name__", "prompts=")),
        {k: v for k, v in defaults.items() if isinstance(v, (int, float, str))},
    )
