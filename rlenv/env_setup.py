"""Assembling an environment's setup from the user's keyword arguments, layer by layer.

Layer: the Gymnasium environments' own (:mod:`rlenv.env`, :mod:`rlenv.vector_env` call
:func:`make_setup`). It sits above the core and the multi-turn layer and hands each the options it
owns: the core validates budgets, prompts and the reward model (:func:`rlenv.core.resolve_setup`);
``responder=``, ``end_of_turn=`` and ``max_turn_tokens=`` become the multi-turn layer's
:class:`rlenv.turns.TurnRules`, plugged into the core as its ``rules``; ``chat=True`` (or any chat
option: ``chat_template``, ``chat_template_kwargs``, ``system_prompt``, ``tools``) makes them the chat
layer's rules instead (:mod:`rlenv.chat`), which extend the multi-turn ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlenv.chat import chat_rules
from rlenv.core import PromptOverflow, TextGenSetup, check_budgets, resolve_setup
from rlenv.prompts import ListPrompts, PromptSource, as_prompt_source
from rlenv.tools import ToolParser
from rlenv.turns import check_turn_options, turn_rules


def make_setup(
    tokenizer: Any = None,
    prompts: Any = None,
    reward_model: Any = None,
    *,
    reward_model_args: dict[str, Any] | None = None,
    max_prompt_tokens: int = 32,
    max_new_tokens: int = 32,
    stop_strings: str | Sequence[str] = (),
    prompt_overflow: PromptOverflow = "truncate",
    trust_remote_code: bool = False,
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
) -> TextGenSetup:
    """Every :class:`rlenv.TextGenEnv` keyword (but ``render_mode``) -> a validated setup.

    With a ``responder`` the env is multi-turn (see :mod:`rlenv.turns`): the responder pays the
    rewards, so ``reward_model`` must stay None, and ``stop_strings`` end the policy's *turn*, not
    the episode. Fixed prompts (a list, a file, a ``datasets.Dataset``) that hold a conversation make
    the env a chat env without ``chat=True``. A chat env (:mod:`rlenv.chat`) renders prompts with the chat template; with
    ``tools`` it runs the policy's tool calls and, without a responder, its reward model scores the
    final answer. Cheap checks of every layer run before the tokenizer is loaded.
    """
    check_budgets(max_prompt_tokens, max_new_tokens)
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
    return resolve_setup(
        tokenizer,
        source,
        reward_model,
        reward_model_args=reward_model_args,
        max_prompt_tokens=max_prompt_tokens,
        max_new_tokens=max_new_tokens,
        stop_strings=stop_strings,
        prompt_overflow=prompt_overflow,
        trust_remote_code=trust_remote_code,
        rules=rules,
    )


def has_conversations(source: PromptSource | None) -> bool:
    """True when a fixed prompt list holds a conversation (generated prompts are only seen at reset)."""
    return isinstance(source, ListPrompts) and any(p.messages is not None for p in source.prompts)
