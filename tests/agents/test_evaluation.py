"""The held-out evaluation protocol: exact KL on the same episodes, fixed seeds, greedy, the trainer hook."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from agents.training.config import ConfigError
from agents.training.evaluation import EvalProtocol, episode_kl, evaluate_policy, has_splits, make_eval_envs
from agents.training.policy import LMPolicy
from agents.training.rollout import collect_rollouts
from agents.training.run_log import read_metrics
from agents.training.trainer import train
from tests.agents.helpers_trainers import tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread

TASK = "rlenv/Brief-v0"


def small_protocol(**changes) -> EvalProtocol:
    return replace(EvalProtocol(episodes=8, batch_size=4), **changes)


def perturbed(path: str) -> LMPolicy:
    policy = LMPolicy.from_pretrained(path, device="cpu")
    with torch.no_grad():
        torch.manual_seed(5)
        for p in policy.model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return policy


@torch.no_grad()
def test_episode_kl_matches_a_token_by_token_computation(tiny_model) -> None:
    policy, reference = perturbed(tiny_model), LMPolicy.from_pretrained(tiny_model, device="cpu").reference()
    envs = make_eval_envs(TASK, tiny_model, small_protocol(), {"max_new_tokens": 5})
    batch = collect_rollouts(policy, envs, seed=3)
    vocab = int(envs.single_action_space.n)
    got = episode_kl(policy, reference, batch, vocab)
    P = batch.prompt_length
    for b in range(batch.batch_size):  # independent: one unpadded forward per prefix, no masks
        ids = batch.input_ids[b][batch.attention_mask[b].bool()]
        n_prompt = int(batch.attention_mask[b, :P].sum())
        total = 0.0
        for t in range(int(batch.response_mask[b].sum())):
            prefix = ids[: n_prompt + t].unsqueeze(0)
            lp = torch.log_softmax(policy.model(prefix).logits[0, -1, :vocab].float(), -1)
            lq = torch.log_softmax(reference.model(prefix).logits[0, -1, :vocab].float(), -1)
            total += float((lp.exp() * (lp - lq)).sum())
        assert float(got[b]) == pytest.approx(total, rel=1e-4, abs=1e-5)
    assert (got > 0).all()
    assert torch.allclose(episode_kl(reference, reference, batch, vocab), torch.zeros(batch.batch_size), atol=1e-6)


def test_evaluation_is_fixed_by_the_protocol_and_restores_the_policy(tiny_model) -> None:
    policy = perturbed(tiny_model)
    sampling = policy.sampling
    envs = make_eval_envs(TASK, tiny_model, small_protocol(), {"max_new_tokens": 5})
    first = evaluate_policy(policy, envs, small_protocol())
    torch.manual_seed(123)  # global RNG state must not matter
    second = evaluate_policy(policy, envs, small_protocol())
    other = evaluate_policy(policy, envs, small_protocol(seed=99))
    assert first == second and first["samples"] != other["samples"]
    assert policy.sampling is sampling and first["kl"] is None and first["episodes"] == 8


def test_greedy_decodes_the_argmax(tiny_model) -> None:
    policy = perturbed(tiny_model)
    envs = make_eval_envs(TASK, tiny_model, small_protocol(greedy=True), {"max_new_tokens": 5})
    greedy = evaluate_policy(policy, envs, small_protocol(greedy=True), num_samples=4)
    again = evaluate_policy(policy, envs, small_protocol(greedy=True, seed=1), num_samples=4)
    by_prompt = {s["prompt"]: s["completion"] for s in greedy["samples"]}
    # greedy completions depend on the prompt only, never on the sampling seed
    assert all(by_prompt[s["prompt"]] == s["completion"] for s in again["samples"] if s["prompt"] in by_prompt)
    sampled = evaluate_policy(policy, envs, small_protocol(), num_samples=4)
    assert sampled["samples"] != greedy["samples"]


def test_envs_without_a_split_are_refused_with_the_fix(tiny_model) -> None:
    assert has_splits(TASK) and not has_splits("rlenv/TextGen-v0")
    with pytest.raises(ConfigError, match="--split none"):
        make_eval_envs("rlenv/TextGen-v0", tiny_model, small_protocol())


def test_trainer_logs_eval_keys_without_changing_training(tiny_model, tmp_path) -> None:
    common = dict(env=TASK, env_args=("max_new_tokens=5",), steps=4, algo="grpo", checkpoint_every=0)
    plain = train(tiny_config(tiny_model, tmp_path / "plain", **common)).metrics
    evaluated = train(tiny_config(tiny_model, tmp_path / "eval", eval_every=2, eval_episodes=4, **common)).metrics
    assert [("eval/reward_mean" in r) for r in evaluated] == [False, True, False, True]
    assert all(r["eval/kl"] >= 0 and {"eval/reward_se", "eval/length_mean"} <= set(r) for r in evaluated[1::2])
    for a, b in zip(plain, evaluated, strict=True):
        assert (a["reward_mean"], a["loss"]) == (b["reward_mean"], b["loss"])
    assert read_metrics(tmp_path / "eval")[1]["eval/reward_mean"] == evaluated[1]["eval/reward_mean"]
