"""Chat envs: conversations rendered by the template, token-exact replies, the prefix check, tools."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers.utils import get_json_schema

from rlenv import TextGenEnv, TextGenVectorEnv
from rlenv.chat import ChatTemplateError
from rlenv.prompts import PromptSourceError
from tests.rlenv.chat_helpers import (
    THINK_STRIPPING_TEMPLATE,
    chatml_tokenizer,
    llama3_tokenizer,
    multiply,
)

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 6 times 7?"}]
CALL = '<tool_call>{"name": "multiply", "arguments": {"a": 6, "b": 7}}</tool_call>'


def render(tok, messages, tools=None, generation_prompt=False) -> list[int]:
    """The test's own rendering: transformers' apply_chat_template, tokenized by it."""
    return list(
        tok.apply_chat_template(
            messages, tools=tools, add_generation_prompt=generation_prompt, tokenize=True, return_dict=False
        )
    )


def cut_after_last(ids: list[int], token: int) -> list[int]:
    return ids[: max(k for k, x in enumerate(ids) if x == token) + 1]


def asked_twice(history):
    """Responder: asks 'Are you sure?' after the first answer, ends the episode after the second."""
    if history.num_policy_turns - 1 < 2:  # the tool call turn and the first answer
        return {"role": "user", "content": "Are you sure?"}, 0.5, False
    return "", 1.0 if "42" in history.last_text else 0.0, True


def play(env, tok, conversation_after_prompt, tools):
    """Write each assistant message of the script as the template's own ids; return the last step."""
    obs, _ = env.reset(options={"prompt": QUESTION})
    conversation = list(QUESTION)
    out = None
    for message in conversation_after_prompt:
        if message["role"] != "assistant":
            conversation.append(message)
            continue
        before = render(tok, conversation, tools, generation_prompt=True)
        after = render(tok, [*conversation, message], tools)
        eot = env.unwrapped.setup.end_of_turn_id
        turn = cut_after_last(after, eot)[len(before) :]
        assert after[: len(before)] == before
        for token in turn:
            out = env.step(token)
        conversation.append(message)
    return out, conversation


@pytest.mark.parametrize("make_tok", [chatml_tokenizer, llama3_tokenizer], ids=["chatml", "llama3"])
def test_three_turn_episode_with_a_tool_call_equals_the_template_token_for_token(make_tok):
    tok = make_tok()
    schemas = [get_json_schema(multiply)]
    env = TextGenEnv(
        tok,
        prompts=[QUESTION],
        responder=asked_twice,
        tools=[multiply],
        max_prompt_tokens=32,
        max_new_tokens=160,
    )
    eot = env.unwrapped.setup.end_of_turn_id
    assert tok.convert_ids_to_tokens([eot]) == [
        {"chatml": "<|im_end|>", "llama3": "<|eot_id|>"}[make_tok.__name__[:6]]
    ]
    script = [
        {"role": "assistant", "content": CALL},
        {"role": "tool", "name": "multiply", "content": "42"},
        {"role": "assistant", "content": "The answer is 42."},
        {"role": "user", "content": "Are you sure?"},
        {"role": "assistant", "content": "Yes, 42."},
    ]
    (obs, reward, terminated, truncated, info), conversation = play(env, tok, script, schemas)
    assert terminated and not truncated and reward == 1.0
    assert info["messages"] == conversation and info["tool_calls"] == 1 and info["tool_errors"] == 0
    ids = obs["input_ids"][obs["attention_mask"] == 1].tolist()
    assert ids == cut_after_last(render(tok, conversation, schemas), eot)  # token for token
    # policy_mask is 1 exactly on the assistant's tokens: rebuild them from the template, turn by turn
    expected = []
    for k, message in enumerate(conversation):
        if message["role"] == "assistant":
            before = render(tok, conversation[:k], schemas, generation_prompt=True)
            expected += cut_after_last(render(tok, conversation[: k + 1], schemas), eot)[len(before) :]
    assert obs["input_ids"][obs["policy_mask"] == 1].tolist() == expected
    assert obs["policy_mask"][obs["attention_mask"] == 0].sum() == 0


def test_rewards_per_turn_and_the_env_tokens_of_each_step(tmp_path):
    tok = chatml_tokenizer()
    env = TextGenEnv(tok, prompts=[QUESTION], responder=asked_twice, tools=[multiply], max_new_tokens=160)
    env.reset(options={"prompt": QUESTION})
    schemas = [get_json_schema(multiply)]
    call_ids = cut_after_last(
        render(tok, [*QUESTION, {"role": "assistant", "content": CALL}], schemas),
        env.unwrapped.setup.end_of_turn_id,
    )[len(render(tok, QUESTION, schemas, True)) :]
    for token in call_ids[:-1]:
        assert env.step(token)[4] == {}
    obs, reward, terminated, truncated, info = env.step(call_ids[-1])
    assert reward == 0.0 and not terminated and info["reply"].strip().startswith("<|im_start|>user")
    conversation = [
        *QUESTION,
        {"role": "assistant", "content": CALL},
        {"role": "tool", "name": "multiply", "content": "42"},
    ]
    ended = cut_after_last(render(tok, conversation[:-1], schemas), env.unwrapped.setup.end_of_turn_id)
    assert list(info["env_ids"]) == render(tok, conversation, schemas, True)[len(ended) :]


def test_think_stripping_template_is_refused_naming_the_fix():
    with pytest.raises(ChatTemplateError, match="not prefix-preserving") as err:
        TextGenEnv(chatml_tokenizer(THINK_STRIPPING_TEMPLATE), prompts=[QUESTION], chat=True)
    assert "chat_template=" in str(err.value) and "chat_template_kwargs" in str(err.value)
    assert "<think>" in str(err.value)


def test_a_tokenizer_without_a_chat_template_is_told_to_pass_one():
    with pytest.raises(ChatTemplateError, match="chat_template="):
        TextGenEnv(chatml_tokenizer(None), prompts=["hi"], chat=True)


def test_a_template_from_a_file_and_an_explicit_end_of_turn(tmp_path):
    from tests.rlenv.chat_helpers import CHATML_TEMPLATE

    path = tmp_path / "chatml.jinja"
    path.write_text(CHATML_TEMPLATE)
    tok = chatml_tokenizer(None)
    env = TextGenEnv(
        tok,
        prompts=["hi"],
        chat_template=str(path),
        reward_model=lambda completions, **kw: [0.0] * len(completions),
    )
    assert tok.convert_ids_to_tokens([env.setup.end_of_turn_id]) == ["<|im_end|>"]
    env = TextGenEnv(
        tok,
        prompts=["hi"],
        chat_template=CHATML_TEMPLATE,
        end_of_turn="<|endoftext|>",
        reward_model=lambda completions, **kw: [0.0] * len(completions),
    )
    assert env.setup.end_of_turn_id == tok.eos_token_id


def test_conversational_prompts_system_prompt_and_conversational_reward_functions(tmp_path):
    tok = chatml_tokenizer()
    seen = {}

    def judge(prompts, completions, **kwargs):
        seen.update(prompts=prompts, completions=completions)
        return [1.0] * len(completions)

    judge.conversational = True
    data = tmp_path / "chats.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "What is 6 times 7?"}], "answer": 42}) + "\n"
    )
    env = TextGenEnv(tok, prompts=str(data), reward_model=judge, system_prompt="Be brief.", max_new_tokens=16)
    obs, info = env.reset(seed=0)
    assert info["prompt"] == "What is 6 times 7?"
    prompt_ids = obs["input_ids"][obs["attention_mask"] == 1].tolist()
    assert prompt_ids == render(tok, QUESTION, generation_prompt=True)  # system prompt first
    answer = cut_after_last(
        render(tok, [*QUESTION, {"role": "assistant", "content": "42"}]), env.setup.end_of_turn_id
    )[len(prompt_ids) :]
    for token in answer:
        obs, reward, terminated, truncated, info = env.step(token)
    assert terminated and reward == 1.0 and info["completion"] == "42"  # the end of turn ends the episode
    assert seen["prompts"] == [QUESTION] and seen["completions"] == [[{"role": "assistant", "content": "42"}]]


def test_text_reward_models_get_the_assistants_text_without_special_tokens():
    tok = chatml_tokenizer()
    got = []
    env = TextGenEnv(
        tok,
        prompts=[QUESTION],
        chat=True,
        max_new_tokens=16,
        reward_model=lambda prompts, completions, **kw: (
            got.extend(zip(prompts, completions, strict=True)) or [0.0]
        ),
    )
    env.reset(seed=0)
    for token in tok("42", add_special_tokens=False)["input_ids"] + [env.setup.end_of_turn_id]:
        env.step(token)
    assert got == [("What is 6 times 7?", "42")]


def test_conversational_prompts_make_a_chat_env_or_need_one():
    tok = chatml_tokenizer()
    score = lambda completions, **kw: [0.0] * len(completions)  # noqa: E731
    assert TextGenEnv(tok, prompts=[QUESTION, "plain"], reward_model=score).conversation() == []  # a chat env
    env = TextGenEnv(
        tok, prompts=lambda rng: {"prompt": QUESTION}, reward_model=score
    )  # generated: seen at reset
    with pytest.raises(ValueError, match="chat=True"):
        env.reset(seed=0)
    with pytest.raises(PromptSourceError, match="list of conversations"):
        TextGenEnv(tok, prompts=QUESTION, chat=True)


class NumberGame:
    """A TRL-style environment class: reset(**columns) and a typed public method with a docstring."""

    def reset(self, answer: int, **kwargs) -> None:
        self.answer = int(answer)

    def check(self, guess: int) -> str:
        """Compare a guess with the secret number.

        Args:
            guess: the number to compare
        """
        if guess < 0:
            raise ValueError("guesses are positive")
        return "right" if guess == self.answer else ("higher" if guess < self.answer else "lower")


@pytest.mark.parametrize("vector", [False, True])
def test_trl_style_class_tools_and_every_kind_of_bad_call(vector):
    tok = chatml_tokenizer()
    prompts = [{"prompt": [{"role": "user", "content": "Guess the number."}], "answer": 7}]
    kwargs = dict(
        tokenizer=tok, prompts=prompts, tools=NumberGame, reward_model="numeric", max_new_tokens=400
    )
    env = TextGenVectorEnv(1, autoreset_mode="Disabled", **kwargs) if vector else TextGenEnv(**kwargs)
    eot = env.setup.end_of_turn_id
    assert [s["function"]["name"] for s in env.setup.rules.chat.tools] == ["check"]
    turns = [
        '<tool_call>{"name": "check", "arguments": {"guess": 3</tool_call>',  # malformed JSON
        '<tool_call>{"name": "peek", "arguments": {}}</tool_call>',  # unknown tool
        '<tool_call>{"name": "check", "arguments": {"guess": -1}}</tool_call>',  # raises inside
        '<tool_call>{"name": "check", "arguments": {"guess": 7}}</tool_call>',
        "It is 7.",
    ]
    env.reset(seed=0)
    replies = []
    for text in turns:
        for token in [*tok(text, add_special_tokens=False)["input_ids"], eot]:
            obs, reward, terminated, truncated, info = env.step(np.array([token]) if vector else token)
        if vector:
            info = {k: v[0] for k, v in info.items() if not k.startswith("_")}
        replies.append(info.get("reply", ""))
    assert bool(np.all(terminated)) and float(np.sum(reward)) == 1.0
    assert "error: malformed tool call" in replies[0] and "error: unknown tool 'peek'" in replies[1]
    assert "error: check raised ValueError: guesses are positive" in replies[2] and "right" in replies[3]
    assert info["tool_calls"] == 4 and info["tool_errors"] == 3
    assert [m["role"] for m in info["messages"]] == ["user"] + ["assistant", "tool"] * 4 + ["assistant"]


def test_max_tool_calls_ends_the_calls_and_scores_the_turn():
    tok = chatml_tokenizer()
    env = TextGenEnv(
        tok,
        prompts=[QUESTION],
        tools=[multiply],
        max_tool_calls=1,
        reward_model="numeric",
        max_new_tokens=200,
    )
    env.reset(options={"prompt": {"prompt": QUESTION, "answer": 42}})
    for _ in range(2):
        for token in [*tok(CALL, add_special_tokens=False)["input_ids"], env.setup.end_of_turn_id]:
            obs, reward, terminated, truncated, info = env.step(token)
    assert (
        terminated and info["tool_calls"] == 1 and reward == 0.0
    )  # the 2nd call is the answer (first number 6)


class Board:
    """TRL's calling convention: reset gets the row (prompt included) and may return an observation."""

    def reset(self, prompt, answer, **kwargs) -> str:
        assert prompt == [{"role": "user", "content": "Guess."}]
        self.answer = answer
        return " (between 1 and 9)"

    def check(self, guess: int) -> bool:
        """Whether the guess is right.

        Args:
            guess: the number to compare
        """
        return guess == self.answer


def test_a_trl_reset_observation_is_appended_to_the_prompt():
    tok = chatml_tokenizer()
    env = TextGenEnv(
        tok,
        prompts=[{"prompt": [{"role": "user", "content": "Guess."}], "answer": 4}],
        tools=Board,
        max_new_tokens=64,
    )
    obs, _ = env.reset(seed=0)
    shown = [{"role": "user", "content": "Guess. (between 1 and 9)"}]
    schemas = [get_json_schema(Board.check.__get__(Board()))]
    assert obs["input_ids"][obs["attention_mask"] == 1].tolist() == render(tok, shown, schemas, True)
    assert env.conversation() == shown


def test_a_datasets_dataset_of_conversations_is_a_prompt_source():
    datasets = pytest.importorskip("datasets")
    rows = datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": "What is 6 times 7?"}], "answer": 42}]
    )
    tok = chatml_tokenizer()
    env = TextGenEnv(tok, prompts=rows, reward_model="numeric", max_new_tokens=8)
    obs, info = env.reset(seed=0)
    assert info["prompt"] == "What is 6 times 7?"
    assert obs["input_ids"][obs["attention_mask"] == 1].tolist() == render(
        tok, QUESTION[1:], generation_prompt=True
    )
    for token in tok("42", add_special_tokens=False)["input_ids"] + [env.setup.end_of_turn_id]:
        reward = env.step(token)[1]
    assert reward == 1.0
