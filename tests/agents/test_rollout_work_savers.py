"""The rollout's work savers (issues 14, 24): a preallocated KV cache, shared prompt prefill and bf16
rollouts. Each gives the plain path's tokens and logprobs (to float noise; bf16 only samples); the
exact ones are the default, the plain path stays one flag away, and the update stays in fp32."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from agents.algorithms import algorithm_class
from agents.training.config import TrainConfig
from agents.training.kv_cache import PreallocatedLayer, preallocated_cache
from agents.training.rollout import collect_rollouts
from agents.training.trainer import rollout_options, train
from tests.agents.conftest import make_policy
from tests.agents.helpers_trainers import tiny_config
from tests.agents.test_multiturn_rollouts import end_turns_often, multi_turn_envs
from tests.agents.test_rollout import boost_eos, make_envs

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread

PLAIN = {"cache": "dynamic", "share_prompt_prefill": False}
"""the rollout before any saver: transformers' DynamicCache, every row prefilled"""
SAVERS = [
    {"cache": "preallocated", "share_prompt_prefill": False},
    {"cache": "dynamic", "share_prompt_prefill": True},
    {"cache": "preallocated", "share_prompt_prefill": True},
]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("savers", SAVERS, ids=["prealloc", "shared", "both"])
def test_savers_give_the_default_rollout(arch, savers):
    policy = boost_eos(make_policy(arch, value_head=True), bias=1.0)
    envs = make_envs(policy, num_envs=8, max_new_tokens=8)
    default = collect_rollouts(policy, envs, seed=2, options={"group_size": 4}, with_values=True, **PLAIN)
    saved = collect_rollouts(policy, envs, seed=2, options={"group_size": 4}, with_values=True, **savers)
    assert default.terminated.any() and default.truncated.any()  # rows drop out: the cache shrinks too
    assert torch.equal(saved.input_ids, default.input_ids) and saved.completions == default.completions
    torch.testing.assert_close(saved.logprobs, default.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(saved.values, default.values, atol=1e-5, rtol=0)
    # and both equal a full re-score
    scores = policy.score_sequences(saved.input_ids, saved.attention_mask, saved.prompt_length)
    m = saved.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[m], saved.logprobs[m], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("savers", SAVERS[1:], ids=["shared", "both"])
def test_savers_with_multi_turn_env_replies_equal_a_full_rescore(savers):
    policy = end_turns_often(make_policy("gpt2"))
    envs = multi_turn_envs(policy)
    batch = collect_rollouts(policy, envs, seed=0, **savers)
    default = collect_rollouts(policy, envs, seed=0, **PLAIN)
    assert torch.equal(batch.input_ids, default.input_ids)
    context = batch.attention_mask[:, batch.prompt_length:].bool()
    assert (context & ~batch.response_mask.bool()).any(), "the env should have replied in this batch"
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length)
    m = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[m], batch.logprobs[m], atol=1e-5, rtol=1e-4)


def test_exact_savers_are_the_default_and_flags_turn_them_off():
    assert rollout_options(TrainConfig(steps=1)) == {"cache": "preallocated", "share_prompt_prefill": True,
                                                     "autocast_dtype": "policy"}
    off = TrainConfig(steps=1, rollout_cache="dynamic", shared_prefill=False)
    assert rollout_options(off) == {**PLAIN, "autocast_dtype": "policy"}
    policy = make_policy("gpt2")
    envs = make_envs(policy)
    default = collect_rollouts(policy, envs, seed=5)
    explicit = collect_rollouts(policy, envs, seed=5, **rollout_options(TrainConfig(steps=1)))
    assert torch.equal(default.logprobs, explicit.logprobs) and not explicit.low_precision
    plain = collect_rollouts(policy, envs, seed=5, **rollout_options(off))
    assert torch.equal(plain.input_ids, default.input_ids)
    torch.testing.assert_close(plain.logprobs, default.logprobs, atol=1e-5, rtol=0)


def test_shared_prefill_runs_each_distinct_prompt_once_without_common_padding():
    policy = make_policy("gpt2")
    shapes = []
    policy.model.register_forward_pre_hook(lambda module, args, kwargs: shapes.append(kwargs["input_ids"].shape),
                                           with_kwargs=True)
    envs = make_envs(policy, num_envs=8, max_new_tokens=3)
    batch = collect_rollouts(policy, envs, seed=0, options={"group_size": 4}, share_prompt_prefill=True)
    distinct = len(set(batch.prompts))
    assert distinct <= 2 and shapes[0][0] == distinct  # 2 groups of 4: at most 2 prefill rows, not 8
    longest = int(batch.attention_mask[:, : batch.prompt_length].sum(1).max())
    assert shapes[0][1] == longest < batch.prompt_length  # the padding every row has is not prefilled
    shapes.clear()
    collect_rollouts(policy, envs, seed=0, options={"group_size": 4}, share_prompt_prefill=False)
    assert shapes[0] == (8, batch.prompt_length)


def test_preallocated_layer_writes_in_place_grows_and_selects_rows():
    B, H, D = 3, 2, 4
    layer, reference = PreallocatedLayer(capacity=4), DynamicLayer()
    steps = [torch.randn(B, H, n, D) for n in (3, 1, 1, 2)]  # 7 columns: past the capacity of 4
    buffers = []
    for chunk in steps:
        k, v = layer.update(chunk, -chunk)
        k_ref, v_ref = reference.update(chunk, -chunk)
        assert torch.equal(k, k_ref) and torch.equal(v, v_ref)
        buffers.append(layer._keys.data_ptr())
    assert buffers[0] == buffers[1] != buffers[2]  # written in place until it had to grow (4 -> 8)
    assert layer.get_seq_length() == reference.get_seq_length() == 7 and layer.capacity == 8
    rows = torch.tensor([2, 2, 0])
    layer.batch_select_indices(rows)
    reference.batch_select_indices(rows)
    assert torch.equal(layer.keys, reference.keys) and torch.equal(layer.update(steps[1], steps[1])[0],
                                                                   reference.update(steps[1], steps[1])[0])


def test_preallocated_cache_keeps_sliding_window_layers_dynamic():
    from transformers import MistralConfig

    config = MistralConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                           intermediate_size=32, vocab_size=64, sliding_window=4)
    gpt2 = make_policy("gpt2").model.config
    assert all(isinstance(layer, PreallocatedLayer) for layer in preallocated_cache(gpt2, 8).layers)
    assert not any(isinstance(layer, PreallocatedLayer) for layer in preallocated_cache(config, 8).layers)


def test_bf16_rollout_marks_the_batch_and_reinforce_learns_from_fp32_logprobs():
    """With bf16 rollouts the KL penalty of REINFORCE (and the logged KL) use fp32 logprobs of the same
    weights: the update equals the one on the same batch carrying fp32 logprobs."""
    policy = make_policy("gpt2")
    envs = make_envs(policy, num_envs=8)
    batch = collect_rollouts(policy, envs, seed=0, autocast_dtype=torch.bfloat16)
    assert batch.low_precision and policy.autocast_dtype is None  # the policy's own setting is restored
    fp32 = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length).logprobs
    m = batch.response_mask.bool()
    assert (fp32[m] - batch.logprobs[m]).abs().max() > 1e-4  # bf16 logprobs really differ...
    exact = dataclasses.replace(batch, logprobs=fp32 * batch.response_mask, low_precision=False)
    config = TrainConfig(algo="reinforce", steps=1, batch_size=8, kl_coef=0.5)
    stats = []
    for b in (batch, exact):
        learner = make_policy("gpt2")
        algo = algorithm_class("reinforce")(learner, config, learner.reference())
        stats.append(algo.update(b, b.rewards))
    assert stats[0]["loss"] == pytest.approx(stats[1]["loss"], abs=1e-6)  # ...but the update does not see them
    assert stats[0]["kl"] == pytest.approx(stats[1]["kl"], abs=1e-6)


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_training_with_every_saver_is_deterministic_and_resumes_exactly(tiny_model, tmp_path, algo):
    savers = dict(rollout_cache="preallocated", shared_prefill=True, rollout_precision="bf16")

    def run(name, **kw):
        config = tiny_config(tiny_model, tmp_path / name, algo=algo, **{"steps": 3, **savers, **kw})
        return [(r["loss"], r["reward_mean"], r["kl"]) for r in train(config).metrics]

    first = run("a")
    assert first == run("b")
    run("c", steps=2)  # stopped after 2 updates, then continued from its checkpoint
    assert run("c", resume=str(tmp_path / "c")) == first


def test_bf16_rollout_casts_each_weight_once_and_runs_the_env_at_full_precision(monkeypatch):
    """The rollout holds one autocast region (weights cast once, not per token) and leaves it for the
    env's steps, so a reward model inside the env never runs in bf16; the batch is the one that
    per-forward autocast gives."""
    policy = make_policy("gpt2")
    envs = make_envs(policy, num_envs=8)
    seen = []
    step = envs.step

    def recording_step(actions):
        seen.append(torch.is_autocast_enabled("cpu"))
        return step(actions)

    monkeypatch.setattr(envs, "step", recording_step)

    def rollout_and_count_casts():
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            batch = collect_rollouts(policy, envs, seed=3, autocast_dtype=torch.bfloat16)
        return batch, sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")

    held, held_casts = rollout_and_count_casts()
    assert seen and not any(seen)
    monkeypatch.setattr(type(policy), "casts_held", lambda self: contextlib.nullcontext())
    per_forward, per_forward_casts = rollout_and_count_casts()
    assert held_casts < 0.75 * per_forward_casts  # only the activations are still cast on every forward
    assert torch.equal(held.input_ids, per_forward.input_ids)
    assert torch.equal(held.logprobs, per_forward.logprobs)


def test_reference_precision_autocasts_only_the_reference(tiny_model, tmp_path):
    from agents.training.trainer import Trainer

    trainer = Trainer(tiny_config(tiny_model, tmp_path / "r", algo="grpo", kl_coef=0.1, reference_precision="bf16"))
    reference = trainer.algorithm.reference
    assert reference.autocast_dtype is torch.bfloat16 and trainer.policy.autocast_dtype is None
    batch = collect_rollouts(trainer.policy, trainer.envs, seed=0, options={"group_size": 4})
    bf16 = trainer.algorithm.reference_logprobs(batch)
    with reference.autocast(None):
        fp32 = trainer.algorithm.reference_logprobs(batch)
    m = batch.response_mask.bool()
    assert bf16.dtype == torch.float32
    assert 0 < (bf16 - fp32)[m].abs().max() < 0.1  # bf16 forwards, fp32 logprobs, within bf16's noise
    default = Trainer(tiny_config(tiny_model, tmp_path / "d", algo="grpo", kl_coef=0.1, precision="bf16"))
    assert default.algorithm.reference.autocast_dtype is torch.bfloat16  # unset: follows --precision


def test_precision_auto_is_bf16_on_a_bf16_gpu_and_fp32_on_a_cpu(monkeypatch):
    from agents.training.trainer import precision_dtype

    assert TrainConfig(steps=1).precision == "auto"
    assert precision_dtype("auto", torch.device("cpu")) is None  # bf16 changes a CPU's numbers: opt-in
    assert precision_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision_dtype("auto", torch.device("cuda")) is torch.bfloat16
    assert precision_dtype("fp32", torch.device("cuda")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision_dtype("auto", torch.device("cuda")) is None  # e.g. a V100


def test_trainer_passes_scoring_and_thread_settings(tiny_model, tmp_path):
    from agents.errors import ConfigError
    from agents.training.trainer import Trainer

    threads = torch.get_num_threads()
    try:
        trainer = Trainer(tiny_config(tiny_model, tmp_path / "s", algo="grpo", kl_coef=0.1, shared_scoring=False,
                                      threads=1))
        assert trainer.policy.shared_scoring is False and trainer.algorithm.reference.shared_scoring is False
        assert torch.get_num_threads() == 1
        assert Trainer(tiny_config(tiny_model, tmp_path / "d", algo="grpo", kl_coef=0.1)).policy.shared_scoring
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ConfigError, match="--threads must be >= 1"):
        TrainConfig(steps=1, threads=0)
