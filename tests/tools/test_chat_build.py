"""The embedded model's chat stage (``tools.chat``): its template, its tokens and its conversations
agree with what the chat envs render, parse and reply, and leave RL headroom."""

from __future__ import annotations

import json
import random
import re

import pytest
from transformers import AutoTokenizer

from rlenv.assets import DEFAULT_MODEL_DIR
from rlenv.chat import make_chat_format
from rlenv.tasks.chat_tasks import multiply
from rlenv.tasks.multiturn_tasks import GuessNumberResponder
from rlenv.tasks.splits import is_heldout_text
from rlenv.tools import Toolbox, parse_hermes_tool_calls
from tools.chat import (
    CALCULATOR_QUESTIONS,
    CHAT_TEMPLATE,
    IM_END,
    IM_START,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    calculator_conversation,
    guess_number_conversation,
    multiply_schema,
    single_turn_conversations,
)
from tools.tokenizer import VOCAB_SIZE


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_DIR))


def test_shipped_tokenizer_is_the_chat_tokenizer(tokenizer):
    assert tokenizer.chat_template == CHAT_TEMPLATE
    new = tokenizer.convert_tokens_to_ids([IM_START, IM_END, TOOL_CALL_OPEN, TOOL_CALL_CLOSE])
    assert new == list(range(VOCAB_SIZE, VOCAB_SIZE + 4)), "chat tokens come after every base id"
    assert {IM_START, IM_END} <= set(tokenizer.all_special_tokens)
    assert TOOL_CALL_OPEN not in tokenizer.all_special_tokens  # kept by decode(skip_special_tokens=True)
    ids = tokenizer(f"{TOOL_CALL_OPEN}x{TOOL_CALL_CLOSE}{IM_END}")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == f"{TOOL_CALL_OPEN}x{TOOL_CALL_CLOSE}"


def test_template_is_accepted_by_the_chat_layer_and_ends_turns_at_im_end(tokenizer):
    chat = make_chat_format(tokenizer, tools=Toolbox([multiply]))
    assert chat.end_of_turn_id == tokenizer.convert_tokens_to_ids(IM_END)
    text = chat.render_text([{"role": "user", "content": "What is 3 times 4?"}], generation_prompt=True)
    assert text == (
        "<|im_start|>system\nTools: multiply(a, b): Multiply two integers.\n"
        'Call one as <tool_call>{"name": ..., "arguments": {...}}</tool_call><|im_end|>\n'
        "<|im_start|>user\nWhat is 3 times 4?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_structured_tool_calls_render_as_the_text_the_model_writes(tokenizer):
    text_form = [
        {
            "role": "assistant",
            "content": '<tool_call>{"name": "multiply", "arguments": {"a": 3, "b": 4}}</tool_call>',
        }
    ]
    structured = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "multiply", "arguments": {"a": 3, "b": 4}}}
            ],
        }
    ]
    render = lambda m: tokenizer.apply_chat_template(m, tokenize=False)  # noqa: E731
    assert render(structured) == render(text_form)


def test_calculator_conversations_use_train_questions_and_what_the_env_would_reply():
    rng = random.Random(0)
    conversations = [calculator_conversation(rng) for _ in range(400)]
    session = Toolbox([multiply]).start_episode("", {})[0]
    right = 0
    for messages in conversations:
        a, b = (int(x) for x in re.findall(r"\d+", messages[0]["content"]))
        assert not is_heldout_text(CALCULATOR_QUESTIONS[0].format(a=a, b=b))
        for k, message in enumerate(messages):
            if message["role"] == "tool":  # exactly the env's reply to the call before it
                calls = parse_hermes_tool_calls(messages[k - 1]["content"])
                assert len(calls) == 1 and session.call(calls[0])[0] == message["content"]
        final = messages[-1]
        assert final["role"] == "assistant" and TOOL_CALL_OPEN not in final["content"]
        right += int(re.findall(r"\d+", final["content"])[-1]) == a * b
    assert 0.25 < right / len(conversations) < 0.6, "right some of the time, not always: RL needs headroom"


def test_guess_number_conversations_follow_the_env_rules():
    rng = random.Random(1)
    for _ in range(300):
        messages = guess_number_conversation(rng)
        high = int(re.findall(r"\d+", messages[0]["content"])[-1])
        guesses = [m["content"] for m in messages if m["role"] == "assistant"]
        assert 1 <= len(guesses) <= 5
        hints = [m["content"] for m in messages[1:] if m["role"] == "user"]
        assert len(hints) == len(guesses) - 1 and set(hints) <= {"higher", "lower", "number?"}
        assert 2 <= high <= 100


def test_guess_number_hints_agree_with_the_responder():
    """Replay each conversation through the env's own responder: same hints, game over where it ends."""
    from rlenv.turns import Turn, TurnHistory

    responder = GuessNumberResponder(feedback=True, turn_penalty=0.1, newline="", max_turns=5)
    rng = random.Random(2)
    for _ in range(200):
        messages = guess_number_conversation(rng)
        guesses = [m["content"] for m in messages if m["role"] == "assistant"]
        hints = [m["content"] for m in messages[1:] if m["role"] == "user"]
        # the secret is the last guess when the game was won; try every candidate otherwise
        high = int(re.findall(r"\d+", messages[0]["content"])[-1])
        consistent = []
        for secret in range(1, high + 1):
            replies = []
            for k in range(len(guesses)):
                turns = tuple(Turn("policy", g, ()) for g in guesses[: k + 1])
                history = TurnHistory(messages[0]["content"], {"answer": secret}, turns, 100)
                reply, _, done = responder(history)
                replies.append((reply, done))
            if (
                [r for r, _ in replies[:-1]] == hints
                and all(not d for _, d in replies[:-1])
                and replies[-1][1]
            ):
                consistent.append(secret)
        assert consistent, messages


def test_single_turn_conversations_are_the_task_requests():
    conversations = single_turn_conversations(90, random.Random(3))
    requests = [c[0]["content"] for c in conversations]
    assert any(r.startswith("Write a sentence with the word ") for r in requests)
    sums = [r for r in requests if re.fullmatch(r"\d+[-+*]\d+=", r)]
    assert sums and not any(is_heldout_text(r) for r in sums)
    assert all([m["role"] for m in c] == ["user", "assistant"] for c in conversations)


def test_multiply_schema_is_the_envs():
    from transformers.utils import get_json_schema

    assert multiply_schema() == get_json_schema(multiply)
    assert json.dumps(multiply_schema())  # serialisable, as the template's tools= needs
