"""Chat envs: conversations rendered by the model's own chat template, token for token.

Layer: chat and tools, above the multi-turn layer (:mod:`rlenv.turns`), which it extends through
its interfaces: :class:`ChatRules` and :class:`ChatTurnRules` are the core's
:class:`~rlenv.core.EpisodeRules` (prompts rendered by the template, the end of turn taken from
it), and :class:`ChatEpisodes` overrides the hooks of :class:`~rlenv.turns.MultiTurnEpisodes`
(``respond``: run tool calls, ask the responder or score the answer; ``reply_ids``: render a
message). Uses :mod:`rlenv.tools`; imports nothing above it.

What a chat env guarantees:

- **Prompts are conversations.** A prompt is a list of messages (TRL's conversational format) or a
  plain text, which becomes one user message; ``system_prompt=`` puts a system message first. It
  is rendered once, with ``add_generation_prompt=True``, the task's ``tools`` and the
  ``chat_template_kwargs``.
- **The end of the assistant's turn comes from the template**: a probe conversation is rendered and
  the token that follows the assistant's text (``<|im_end|>``, ``<|eot_id|>`` ...) ends the policy's
  turn. EOS still ends the episode.
- **Token-exact replies.** A responder (or a tool) answers with a message; the env appends exactly
  the ids the template puts between the end of the assistant's turn and the next generation
  prompt (the difference between rendering the conversation with and without the new message). When
  the policy's tokens are the template's own tokenization of its text, the episode's ids equal
  ``apply_chat_template(conversation, tools=...)`` token for token at every turn.
- **Prefix preservation is checked when the env is built.** If rendering a longer conversation
  rewrites earlier ids (Qwen3's template drops earlier ``<think>`` blocks), the env refuses the
  template: it would train on sequences the model never sees at inference.

The assistant's messages hold the text the policy wrote (tool calls included, as written), so the
rendering of the conversation is the sequence the policy acted in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlenv.core import EpisodeBatch, EpisodeRules, TextGenSetup
from rlenv.prompts import Prompt
from rlenv.tools import Toolbox, ToolParser
from rlenv.turns import MultiTurnEpisodes, TurnHistory, TurnRules, check_responder, end_of_turn_id

if TYPE_CHECKING:  # typing only: transformers' tokenizer classes import torch, which start-up avoids
    from transformers import PreTrainedTokenizerBase

Message = dict[str, Any]
ROLES = ("system", "user", "assistant", "tool")

PLAIN_CHAT_TEMPLATE = (
    "{%- if tools -%}{{ 'Tools:' }}{%- for tool in tools -%}"
    "{%- set f = tool['function'] if 'function' in tool else tool -%}"
    "{{ ' ' + f['name'] + '(' + (f['parameters']['properties'] | list | join(', ')) + '): ' + f['description'] }}"
    "{%- endfor -%}"
    '{{ \'\\nCall one as <tool_call>{"name": ..., "arguments": {...}}</tool_call>\\n\' }}{%- endif -%}'
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}{{ 'Assistant:' + message['content'] + '\\n' }}"
    "{%- else -%}{{ (message['role'] | capitalize) + ': ' + message['content'] + '\\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"
)
"""A chat template built only from plain text and a newline: ``User: ...`` / ``Assistant:...`` lines,
the turn ending at the newline; tools are listed in one line each, ``name(arguments): description``.
For a tokenizer that has no chat template and no special chat tokens (pass it as ``chat_template=``)."""

_PROBE_THINK = "<think>\nchecking\n</think>\n\n"


class ChatTemplateError(ValueError):
    """A chat template that is missing, has no end-of-turn token, or is not prefix-preserving."""


def read_template(chat_template: str | Path | None, tokenizer: PreTrainedTokenizerBase) -> str:
    """The Jinja source: ``chat_template`` (a string or a file), else the tokenizer's own (the
    embedded model's is ChatML with Hermes tool calls, built by ``tools.chat``)."""
    if chat_template is not None:
        if isinstance(chat_template, Path) or ("{" not in chat_template and Path(chat_template).is_file()):
            path = Path(chat_template)
            if not path.is_file():
                raise FileNotFoundError(f"chat_template file {str(path)!r} does not exist")
            return path.read_text(encoding="utf-8")
        if "{" not in chat_template:
            raise ChatTemplateError(
                f"chat_template={chat_template!r} is neither a Jinja template nor an existing file; pass the "
                "template text or the path of a .jinja file"
            )
        return chat_template
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):  # several named templates: the default one
        own = own.get("default")
    if own:
        return own
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    raise ChatTemplateError(
        f"tokenizer {name!r} has no chat template, which a chat env renders its conversations with; pass "
        "chat_template= (a Jinja string or the path of a .jinja file), e.g. rlenv.chat.PLAIN_CHAT_TEMPLATE"
    )


@dataclass(frozen=True)
class ChatFormat:
    """How one env renders conversations: tokenizer, template, tools' schemas, template kwargs."""

    tokenizer: PreTrainedTokenizerBase
    template: str
    tools: tuple[dict[str, Any], ...] = ()
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    end_of_turn_id: int = -1
    prompt_overhead: int = 0
    """ids the template adds around an empty user message (system prompt, tools, role markers)"""

    def render_text(self, messages: Sequence[Message], generation_prompt: bool) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                list(messages),
                tools=list(self.tools) or None,
                chat_template=self.template,
                add_generation_prompt=generation_prompt,
                tokenize=False,
                **self.template_kwargs,
            )
        )

    def render(self, messages: Sequence[Message], generation_prompt: bool) -> list[int]:
        """The ids of ``messages`` (as ``apply_chat_template(..., tokenize=True)`` gives them)."""
        text = self.render_text(messages, generation_prompt)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_messages(self, prompt: Prompt) -> list[Message]:
        """The conversation a prompt opens: its messages (or its text as one user message), after
        the system prompt unless the prompt has its own."""
        messages = (
            [dict(m) for m in prompt.messages]
            if prompt.messages
            else [{"role": "user", "content": prompt.text}]
        )
        if self.system_prompt is not None and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def until_end_of_turn(self, ids: list[int]) -> list[int]:
        """``ids`` cut after their last end-of-turn token (the template may add ids after it)."""
        where = [k for k, x in enumerate(ids) if x == self.end_of_turn_id]
        return ids[: where[-1] + 1] if where else ids

    def between_turns(self, conversation: Sequence[Message], new: Sequence[Message]) -> list[int]:
        """The ids the template puts after the assistant's end of turn (the conversation's last
        message) up to the next generation prompt, when ``new`` messages follow it."""
        before = self.until_end_of_turn(self.render(conversation, generation_prompt=False))
        after = self.render([*conversation, *new], generation_prompt=True)
        return after[len(before) :]


def _first_difference(a: list[int], b: list[int]) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def make_chat_format(
    tokenizer: PreTrainedTokenizerBase,
    chat_template: str | Path | None = None,
    chat_template_kwargs: Mapping[str, Any] | None = None,
    system_prompt: str | None = None,
    tools: Toolbox | None = None,
) -> ChatFormat:
    """Read the template, find its end-of-turn token and check that it is prefix-preserving."""
    if chat_template_kwargs is not None and not isinstance(chat_template_kwargs, Mapping):
        raise TypeError(
            f"chat_template_kwargs must be a dict, e.g. {{'enable_thinking': False}}; got {chat_template_kwargs!r}"
        )
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise TypeError(f"system_prompt must be a string, got {type(system_prompt).__name__}")
    chat = ChatFormat(
        tokenizer,
        read_template(chat_template, tokenizer),
        tools.schemas if tools else (),
        dict(chat_template_kwargs or {}),
        system_prompt,
    )
    opening = chat.prompt_messages(Prompt("What is two plus two?"))
    answer = {"role": "assistant", "content": _PROBE_THINK + "It is four."}
    prompt_ids = chat.render(opening, generation_prompt=True)
    turn_ids = chat.render([*opening, answer], generation_prompt=False)
    _check_prefix(chat, prompt_ids, turn_ids, "the generation prompt", "the assistant's turn")
    chat = replace(
        chat,
        end_of_turn_id=_end_of_turn(chat, turn_ids[len(prompt_ids) :], answer["content"]),
        prompt_overhead=len(chat.render(chat.prompt_messages(Prompt("")), generation_prompt=True)),
    )
    followers = [{"role": "user", "content": "And three plus three?"}]
    if tools is not None:
        followers.append({"role": "tool", "name": tools.names[0], "content": "6"})
    for follower in followers:
        ended = chat.until_end_of_turn(turn_ids)
        next_prompt = chat.render([*opening, answer, follower], generation_prompt=True)
        _check_prefix(
            chat, ended, next_prompt, "the conversation", f"it followed by a {follower['role']} message"
        )
        second = chat.render([*opening, answer, follower, {"role": "assistant", "content": "Six."}], False)
        _check_prefix(chat, next_prompt, second, "the generation prompt", "the next assistant turn")
    return chat


def _check_prefix(chat: ChatFormat, shorter: list[int], longer: list[int], what: str, extended: str) -> None:
    if longer[: len(shorter)] == shorter:
        return
    k = _first_difference(shorter, longer)
    decode = chat.tokenizer.decode
    raise ChatTemplateError(
        f"the chat template is not prefix-preserving: rendering {extended} rewrites the ids of {what} from token "
        f"{k} on ({decode(shorter[k : k + 12])!r} became {decode(longer[k : k + 12])!r}), so the ids the policy "
        "acted in would differ from the episode's conversation rendered whole (templates that drop earlier "
        "<think> blocks, like Qwen3's, do this). Fix: pass chat_template= a prefix-preserving training "
        "template (one that keeps every turn as it was written), or chat_template_kwargs= that make this one "
        "keep earlier turns (e.g. {'enable_thinking': False} where the template honours it)"
    )


def _end_of_turn(chat: ChatFormat, turn: list[int], content: str) -> int:
    """The first token after the assistant's text in the rendering of its turn."""
    decode = chat.tokenizer.decode
    for k in range(1, len(turn) + 1):
        if content.strip() in decode(turn[:k], skip_special_tokens=False) and k < len(turn):
            return int(turn[k])
    raise ChatTemplateError(
        "the chat template puts no token after the assistant's text, so a turn could never end; use a template "
        "that closes the assistant's turn (e.g. with <|im_end|>), or pass end_of_turn= explicitly"
    )


@dataclass(frozen=True)
class ChatRules(EpisodeRules):
    """Single-turn chat: the prompt rendered as a conversation; the assistant's end of turn ends the episode."""

    chat: ChatFormat = None  # type: ignore[assignment]  # always given

    @property
    def prompt_overhead(self) -> int:  # type: ignore[override]
        return self.chat.prompt_overhead

    @property
    def stop_ids(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.chat.end_of_turn_id,)

    @property
    def end_of_turn_id(self) -> int:  # type: ignore[override]
        return self.chat.end_of_turn_id

    def prompt_ids(self, tokenizer: PreTrainedTokenizerBase, prompt: Prompt) -> list[int]:
        return self.chat.render(self.chat.prompt_messages(prompt), generation_prompt=True)

    def make_episodes(self, setup: TextGenSetup, n: int) -> EpisodeBatch:
        return ChatSingleTurnEpisodes(setup, n)


def reward_inputs_for(
    rm: Any, prompts: Sequence[Prompt | None], messages: list[list[Message]], answers: list[str]
) -> tuple[list[Any], list[Any]]:
    """What a reward model gets: texts, or (``rm.conversational = True``) TRL's conversational lists.
    (Every scored episode has started, so its prompt is set.)"""
    if getattr(rm, "conversational", False):
        return [list(m) for m in messages], [[{"role": "assistant", "content": a}] for a in answers]
    return [p.text if p is not None else "" for p in prompts], answers


class ChatSingleTurnEpisodes(EpisodeBatch):
    """Single-turn episodes of a chat env: the completion is the assistant's text, special tokens stripped."""

    def completion(self, i: int) -> str:
        ids = self.input_ids[i, self.P : self.P + self.num_generated[i]]
        eot = self.setup.rules.end_of_turn_id
        return str(self.setup.tokenizer.decode(ids[ids != eot], skip_special_tokens=True))

    def conversation(self, i: int) -> list[Message]:
        """The prompt's messages and the assistant's reply so far."""
        rules: ChatRules = self.setup.rules  # type: ignore[assignment]
        prompt = self.prompts[i]
        if prompt is None:
            return []
        messages = rules.chat.prompt_messages(prompt)
        return (
            [*messages, {"role": "assistant", "content": self.completion(i)}]
            if self.num_generated[i]
            else messages
        )

    def text(self, i: int) -> str:
        """The conversation so far, one role-marked line per message (``env.render()``)."""
        return role_marked(self.conversation(i))

    def reward_inputs(self, rows: Sequence[int]) -> tuple[list[Any], list[Any]]:
        prompts = [self.prompts[i] for i in rows]
        return reward_inputs_for(
            self.setup.reward_model,
            prompts,
            [self.conversation(i)[:-1] if self.num_generated[i] else self.conversation(i) for i in rows],
            [self.completion(i) for i in rows],
        )


@dataclass(frozen=True)
class ChatHistory(TurnHistory):
    """A :class:`~rlenv.turns.TurnHistory` with the conversation so far (the policy's turn last)."""

    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class ChatTurnRules(TurnRules):
    """Multi-turn chat: replies are messages rendered by the template, tool calls run between turns.

    With a ``responder``, it pays the rewards; without one (a tool task), the reward model scores the
    assistant's final answer, the first turn without a tool call.
    """

    chat: ChatFormat = None  # type: ignore[assignment]  # always given
    toolbox: Toolbox | None = None
    max_tool_calls: int = 8

    @property
    def scored_by_reward_model(self) -> bool:  # type: ignore[override]
        return self.responder is None

    @property
    def prompt_overhead(self) -> int:  # type: ignore[override]
        return self.chat.prompt_overhead

    def prompt_ids(self, tokenizer: PreTrainedTokenizerBase, prompt: Prompt) -> list[int]:
        return self.chat.render(self.chat.prompt_messages(prompt), generation_prompt=True)

    def make_episodes(self, setup: TextGenSetup, n: int) -> EpisodeBatch:
        return ChatEpisodes(setup, n)


class ChatEpisodes(MultiTurnEpisodes):
    """:class:`~rlenv.turns.MultiTurnEpisodes` whose replies are chat messages, tool calls included."""

    def __init__(self, setup: TextGenSetup, n: int) -> None:
        super().__init__(setup, n)
        self.rules: ChatTurnRules = setup.rules  # type: ignore[assignment]
        self.messages: list[list[Message]] = [[] for _ in range(n)]
        self.sessions: list[Any] = [None] * n
        self.tool_calls = np.zeros(n, dtype=np.int64)  # (N,) calls run this episode
        self.tool_errors = np.zeros(n, dtype=np.int64)  # (N,) calls that became an error message
        self.final_infos: list[dict[str, Any]] = [{} for _ in range(n)]

    def start(self, i: int, prompt: Prompt) -> None:
        if self.rules.toolbox is not None:
            self.sessions[i], observation = self.rules.toolbox.start_episode(
                [dict(m) for m in prompt.messages] if prompt.messages else prompt.text, prompt.columns
            )
            if observation:  # TRL's initial observation: appended to the prompt's last message
                messages = self.rules.chat.prompt_messages(prompt)
                messages[-1] = {**messages[-1], "content": messages[-1]["content"] + observation}
                prompt = Prompt(prompt.text, prompt.columns, tuple(messages))
        super().start(i, prompt)
        self.messages[i] = self.rules.chat.prompt_messages(prompt)
        self.tool_calls[i] = self.tool_errors[i] = 0
        self.final_infos[i] = {}

    def respond(self, i: int, history: TurnHistory) -> tuple[Any, float, bool]:
        turn = self.turns[i][-1]
        content = str(
            self.setup.tokenizer.decode(
                [x for x in turn.ids if x != self.rules.chat.end_of_turn_id], skip_special_tokens=True
            )
        )
        self.messages[i].append({"role": "assistant", "content": content})
        episode_over = turn.ids[-1:] == (self.eos_id,)  # EOS ends a chat episode, not just the turn
        toolbox = self.rules.toolbox
        if toolbox is not None and not episode_over:
            calls = toolbox.parser(content)
            if calls and self.tool_calls[i] + len(calls) <= self.rules.max_tool_calls:
                replies = []
                for call in calls:
                    result, ok = self.sessions[i].call(call)
                    self.tool_calls[i] += 1
                    self.tool_errors[i] += not ok
                    replies.append({"role": "tool", "name": call.name, "content": result})
                return replies, 0.0, False
        if self.rules.responder is None:
            rewards, infos = self.score([i])
            self.final_infos[i] = infos[0]
            return [], float(rewards[0]), True
        chat_history = ChatHistory(
            history.prompt,
            history.columns,
            history.turns,
            history.budget_left,
            final_turn=history.final_turn or episode_over,
            messages=tuple(dict(m) for m in self.messages[i]),
        )
        reply, reward, done = check_chat_response(self.rules.responder, self.rules.responder(chat_history))
        return reply, reward, done or episode_over

    def reply_ids(self, i: int, reply: Any, done: bool) -> tuple[list[int], str]:
        if done:
            return [], ""
        if not isinstance(reply, list) or (reply and isinstance(reply[0], (int, np.integer))):
            return super().reply_ids(i, reply, done)  # raw ids: the responder's own business
        ids = self.rules.chat.between_turns(self.messages[i], reply)
        if self.turns[i][-1].ids[-1:] != (self.rules.chat.end_of_turn_id,):
            ids = [self.rules.chat.end_of_turn_id, *ids]  # the turn was cut: close it as the template would
        self.messages[i].extend(reply)
        return ids, str(
            self.setup.tokenizer.decode(ids, skip_special_tokens=False)
        )  # as appended, markers and all

    def reward_inputs(self, rows: Sequence[int]) -> tuple[list[Any], list[Any]]:
        prompts = [self.prompts[i] for i in rows]
        answers = [
            self.messages[i][-1]["content"] if self.messages[i][-1]["role"] == "assistant" else ""
            for i in rows
        ]
        return reward_inputs_for(self.setup.reward_model, prompts, [self.messages[i] for i in rows], answers)

    def episode_end_info(self, i: int) -> dict[str, Any]:
        info = super().episode_end_info(i)
        info.update(
            messages=[dict(m) for m in self.messages[i]],
            tool_calls=int(self.tool_calls[i]),
            tool_errors=int(self.tool_errors[i]),
        )
        for key, value in self.final_infos[i].items():
            info.setdefault(key, value)
        return info

    def conversation(self, i: int) -> list[Message]:
        """The messages so far, the assistant's unfinished turn last."""
        messages = [dict(m) for m in self.messages[i]]
        ongoing = self._turn_ids(i)
        if len(ongoing) and not self.done[i]:
            messages.append(
                {
                    "role": "assistant",
                    "content": self.setup.tokenizer.decode(ongoing, skip_special_tokens=True),
                }
            )
        return messages

    def text(self, i: int) -> str:
        """The conversation so far, one role-marked line per message (``env.render()``)."""
        return role_marked(self.conversation(i))


def role_marked(messages: Sequence[Message]) -> str:
    """``[role] content`` lines, the way ``env.render()`` shows a chat."""
    return "\n".join(f"[{m['role']}] {m['content']}" for m in messages)


def check_chat_response(responder: Any, response: Any) -> tuple[Any, float, bool]:
    """Validate a chat responder's ``(reply, reward, done)``; a reply is a message, a list of messages,
    a string (the user's next message) or a list of token ids."""
    name = getattr(responder, "__name__", type(responder).__name__)
    if not isinstance(response, (tuple, list)) or len(response) != 3:
        raise TypeError(f"responder {name} must return (reply, reward, done), got {response!r}")
    reply, reward, done = response
    if isinstance(reply, str):
        reply = [{"role": "user", "content": reply}] if reply else []
    elif isinstance(reply, Mapping):
        reply = [reply]
    if not isinstance(reply, (list, tuple)):
        raise TypeError(
            f"responder {name}'s reply must be a message dict, a list of them, a str or token ids; "
            f"got {type(reply).__name__}"
        )
    reply = list(reply)
    if reply and not all(isinstance(x, (int, np.integer)) for x in reply):
        for message in reply:
            if (
                not isinstance(message, Mapping)
                or message.get("role") not in ("user", "tool", "system")
                or not isinstance(message.get("content"), str)
            ):
                raise TypeError(
                    f"responder {name} replied {message!r}; a message is {{'role': 'user' | 'tool', "
                    "'content': str}"
                )
        reply = [dict(m) for m in reply]
    if (
        isinstance(reward, bool)
        or not isinstance(reward, (int, float, np.integer, np.floating))
        or not math.isfinite(reward)
    ):
        raise ValueError(f"responder {name} returned reward {reward!r}; it must be a finite number")
    if not isinstance(done, (bool, np.bool_)):
        raise TypeError(f"responder {name} returned done={done!r}; it must be a bool")
    return reply, float(reward), bool(done)


def chat_rules(
    chat_template: str | Path | None = None,
    chat_template_kwargs: Mapping[str, Any] | None = None,
    system_prompt: str | None = None,
    tools: Any = None,
    tool_parser: ToolParser | None = None,
    max_tool_calls: int = 8,
    responder: Any = None,
    end_of_turn: str | int | None = None,
    max_turn_tokens: int | None = None,
) -> Any:
    """What :func:`rlenv.core.resolve_setup` takes as ``rules=``: the chat rules once the tokenizer is
    loaded (single-turn :class:`ChatRules` unless there is a responder or tools)."""
    if responder is None and tools is None and max_turn_tokens is not None:
        raise ValueError("max_turn_tokens applies to multi-turn envs; pass responder= or tools= too")
    toolbox = None if tools is None else Toolbox(tools, tool_parser)
    if tool_parser is not None and tools is None:
        raise ValueError("tool_parser= reads tool calls; pass tools= too")
    if int(max_tool_calls) < 1:
        raise ValueError(f"max_tool_calls must be >= 1, got {max_tool_calls}")
    if responder is not None:
        check_responder(responder, max_turn_tokens)

    def build(tokenizer: PreTrainedTokenizerBase) -> EpisodeRules:
        chat = make_chat_format(tokenizer, chat_template, chat_template_kwargs, system_prompt, toolbox)
        if end_of_turn is not None:  # the user's word over the template's
            chat = replace(chat, end_of_turn_id=end_of_turn_id(tokenizer, end_of_turn))
        if responder is None and toolbox is None:
            return ChatRules(chat=chat)
        return ChatTurnRules(
            responder=responder,
            end_of_turn_id=chat.end_of_turn_id,
            max_turn_tokens=None if max_turn_tokens is None else int(max_turn_tokens),
            chat=chat,
            toolbox=toolbox,
            max_tool_calls=int(max_tool_calls),
        )

    return build


__all__ = [
    "PLAIN_CHAT_TEMPLATE",
    "ChatEpisodes",
    "ChatFormat",
    "ChatHistory",
    "ChatRules",
    "ChatTemplateError",
    "ChatTurnRules",
    "chat_rules",
    "make_chat_format",
]
