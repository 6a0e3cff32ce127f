"""Prompt sources: where an environment's episodes get their prompts (core layer: no other rlenv import).

A source yields :class:`Prompt` records: the prompt text plus any extra columns (``answer``,
``references``, ``keyword`` ...) that are handed to the reward model as keyword arguments.

A prompt may also be a conversation (TRL's conversational format): a list of messages
``[{"role": "system" | "user" | "assistant" | "tool", "content": "..."}]``, given as the item itself,
as the ``"prompt"`` value of a record, or as its ``"messages"`` value. Only a chat env (``chat=True``,
:mod:`rlenv.chat`) can render one; its ``text`` is the content of the last user message.

Accepted specs (:func:`as_prompt_source`):

- a sequence of strings or of dicts with a ``"prompt"`` key (sampled uniformly with the env's RNG);
- a path to a ``.txt`` file (one prompt per line) or a ``.jsonl`` file (one JSON object per line
  with a ``"prompt"`` key; other keys become reward-model columns);
- a callable ``f(rng: np.random.Generator) -> str | dict`` (seeded through the env's RNG);
- a ``datasets.Dataset`` with a ``prompt`` (or ``messages``) column (its rows, sampled uniformly);
- any other iterable of strings/dicts (consumed in order; it cannot be reseeded);
- a :class:`PromptSource` instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class PromptSourceError(ValueError):
    """A prompt file or prompt spec is empty or malformed."""


@dataclass(frozen=True)
class Prompt:
    """One prompt and the extra per-example columns its reward model needs.

    ``messages`` is set for a conversational prompt (then ``text`` is its last user message)."""

    text: str
    columns: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[Mapping[str, Any], ...] | None = None


MESSAGE_ROLES = ("system", "user", "assistant", "tool")


def conversation_prompt(messages: Any, columns: Mapping[str, Any], where: str) -> Prompt:
    """A :class:`Prompt` from a list of messages, each ``{"role": ..., "content": str}``."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise PromptSourceError(f"{where}: a conversational prompt is a non-empty list of messages")
    for k, message in enumerate(messages):
        if (not isinstance(message, Mapping) or message.get("role") not in MESSAGE_ROLES
                or not isinstance(message.get("content"), str)):
            raise PromptSourceError(
                f"{where}: message {k} is {message!r}; write each message as "
                '{"role": "system" | "user" | "assistant" | "tool", "content": "..."}'
            )
    users = [m["content"] for m in messages if m["role"] == "user"]
    text = users[-1] if users else messages[-1]["content"]
    return Prompt(text, dict(columns), tuple(dict(m) for m in messages))


def as_prompt(item: Any, where: str = "prompt") -> Prompt:
    """One prompt from a string, a record ``{"prompt": str | messages, <columns>}`` or
    ``{"messages": [...], <columns>}``, or a list of messages."""
    if isinstance(item, Prompt):
        return item
    if isinstance(item, str):
        return Prompt(item)
    if isinstance(item, (list, tuple)):
        return conversation_prompt(item, {}, where)
    if isinstance(item, Mapping):
        if "role" in item and "prompt" not in item:
            raise PromptSourceError(
                f"{where}: a single message is not a prompt; a conversation is a list of messages, so pass "
                "prompts=[[{...}, {...}]] (a list of conversations)"
            )
        if "messages" in item and "prompt" not in item:
            return conversation_prompt(item["messages"], {k: v for k, v in item.items() if k != "messages"}, where)
        text = item.get("prompt")
        if isinstance(text, (list, tuple)):
            return conversation_prompt(text, {k: v for k, v in item.items() if k != "prompt"}, where)
        if not isinstance(text, str):
            raise PromptSourceError(
                f"{where}: expected a 'prompt' key holding a string, got keys {sorted(item)}; "
                'write each record as {"prompt": "...", <extra columns>}'
            )
        return Prompt(text, {k: v for k, v in item.items() if k != "prompt"})
    raise PromptSourceError(
        f"{where}: a prompt must be a str, a dict with a 'prompt' key or a list of messages, got {type(item).__name__}"
    )


class PromptSource:
    """Base class: ``sample(rng)`` returns the next :class:`Prompt`."""

    description = "prompts"

    def sample(self, rng: np.random.Generator) -> Prompt:
        raise NotImplementedError


class ListPrompts(PromptSource):
    """Uniform sampling, with the env's RNG, from a fixed list of prompts."""

    def __init__(self, items: Sequence[Any], description: str = "") -> None:
        where = description or "prompt list"
        if len(items) == 0:
            raise PromptSourceError(f"{where} is empty; give at least one prompt")
        self.prompts = [as_prompt(item, f"{where}[{i}]") for i, item in enumerate(items)]
        self.description = description or f"{len(self.prompts)} prompts"

    def sample(self, rng: np.random.Generator) -> Prompt:
        return self.prompts[int(rng.integers(len(self.prompts)))]

    def __len__(self) -> int:
        return len(self.prompts)


class CallablePrompts(PromptSource):
    """Prompts made on the fly by ``fn(rng) -> str | dict``; seeded through the env's RNG."""

    def __init__(self, fn: Callable[[np.random.Generator], Any], description: str = "") -> None:
        self.fn = fn
        self.description = description or f"generated by {getattr(fn, '__name__', type(fn).__name__)}"

    def sample(self, rng: np.random.Generator) -> Prompt:
        return as_prompt(self.fn(rng), self.description)


class IterablePrompts(PromptSource):
    """Prompts consumed in order from an iterable (the env's seed cannot replay these)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._it: Iterator[Any] = iter(items)
        self._count = 0
        self.description = "prompts from an iterable"

    def sample(self, rng: np.random.Generator) -> Prompt:
        try:
            item = next(self._it)
        except StopIteration:
            raise PromptSourceError(
                f"the prompt iterable ran out after {self._count} prompts; pass a list (sampled with "
                "replacement) or an endless generator"
            ) from None
        self._count += 1
        return as_prompt(item, f"prompt #{self._count} of the iterable")


def read_prompt_file(path: str | Path) -> ListPrompts:
    """Read a ``.txt`` (one prompt per line) or ``.jsonl`` prompt file, naming file and line on errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {str(path)!r} does not exist; check the path")
    lines = path.read_text(encoding="utf-8").splitlines()
    items: list[Any] = []
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PromptSourceError(f"{path}:{lineno}: malformed JSON ({exc.msg}); one JSON object per line") from None
            items.append(as_prompt(record, f"{path}:{lineno}"))
    else:
        items = [line for line in lines if line.strip()]
    if not items:
        raise PromptSourceError(f"prompt file {str(path)!r} has no prompts; add one prompt per line")
    return ListPrompts(items, description=f"{path.name} ({len(items)} prompts)")


def as_prompt_source(spec: Any) -> PromptSource:
    """Turn any accepted prompt spec (see the module docstring) into a :class:`PromptSource`."""
    if isinstance(spec, PromptSource):
        return spec
    if isinstance(spec, (str, Path)):
        if isinstance(spec, str) and "\n" not in spec and not Path(spec).suffix and not Path(spec).exists():
            raise PromptSourceError(
                f"prompts={spec!r} is neither a file nor a list; for a single fixed prompt pass prompts=[{spec!r}]"
            )
        return read_prompt_file(spec)
    if isinstance(spec, Sequence):
        return ListPrompts(spec)
    if hasattr(spec, "column_names") and hasattr(spec, "__len__") and hasattr(spec, "__getitem__"):
        # a datasets.Dataset (TRL's prompt format): its rows, sampled like a list
        return ListPrompts(list(spec), description=f"datasets.Dataset ({len(spec)} rows)")
    if callable(spec):
        return CallablePrompts(spec)
    if isinstance(spec, Iterable):
        return IterablePrompts(spec)
    raise PromptSourceError(
        f"cannot use {type(spec).__name__} as prompts; pass a list, a .txt/.jsonl path, a callable or an iterable"
    )
