"""The chat tasks on the embedded model: ChatCalculator, ChatGuessNumber and chat=True on single-turn tasks."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from transformers.utils import get_json_schema

from rlenv.tasks.chat_tasks import multiply
from tests.rlenv.test_multiturn import compare_infos


def write(env, text):
    tok = env.unwrapped.tokenizer
    out = None
    for token in tok(text, add_special_tokens=False)["input_ids"]:
        out = env.step(token)
    return out


def test_chat_calculator_with_no_arguments_runs_a_tool_call_and_scores_the_answer():
    env = gym.make("rlenv/ChatCalculator-v0")
    check_env(env.unwrapped, skip_render_check=True)
    _, info = env.reset(seed=3)
    a, b = (int(x) for x in re.findall(r"\d+", info["prompt"]))
    call = f'<tool_call>{{"name": "multiply", "arguments": {{"a": {a}, "b": {b}}}}}</tool_call><|im_end|>'
    obs, reward, terminated, truncated, info = write(env, call)
    assert reward == 0.0 and not terminated
    assert info["reply"] == f"\n<|im_start|>tool\n{a * b}<|im_end|>\n<|im_start|>assistant\n"
    assert obs["policy_mask"][obs["attention_mask"] == 1][-len(info["env_ids"]) :].sum() == 0  # env tokens
    obs, reward, terminated, truncated, info = write(env, f"It is {a * b}.<|im_end|>")
    assert terminated and reward == 1.0 and info["tool_calls"] == 1 and info["tool_errors"] == 0
    # the episode's ids are the embedded template's rendering of the conversation, token for token
    tok = env.unwrapped.tokenizer
    rendered = tok.apply_chat_template(
        info["messages"], tools=[get_json_schema(multiply)], tokenize=True, return_dict=False
    )
    ids = obs["input_ids"][obs["attention_mask"] == 1].tolist()
    assert (
        list(rendered[: len(ids)]) == ids and tok.decode(rendered[len(ids) :]) == "\n"
    )  # after the last <|im_end|>
    env.reset(seed=3)
    assert write(env, f"It is {a * b + 1}.<|im_end|>")[1] == 0.0  # a wrong answer without a call


def test_chat_calculator_splits_are_disjoint():
    def questions(split):
        env = gym.make("rlenv/ChatCalculator-v0", split=split)
        return {env.reset(seed=s)[1]["prompt"] for s in range(40)}

    assert not questions("train") & questions("heldout")


def test_chat_guess_number_replies_are_user_messages():
    env = gym.make("rlenv/ChatGuessNumber-v0")
    env.reset(seed=0)
    secret = int(env.unwrapped._episodes.prompts[0].columns["answer"])
    low = 1 if secret > 1 else 2
    obs, reward, terminated, truncated, info = write(env, f"{low}<|im_end|>")
    assert reward == pytest.approx(-0.1)
    hint = "higher" if low < secret else "lower"
    assert info["reply"] == f"\n<|im_start|>user\n{hint}<|im_end|>\n<|im_start|>assistant\n"
    obs, reward, terminated, truncated, info = write(env, f"{secret}<|im_end|>")
    assert terminated and reward == 1.0
    assert [m["role"] for m in info["messages"]] == ["user", "assistant", "user", "assistant"]


LM_TASKS = [
    "rlenv/TextGen-v0",
    "rlenv/PositiveReview-v0",
    "rlenv/Brief-v0",
    "rlenv/ContinueReview-v0",
    "rlenv/LearnedReview-v0",
    "rlenv/Arithmetic-v0",
    "rlenv/Keyword-v0",
]


@pytest.mark.parametrize("env_id", LM_TASKS)
def test_chat_true_makes_the_request_a_user_message(env_id):
    plain, chat = gym.make(env_id), gym.make(env_id, chat=True)
    _, plain_info = plain.reset(seed=0)
    obs, info = chat.reset(seed=0)
    assert info["prompt"] == plain_info["prompt"]  # same prompt draw; the reward model sees the same text
    tok = chat.unwrapped.tokenizer
    shown = tok.decode(obs["input_ids"][obs["attention_mask"] == 1])
    assert shown == f"<|im_start|>user\n{info['prompt']}<|im_end|>\n<|im_start|>assistant\n"
    obs, reward, terminated, truncated, info = write(
        chat, "good<|im_end|>"
    )  # the end of turn ends the episode
    assert terminated and info["completion"] == "good"


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_native_vector_env_agrees_with_sync_vector_env_on_a_chat_task(mode):
    N = 3
    native = gym.make_vec(
        "rlenv/ChatGuessNumber-v0", num_envs=N, vectorization_mode="vector_entry_point", autoreset_mode=mode
    )
    sync = SyncVectorEnv([lambda: gym.make("rlenv/ChatGuessNumber-v0")] * N, autoreset_mode=mode)
    native.reset(seed=7)
    sync.reset(seed=7)
    tok = native.tokenizer
    choices = np.array(
        tok(" 1 2 3 4 5 6 7 8 9 0 10<|im_end|><|im_end|>", add_special_tokens=False)["input_ids"]
    )
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(80):
        actions = rng.choice(choices, size=N)
        o1, r1, t1, u1, i1 = native.step(actions)
        o2, r2, t2, u2, i2 = sync.step(actions)
        for key in ("input_ids", "attention_mask", "policy_mask"):
            np.testing.assert_array_equal(o1[key], o2[key])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(t1 | u1, t2 | u2)
        compare_infos(i1, i2, ("env_ids", "reply", "completion"))
        ended += int((t1 | u1).sum())
    assert ended >= 3


def test_turn_level_view_and_render_of_a_chat_env():
    from rlenv.wrappers import TurnLevel

    env = TurnLevel("rlenv/ChatCalculator-v0", render_mode="ansi")
    _, info = env.reset(seed=3)
    a, b = (int(x) for x in re.findall(r"\d+", info["prompt"]))
    _, reward, terminated, _, info = env.step(
        f'<tool_call>{{"name": "multiply", "arguments": {{"a": {a}, "b": {b}}}}}</tool_call>'
    )
    assert (
        not terminated and info["reply"] == f"\n<|im_start|>tool\n{a * b}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert env.unwrapped.render().splitlines()[-1] == f"[tool] {a * b}"
    _, reward, terminated, _, info = env.step(f"It is {a * b}.")
    assert terminated and reward == 1.0
    assert env.unwrapped.conversation()[-1] == {"role": "assistant", "content": f"It is {a * b}."}


def test_served_chat_env_observations_carry_the_messages():
    pytest.importorskip("openenv")
    from fastapi.testclient import TestClient

    from rlenv.serving import create_rlenv_app

    client = TestClient(create_rlenv_app("rlenv/ChatGuessNumber-v0", max_sessions=1))
    observation = client.post("/reset", json={"seed": 0}).json()["observation"]
    assert observation["messages"] == [{"role": "user", "content": observation["info"]["prompt"]}]
    step = client.post(
        "/step", json={"action": {"text": " 0"}, "episode_id": observation["episode_id"]}
    ).json()
    assert [m["role"] for m in step["observation"]["messages"]] == ["user", "assistant", "user"]


def test_conversational_prompts_go_to_trl_as_message_lists():
    from rlenv.hf_dataset import prompt_records

    chats = [{"prompt": [{"role": "user", "content": "Hi?"}], "answer": 1}, "plain"]
    assert prompt_records(chats) == [
        {"prompt": [{"role": "user", "content": "Hi?"}], "answer": 1},
        {"prompt": "plain", "answer": None},
    ]


def test_turn_level_exchanges_messages_on_a_chat_env():
    from rlenv.wrappers import TurnLevel

    env = TurnLevel("rlenv/ChatCalculator-v0")
    _, info = env.reset(seed=3)
    assert info["messages"] == [{"role": "user", "content": info["prompt"]}]
    a, b = (int(x) for x in re.findall(r"\d+", info["prompt"]))
    call = f'<tool_call>{{"name": "multiply", "arguments": {{"a": {a}, "b": {b}}}}}</tool_call>'
    _, reward, terminated, _, info = env.step({"role": "assistant", "content": call})
    assert not terminated and [m["role"] for m in info["messages"]] == ["user", "assistant", "tool"]
    assert info["messages"][-1]["content"] == str(a * b)
    _, reward, terminated, _, info = env.step({"role": "assistant", "content": f"It is {a * b}."})
    assert (
        terminated
        and reward == 1.0
        and info["messages"][-1] == {"role": "assistant", "content": f"It is {a * b}."}
    )
    with pytest.raises(TypeError, match="'role': 'assistant'"):
        env.reset(seed=0)
        env.step({"role": "user", "content": "hi"})
    plain = TurnLevel("rlenv/GuessNumber-v0")
    _, info = plain.reset(seed=0)
    assert "messages" not in info  # token-level multi-turn ids have no conversation
    with pytest.raises(TypeError, match="text of a turn"):
        plain.step({"role": "assistant", "content": "3"})


@pytest.mark.parametrize("wrong_turns", [1, 3])
def test_quitting_a_chat_game_costs_what_losing_it_costs(wrong_turns):
    """EOS ends a chat episode; ChatGuessNumber charges the guesses not made, so quitting after one
    wrong guess is no cheaper than five wrong guesses (-0.5 either way)."""
    env = gym.make("rlenv/ChatGuessNumber-v0")  # max_turns=5, turn_penalty=0.1
    env.reset(seed=0)
    secret = int(env.unwrapped._episodes.prompts[0].columns["answer"])
    wrong = 1 if secret > 1 else 2
    total = 0.0
    for _ in range(wrong_turns - 1):
        _, reward, terminated, _, _ = write(env, f"{wrong}<|im_end|>")
        total += reward
        assert reward == pytest.approx(-0.1) and not terminated
    _, reward, terminated, truncated, _ = write(env, f"{wrong}{env.unwrapped.tokenizer.eos_token}")
    assert terminated and not truncated
    assert reward == pytest.approx(-0.1 * (5 - wrong_turns + 1))
    assert total + reward == pytest.approx(-0.5)
    lost = gym.make("rlenv/ChatGuessNumber-v0")  # the same game played on and lost
    lost.reset(seed=0)
    returns = [write(lost, f"{wrong}<|im_end|>")[1] for _ in range(5)]
    assert sum(returns) == pytest.approx(total + reward)
