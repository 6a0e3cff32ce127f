"""Tools for chat envs: typed Python functions (or a class of them), their schemas, parsing and calling.

Layer: chat and tools, beside :mod:`rlenv.chat` (which runs the calls between turns); imports
nothing from rlenv.

A task declares its tools as

- plain functions with type hints and a Google-style docstring (``Args:``), whose JSON schemas come
  from ``transformers.utils.get_json_schema`` and are passed to the chat template's ``tools=``; or
- a class with ``reset(**columns)`` and public methods (the shape of TRL's ``environment_factory``):
  one instance per episode, ``reset`` called as TRL calls it, with the prompt's row (``prompt=`` and
  every column, e.g. a secret ``answer``) when the episode starts; a string it returns is appended to
  the prompt's last message (TRL's initial observation). Every public method but ``reset`` is a tool.

The policy calls a tool by writing a call in its turn, in the model family's format. The default
parser reads the Hermes / Qwen format, one or more blocks of::

    <tool_call>{"name": "multiply", "arguments": {"a": 6, "b": 7}}</tool_call>

and a parser is any ``f(text) -> list[ToolCall]``. A malformed call, an unknown tool or an
exception inside a tool becomes the text of the tool message (starting ``error:``), so the episode
goes on and the policy may try again; counts land in ``info``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One call parsed from the policy's text; ``error`` is set when the call could not be read."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


ToolParser = Callable[[str], list[ToolCall]]

_HERMES_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)


def parse_hermes_tool_calls(text: str) -> list[ToolCall]:
    """Every ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block of ``text``, in order.

    An unclosed last block is still read (the turn may end at the end-of-turn token before
    ``</tool_call>``). A block that is not a JSON object with a string ``name`` and an object of
    ``arguments`` is returned with ``error`` saying what is wrong.
    """
    calls = []
    for block in _HERMES_BLOCK.findall(text):
        try:
            payload = json.loads(block.strip())
        except json.JSONDecodeError as err:
            calls.append(ToolCall("", error=f"malformed tool call, not JSON ({err.msg})"))
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            calls.append(ToolCall("", error='malformed tool call: it needs a "name" string'))
            continue
        arguments = payload.get("arguments", {})
        if isinstance(arguments, str):  # some models write the arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                pass
        if not isinstance(arguments, dict):
            calls.append(
                ToolCall(payload["name"], error='malformed tool call: "arguments" must be an object')
            )
            continue
        calls.append(ToolCall(payload["name"], arguments))
    return calls


def _schema_view(method: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for an unbound method without ``self``, which ``get_json_schema`` can read."""

    def view(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    signature = inspect.signature(method)
    view.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    view.__name__ = method.__name__
    view.__doc__ = method.__doc__
    view.__annotations__ = {k: v for k, v in getattr(method, "__annotations__", {}).items() if k != "self"}
    view.__module__ = method.__module__
    return view


def _schema(fn: Callable[..., Any], owner: str) -> dict[str, Any]:
    # lazy: transformers' utilities cost ~0.7 s to import, which `rlenv envs` and input errors avoid
    from transformers.utils.chat_template_utils import get_json_schema

    try:
        return get_json_schema(fn)
    except (
        Exception
    ) as err:  # transformers raises its own DocstringParsingException / TypeHintParsingException
        raise ValueError(
            f"tool {owner} has no readable schema ({err}); give every argument a type hint and document it in "
            "the docstring's Args: section (transformers.utils.get_json_schema reads both)"
        ) from None


class Toolbox:
    """The tools of a chat env: their schemas (built once) and, per episode, what to call.

    Args:
        tools: a sequence of functions, or a class with ``reset(**columns)`` and public methods.
        parser: ``f(text) -> list[ToolCall]``; default :func:`parse_hermes_tool_calls`.
    """

    def __init__(self, tools: Any, parser: ToolParser | None = None) -> None:
        self.parser = parser or parse_hermes_tool_calls
        if not callable(self.parser):
            raise TypeError(
                f"tool_parser must be a callable f(text) -> list[ToolCall], got {type(parser).__name__}"
            )
        if inspect.isclass(tools):
            self.factory: type | None = tools
            names = [
                n
                for n, member in inspect.getmembers(tools, inspect.isfunction)
                if not n.startswith("_") and n != "reset"
            ]
            if not names:
                raise ValueError(
                    f"tool class {tools.__name__} has no public method besides reset; add one per tool"
                )
            self.names = tuple(names)
            self.schemas = tuple(
                _schema(_schema_view(getattr(tools, n)), f"{tools.__name__}.{n}") for n in names
            )
            self.functions: dict[str, Callable[..., Any]] = {}
        else:
            if callable(tools):
                tools = [tools]
            if not isinstance(tools, Sequence) or not tools or not all(callable(t) for t in tools):
                raise TypeError(
                    "tools must be a list of typed functions with docstrings, or a class with reset(**columns) "
                    f"and public methods (TRL's environment_factory shape); got {tools!r}"
                )
            self.factory = None
            self.functions = {t.__name__: t for t in tools}
            self.names = tuple(self.functions)
            self.schemas = tuple(_schema(t, t.__name__) for t in tools)

    def start_episode(self, prompt: Any, columns: Mapping[str, Any]) -> tuple[ToolSession, str | None]:
        """The tools of one episode and the initial observation: a fresh instance of the class, reset
        with the prompt's row (``prompt`` and its columns); its string return value, if any."""
        if self.factory is None:
            return ToolSession(self.functions), None
        instance = self.factory()
        reset = getattr(instance, "reset", None)
        observation = reset(prompt=prompt, **columns) if callable(reset) else None
        if observation is not None and not isinstance(observation, str):
            raise TypeError(f"{self.factory.__name__}.reset returned {type(observation).__name__}; return None or a "
                            "string (appended to the prompt's last message)")
        return ToolSession({n: getattr(instance, n) for n in self.names}), observation


class ToolSession:
    """Runs one episode's tool calls; a failure becomes the tool message's text, never an exception."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = functions

    def call(self, call: ToolCall) -> tuple[str, bool]:
        """``(content of the tool message, whether the call succeeded)``."""
        if call.error is not None:
            return f"error: {call.error}", False
        fn = self.functions.get(call.name)
        if fn is None:
            return (
                f"error: unknown tool {call.name!r}; the tools are {', '.join(sorted(self.functions))}",
                False,
            )
        try:
            result = fn(**call.arguments)
        except Exception as err:  # a tool's own failure is the policy's to see, not a crash
            return f"error: {call.name} raised {type(err).__name__}: {err}", False
        if isinstance(result, str):
            return result, True
        try:
            return json.dumps(result), True
        except TypeError:
            return str(result), True
