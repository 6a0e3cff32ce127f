"""Agents on chat envs: a tiny random Qwen2 with a ChatML tokenizer rolls out conversations with tool
messages and user replies through the KV cache; every algorithm trains on the chat tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

import rlenv
from agents.training.config import TrainConfig
from agents.training.policy import LMPolicy, SamplingConfig
from agents.training.rollout import collect_rollouts
from agents.training.trainer import train
from tests.agents.conftest import boost_tokens
from tests.rlenv.chat_helpers import chatml_tokenizer, multiply

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread


def qwen2_policy() -> LMPolicy:
    tok = chatml_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=512,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    policy = LMPolicy(Qwen2ForCausalLM(config), tok, sampling=SamplingConfig())
    call = tok(
        '<tool_call>{"name": "multiply", "arguments": {"a": 6, "b": 7}}</tool_call>', add_special_tokens=False
    )["input_ids"]
    # end turns often, and write pieces of a tool call, so that batches hold tool messages and replies
    return boost_tokens(policy, [tok.convert_tokens_to_ids("<|im_end|>"), *call], 3.0)


def second_answer_ends(history):
    if history.num_policy_turns >= 3:
        return "", 1.0, True
    return (
        {"role": "user", "content": "Are you sure?" if history.num_policy_turns == 1 else "Why?"},
        0.1,
        False,
    )


def chat_envs(policy: LMPolicy, num_envs: int) -> rlenv.TextGenVectorEnv:
    """A chat env with a tool and a responder that asks back twice, for rollout batches."""
    return rlenv.TextGenVectorEnv(
        num_envs,
        tokenizer=policy.tokenizer,
        prompts=[[{"role": "user", "content": "6 times 7?"}]],
        responder=second_answer_ends,
        tools=[multiply],
        max_new_tokens=40,
        autoreset_mode="Disabled",
    )


def test_chat_rollout_logprobs_equal_a_full_rescore_and_env_tokens_are_masked():
    policy = qwen2_policy()
    envs = chat_envs(policy, 8)
    batch = collect_rollouts(policy, envs, seed=0)
    P = batch.prompt_length
    context = batch.attention_mask[:, P:].bool()
    env_tokens = context & ~batch.response_mask.bool()
    assert env_tokens.any() and len({int(r.sum()) for r in env_tokens}) > 1  # ragged replies
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, P)
    mask = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[mask], batch.logprobs[mask], atol=1e-4, rtol=1e-4)
    # every env token is one the template put between turns: the role markers of a user/tool message
    im_start = policy.tokenizer.convert_tokens_to_ids("<|im_start|>")
    for i in range(batch.batch_size):
        if env_tokens[i].any():
            assert batch.input_ids[i, P:][env_tokens[i]].tolist().count(im_start) >= 1
    envs.close()


@pytest.mark.parametrize("algo", ["reinforce", "ppo", "rloo", "grpo"])
@pytest.mark.parametrize("env_id", ["rlenv/ChatCalculator-v0", "rlenv/ChatGuessNumber-v0"])
def test_every_algorithm_trains_on_a_chat_task(tmp_path, algo, env_id):
    result = train(
        TrainConfig(
            algo=algo,
            env=env_id,
            steps=1,
            batch_size=4,
            group_size=2,
            max_new_tokens=12,
            lr=1e-3,
            out=str(tmp_path / "run"),
            device="cpu",
            checkpoint_every=0,
        )
    )
    assert [r["step"] for r in result.metrics] == [1]
    assert all(np.isfinite(r["loss"]) for r in result.metrics)
