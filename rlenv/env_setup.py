"""Assembling an environment's setup from the user's keyword arguments, layer by layer.

Layer: the Gymnasium environments' own (:mod:`rlenv.env`, :mod:`rlenv.vector_env` call
:func:`make_setup`). It sits above the core and the multi-turn layer and hands each the options it
owns: the core's options (budgets, stop strings, prompt overflow, reward model options) become a
:class:`rlenv.core.CoreOptions`, checked once before anything else, which
:func:`rlenv.core.resolve_setup` turns with the tokenizer, prompts and reward model into the setup;
``responder=``, ``end_of_turn=`` and ``max_turn_tokens=`` become the multi-turn layer's
:class:`rlenv.turns.TurnRules`, plugged into the core as its ``rules``; ``chat=True`` (or any chat
option: ``chat_template``, ``chat_template_kwargs``, ``system_prompt``, ``tools``) makes them the chat
layer's rules instead (:mod:`rlenv.chat`), which extend the multi-turn ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlenv.chat import chat_rules
from rlenv.core import CoreOptions, TextGenSetup, resolve_setup
from rlenv.prompts import ListPrompts, PromptSource, as_prompt_source
from rlenv.tools import ToolParser
from rlenv.turns import check_turn_options, turn_rules


def make_setup(
    tokenizer: Any = None,
    prompts: Any = None,
    reward_model: Any = None,
    *,
    responder: Any = None,
    end_of_turn: str | int | None = None,
    max_turn_tokens: int | None = None,
    chat: bool = False,
    chat_template: str | Path | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
    system_prompt: str | None = None,
    tools: Any = None,
    tool_parser: ToolParser | None = None,
    max_tool_calls: int = 8,
    **core_options: Any,
) -> TextGenSetup:
    """Every :class:`rlenv.TextGenEnv` keyword (but ``render_mode``) -> a validated setup.

    ``core_options`` are the core's (:class:`rlenv.core.CoreOptions`: ``reward_model_args``,
    ``max_prompt_tokens``, ``max_new_tokens``, ``stop_strings``, ``prompt_overflow``,
    ``trust_remote_code``); their names and values are checked first, in one place.
    With a ``responder`` the env is multi-turn (see :mod:`rlenv.turns`): the responder pays the
    rewards, so ``reward_model`` must stay None, and ``stop_strings`` end the policy's *turn*, not
    the episode. Fixed prompts (a list, a file, a ``datasets.Dataset``) that hold a conversation make
    the env a chat env without ``chat=True``. A chat env (:mod:`rlenv.chat`) renders prompts with the chat template; with
    ``tools`` it runs the policy's tool calls and, without a responder, its reward model scores the
    final answer. Cheap checks of every layer run before the tokenizer is loaded.
    """
    options = CoreOptions(**core_options)  # an unknown keyword is a TypeError here, before any work
    source = None if prompts is None else as_prompt_source(prompts)
    chat_options = (chat_template, chat_template_kwargs, system_prompt, tools, tool_parser)
    if chat or any(option is not None for option in chat_options) or has_conversations(source):
        check_turn_options(responder, reward_model, None, None)
        rules = chat_rules(
            chat_template,
            chat_template_kwargs,
            system_prompt,
            tools,
            tool_parser,
            max_tool_calls,
            responder,
            end_of_turn,
            max_turn_tokens,
        )
    else:
        check_turn_options(responder, reward_model, end_of_turn, max_turn_tokens)
        rules = None if responder is None else turn_rules(responder, end_of_turn, max_turn_tokens)
    return resolve_setup(tokenizer, source, reward_model, options=options, rules=rules)


def has_conversations(source: PromptSource | None) -> bool:
    """True when a fixed prompt list holds a conversation (generated prompts are only seen at reset)."""
    return isinstance(source, ListPrompts) and any(p.messages is not None for p in source.prompts)
