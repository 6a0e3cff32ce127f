"""A model whose output head has more rows than the tokenizer (padded vocabularies, e.g. Qwen2.5 and
Pythia) acts only over the env's actions; the reference is scored at the sampling temperature without
the policy's top-k/top-p filter; ``rlenv train`` runs every algorithm on such a model."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from agents.training.config import TrainConfig
from agents.training.policy import LMPolicy, SamplingConfig
from agents.training.rollout import collect_rollouts
from agents.training.trainer import make_envs, train
from tests.agents.conftest import build_model, build_tokenizer
from tests.agents.helpers_trainers import tiny_env_args

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread

PAD_ROWS = 64


def padded_qwen2(vocab: int, seed: int = 0) -> Qwen2ForCausalLM:
    """A tiny random Qwen2 with PAD_ROWS extra head rows whose logits dominate: any code that samples
    or normalises over the whole head picks (or leaks mass to) ids the env does not have."""
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=vocab + PAD_ROWS, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=1, pad_token_id=2, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[vocab:] = model.lm_head.weight[vocab:].sign() * 3.0
    return model.eval()


def test_rollouts_sample_and_score_only_the_env_actions():
    tok = build_tokenizer()
    policy = LMPolicy(padded_qwen2(len(tok)), tok)
    assert policy.num_actions == len(tok)
    config = TrainConfig(env="rlenv/TextGen-v0", env_args=tiny_env_args(), steps=1, batch_size=8)
    envs = make_envs(config, tok)
    batch = collect_rollouts(policy, envs, seed=0)  # the env raises on an out-of-range action
    assert int(batch.actions[batch.response_mask.bool()].max()) < len(tok)
    scores = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length)
    mask = batch.response_mask.bool()
    torch.testing.assert_close(scores.logprobs[mask], batch.logprobs[mask], atol=1e-5, rtol=1e-4)
    # normalised over the V real actions: a plain forward sliced to V gives the same numbers
    positions = (batch.attention_mask.cumsum(-1) - 1).clamp_min(0)
    logits = policy.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                          position_ids=positions).logits[:, batch.prompt_length - 1 : -1, : len(tok)]
    want = torch.log_softmax(logits.float(), -1).gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(scores.logprobs[mask], want[mask], atol=1e-5, rtol=1e-4)
    envs.close()


def test_a_tokenizer_larger_than_the_head_is_refused():
    tok = build_tokenizer()
    with pytest.raises(ValueError, match="resize the model's embeddings"):
        LMPolicy(build_model("gpt2", len(tok) - 5), tok)


def test_reference_is_scored_at_the_temperature_without_the_policy_filter():
    tok = build_tokenizer()
    policy = LMPolicy(build_model("gpt2", len(tok), dropout=0.0), tok, sampling=SamplingConfig(0.7, top_k=3))
    reference = policy.reference()
    ids = torch.tensor([tok.convert_tokens_to_ids(["the", "movie", "was", "very", "good", "!"])])
    mask = torch.ones_like(ids)
    got = reference.score_sequences(ids, mask, 3).logprobs
    logits = policy.model(input_ids=ids, attention_mask=mask).logits[:, 2:-1].float()
    want = torch.log_softmax(logits / 0.7, -1).gather(-1, ids[:, 3:, None]).squeeze(-1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    # the policy's own logprobs are those of its filtered distribution: larger (renormalised over 3 tokens)
    filtered = policy.score_sequences(ids, mask, 3).logprobs
    assert (filtered > got + 1e-3).all()


@pytest.mark.parametrize("algo", ["reinforce", "ppo", "rloo", "grpo"])
def test_train_runs_every_algorithm_on_a_padded_qwen2(tmp_path, algo):
    tok = build_tokenizer()
    model_dir = tmp_path / "qwen2-padded"
    padded_qwen2(len(tok)).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    result = train(TrainConfig(algo=algo, env="rlenv/TextGen-v0", model=str(model_dir), env_args=tiny_env_args(),
                               steps=3, batch_size=8, group_size=4, lr=1e-3, out=str(tmp_path / "run"),
                               device="cpu", checkpoint_every=0))
    assert [r["step"] for r in result.metrics] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.metrics)


def test_bf16_autocast_keeps_weights_and_logprobs_fp32(tmp_path):
    """--precision bf16 runs the forward passes in bfloat16 (CPU autocast here, the same call on a
    GPU); master weights, logprobs and the value head's outputs stay fp32 and close to the fp32 run."""
    tok = build_tokenizer()
    policy = LMPolicy(build_model("gpt2", len(tok), dropout=0.0), tok, value_head=True)
    ids = torch.tensor([tok.convert_tokens_to_ids(["the", "movie", "was", "very", "good", "!"])])
    mask = torch.ones_like(ids)
    fp32 = policy.score_sequences(ids, mask, 3, with_values=True)
    policy.autocast_dtype = torch.bfloat16
    bf16 = policy.score_sequences(ids, mask, 3, with_values=True)
    assert bf16.logprobs.dtype == bf16.values.dtype == torch.float32
    assert not torch.equal(bf16.logprobs, fp32.logprobs)  # autocast really ran
    torch.testing.assert_close(bf16.logprobs, fp32.logprobs, atol=0.1, rtol=0.05)
    assert policy.reference().autocast_dtype == torch.bfloat16

    model_dir = tmp_path / "m"
    build_model("gpt2", len(tok), dropout=0.0).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    result = train(TrainConfig(algo="ppo", env="rlenv/TextGen-v0", model=str(model_dir), env_args=tiny_env_args(),
                               steps=2, batch_size=8, precision="bf16", out=str(tmp_path / "run"), device="cpu"))
    trained = LMPolicy.from_pretrained(result.checkpoint, device="cpu", value_head=True)
    assert all(p.dtype == torch.float32 for p in trained.parameters())
    assert all(isinstance(r["loss"], float) for r in result.metrics)
