import gymnasium as gym
import numpy as np
import pytest
import torch

import rlenv
from agents.training.policy import SamplingConfig, position_ids_from_mask
from agents.training.rollout import collect_rollouts
from tests.agents.conftest import ARCHS, PROMPTS, boost_tokens, count_good, make_policy


def make_envs(policy, num_envs=6, max_new_tokens=8, **kw):
    return rlenv.TextGenVectorEnv(
        num_envs=num_envs, tokenizer=policy.tokenizer, prompts=kw.pop("prompts", PROMPTS),
        reward_model=kw.pop("reward_model", count_good), autoreset_mode="Disabled",
        max_prompt_tokens=6, max_new_tokens=max_new_tokens, **kw,
    )


def boost_eos(policy, bias=3.0):
    """Make EOS likely (for any architecture) so that short batches mix terminated and truncated."""
    return boost_tokens(policy, [policy.eos_token_id], bias)


def test_actions_decode_to_the_envs_completions():
    policy = boost_eos(make_policy("gpt2"))
    batch = collect_rollouts(policy, make_envs(policy, num_envs=8), seed=0)
    tok, P = policy.tokenizer, batch.prompt_length
    assert batch.input_ids.shape == (8, P + 8) and batch.actions.shape == batch.logprobs.shape == (8, 8)
    for i in range(8):
        n = int(batch.response_mask[i].sum())
        taken = batch.actions[i, :n]
        assert tok.decode(taken, skip_special_tokens=True) == batch.completions[i]
        assert batch.input_ids[i, P:P + n].tolist() == taken.tolist()
        assert (batch.actions[i, n:] == tok.pad_token_id).all() and (batch.logprobs[i, n:] == 0).all()
    assert batch.prompts == [p for p in batch.prompts if p in PROMPTS]
    torch.testing.assert_close(batch.rewards, torch.tensor(count_good(batch.prompts, batch.completions)))


def test_terminated_and_truncated_flags():
    policy = boost_eos(make_policy("gpt2"), bias=2.0)
    T = 5
    batch = collect_rollouts(policy, make_envs(policy, num_envs=12, max_new_tokens=T), seed=3)
    lengths = batch.response_lengths
    last = batch.actions[torch.arange(12), lengths - 1]
    eos = policy.eos_token_id
    assert batch.terminated.any() and batch.truncated.any()  # the seed gives both kinds
    assert (batch.terminated ^ batch.truncated).all()
    assert torch.equal(batch.terminated, last == eos)
    assert torch.equal(batch.truncated, (lengths == T) & (last != eos))
    # EOS is part of the response (mask 1) and the attention mask covers exactly prompt + response
    assert torch.equal(batch.attention_mask[:, batch.prompt_length:].float(), batch.response_mask)


@pytest.mark.parametrize(
    "sampling", [SamplingConfig(), SamplingConfig(temperature=0.7), SamplingConfig(top_k=5, top_p=0.8)],
    ids=["plain", "temperature", "topk-topp"],
)
def test_sampling_logprobs_equal_score_sequences(sampling):
    policy = boost_eos(make_policy("gpt2", sampling=sampling, value_head=True), bias=1.0)
    batch = collect_rollouts(policy, make_envs(policy), seed=1, with_values=True)
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length, with_values=True)
    m = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[m], batch.logprobs[m], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores.values[m], batch.values[m], atol=1e-5, rtol=1e-4)
    if sampling.top_k:
        # every taken token is inside the filtered support
        assert torch.isfinite(batch.logprobs[m]).all() and (batch.logprobs[m] > -20).all()


def test_scoring_runs_each_sequence_once_never_per_token():
    policy = make_policy("gpt2")
    batch = collect_rollouts(policy, make_envs(policy, num_envs=8), seed=0, options={"group_size": 4})
    for shared in (False, True):
        policy.shared_scoring = shared
        rows = []
        handle = policy.model.register_forward_pre_hook(
            lambda m, a, kw, rows=rows: rows.append(kw["input_ids"].shape[0]), with_kwargs=True)
        policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length)
        handle.remove()
        if not shared:
            assert rows == [8]  # one padded forward
        else:  # the 2 groups' prompts once, then each response once, in at most 4 length buckets
            assert rows[0] == 2 and sum(rows[1:]) <= 8 and len(rows) <= 5


def test_same_seed_same_batch_and_different_seed_differs():
    policy = make_policy("gpt2")
    envs = make_envs(policy)
    a = collect_rollouts(policy, envs, seed=7)
    b = collect_rollouts(policy, envs, seed=7)
    c = collect_rollouts(policy, envs, seed=8)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.logprobs, b.logprobs)
    assert a.completions == b.completions and a.prompts == b.prompts
    assert not torch.equal(a.input_ids, c.input_ids)


@pytest.mark.parametrize("arch", ARCHS)
def test_architectures_with_left_padding(arch):
    policy = boost_eos(make_policy(arch, value_head=True), bias=1.0)
    batch = collect_rollouts(policy, make_envs(policy), seed=2, with_values=True)
    assert (batch.attention_mask[:, 0] == 0).any()  # some prompts are really left-padded
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length, with_values=True)
    m = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[m], batch.logprobs[m], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores.values[m], batch.values[m], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_incremental_logits_equal_full_forward(arch):
    """The rollout's prefill + one-token cached steps give the full forward's logits, padding included."""
    policy = make_policy(arch)
    tok = policy.tokenizer
    P, T = 6, 4
    rows = [tok("the movie was good")["input_ids"], tok("a")["input_ids"]]
    ids = torch.full((2, P + T), tok.pad_token_id)
    mask = torch.zeros(2, P + T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, P - len(r):P] = torch.tensor(r)
        ids[i, P:] = torch.tensor(tok.convert_tokens_to_ids(["very", "good", "and", "fine"]))
        mask[i, P - len(r):] = 1
    with torch.no_grad():
        full, _, _ = policy.forward_tokens(ids, mask, position_ids_from_mask(mask))
        from transformers import DynamicCache

        pos = position_ids_from_mask(mask)
        step, _, cache = policy.forward_tokens(ids[:, :P], mask[:, :P], pos[:, :P],
                                               cache=DynamicCache(config=policy.model.config), logits_to_keep=1)
        got = [step[:, -1]]
        for t in range(T - 1):
            step, _, cache = policy.forward_tokens(ids[:, P + t:P + t + 1], mask[:, :P + t + 1],
                                                   pos[:, P + t:P + t + 1], cache=cache)
            got.append(step[:, -1])
    torch.testing.assert_close(torch.stack(got, 1), full[:, P - 1:P + T - 1], atol=1e-5, rtol=1e-4)


def test_group_size_option_and_reward_components():
    policy = make_policy("qwen2")
    from reward_models import WeightedSum, make

    rm = WeightedSum({"good": (count_good, 1.0), "length": (make("length", target=3), 0.5)})
    envs = make_envs(policy, num_envs=6, reward_model=rm)
    batch = collect_rollouts(policy, envs, seed=0, options={"group_size": 3})
    assert batch.prompts[0] == batch.prompts[1] == batch.prompts[2]
    assert set(batch.reward_components) >= {"good", "length"}
    np.testing.assert_allclose(batch.reward_components["good"], count_good(batch.prompts, batch.completions))


def test_registered_env_via_make_vec():
    policy = make_policy("gpt2")
    envs = gym.make_vec("rlenv/TextGen-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        autoreset_mode="Disabled", tokenizer=policy.tokenizer, prompts=PROMPTS,
                        reward_model=count_good, max_prompt_tokens=6, max_new_tokens=4)
    batch = collect_rollouts(policy, envs, seed=0)
    assert batch.actions.shape == (4, 4)


def test_needs_autoreset_disabled():
    policy = make_policy("gpt2")
    envs = rlenv.TextGenVectorEnv(num_envs=2, tokenizer=policy.tokenizer, prompts=PROMPTS,
                                  reward_model=count_good, max_prompt_tokens=6, max_new_tokens=4)
    with pytest.raises(ValueError, match="autoreset_mode='Disabled'"):
        collect_rollouts(policy, envs)


def test_finished_rows_are_dropped_from_the_batch():
    policy = boost_eos(make_policy("llama", value_head=True), bias=2.5)
    sizes = []
    policy.model.register_forward_hook(lambda m, args, kwargs, out: sizes.append(kwargs["input_ids"].shape[0]),
                                       with_kwargs=True)
    batch = collect_rollouts(policy, make_envs(policy, num_envs=16, max_new_tokens=12), seed=0, with_values=True)
    # sizes[0] is the prefill: one row per distinct prompt (shared prefill); then every step's forward
    assert sizes[0] <= 16 and sizes[1] == 16 and min(sizes) < 8  # shrank at least twice
    assert sizes[1:] == sorted(sizes[1:], reverse=True)
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length, with_values=True)
    m = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[m], batch.logprobs[m], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores.values[m], batch.values[m], atol=1e-5, rtol=1e-4)
    tok = policy.tokenizer
    for i in range(16):
        n = int(batch.response_mask[i].sum())
        assert tok.decode(batch.actions[i, :n], skip_special_tokens=True) == batch.completions[i]
