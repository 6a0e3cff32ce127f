"""Agents on multi-turn envs: the env's reply ids go through the KV cache (a ragged number per row and
step), rollout logprobs equal a full re-score of the final sequences, env tokens stay out of every
loss, and all four algorithms train on a multi-turn id."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rlenv
from agents.training.config import TrainConfig
from agents.training.rollout import collect_rollouts
from agents.training.trainer import train
from tests.agents.conftest import PROMPTS, boost_tokens, make_policy

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread


def responder(history):
    """Ends after 'great'; otherwise answers with a reply whose length depends on the turn, so rows
    receive different numbers of env tokens at different steps. Per-turn reward: 'good' count."""
    words = history.last_text.split()
    if "great" in words:
        return "", 1.0, True
    reply = "not good ." if "bad" in words else ("fine ." if len(words) % 2 else "the food was fine .")
    return reply, float(words.count("good")), False


def multi_turn_envs(policy, num_envs=8, max_new_tokens=16):
    return rlenv.TextGenVectorEnv(
        num_envs=num_envs,
        tokenizer=policy.tokenizer,
        prompts=PROMPTS,
        responder=responder,
        end_of_turn=".",
        max_turn_tokens=4,
        max_prompt_tokens=6,
        max_new_tokens=max_new_tokens,
        autoreset_mode="Disabled",
    )


def end_turns_often(policy, bias=2.5):
    """Make '.' (end of turn) and 'bad' likely so batches hold several turns per episode."""
    return boost_tokens(policy, policy.tokenizer.convert_tokens_to_ids([".", "bad"]), bias)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_rollout_logprobs_equal_a_full_rescore_with_env_insertions(arch):
    policy = end_turns_often(make_policy(arch, value_head=True))
    envs = multi_turn_envs(policy)
    batch = collect_rollouts(policy, envs, seed=0, with_values=True)
    P = batch.prompt_length
    context = batch.attention_mask[:, P:].bool()
    env_tokens = context & ~batch.response_mask.bool()
    assert env_tokens.any(), "the env should have replied in this batch"
    assert len({int(r.sum()) for r in env_tokens}) > 1, "replies should be ragged across rows"
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, P, with_values=True)
    mask = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[mask], batch.logprobs[mask], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(scores.values[mask], batch.values[mask], atol=1e-4, rtol=1e-4)
    assert (batch.logprobs[~mask] == 0).all()
    # the per-turn rewards sit on the columns of the turn-ending actions and add up to the episode's
    torch.testing.assert_close(batch.token_rewards.sum(1), batch.rewards)
    assert (batch.token_rewards[~mask] == 0).all()
    # the batch's text is the env's: the policy's tokens and the replies, in order
    for i in range(batch.batch_size):
        ids = batch.input_ids[i, P:][context[i]].tolist()
        assert policy.tokenizer.decode(ids, skip_special_tokens=True) == batch.completions[i]
    envs.close()


def test_env_tokens_get_no_gradient():
    """The loss masks are the policy's tokens only: changing an env token's logprob slot changes nothing.
    (Each algorithm's whole update is checked on a batch with env tokens in test_algorithm_updates.py.)"""
    from agents.training.losses import policy_gradient_loss

    policy = end_turns_often(make_policy("gpt2"))
    batch = collect_rollouts(policy, multi_turn_envs(policy), seed=1)
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length)
    logprobs = scores.logprobs.detach().requires_grad_(True)
    loss = policy_gradient_loss(logprobs, torch.ones(batch.batch_size), batch.response_mask)
    loss.backward()
    env_tokens = batch.attention_mask[:, batch.prompt_length :].bool() & ~batch.response_mask.bool()
    # .all() of an empty selection is True: the check means something only if the env replied
    assert env_tokens.sum() >= 3, "the env should have replied in this batch"
    assert (logprobs.grad[env_tokens] == 0).all() and (logprobs.grad[batch.response_mask.bool()] != 0).all()


@pytest.mark.parametrize("algo", ["reinforce", "ppo", "rloo", "grpo"])
def test_every_algorithm_trains_on_a_multi_turn_id(tmp_path, algo):
    """GuessNumber-v0 on the embedded model: the env answers higher/lower between guesses."""
    result = train(
        TrainConfig(
            algo=algo,
            env="rlenv/GuessNumber-v0",
            steps=2,
            batch_size=8,
            group_size=4,
            max_new_tokens=12,
            lr=1e-3,
            out=str(tmp_path / "run"),
            device="cpu",
            checkpoint_every=0,
        )
    )
    assert [r["step"] for r in result.metrics] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in result.metrics)
