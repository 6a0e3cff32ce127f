import math
import warnings

import pytest
import torch
from safetensors.torch import save_file

from agents.training.policy import (
    LMPolicy,
    SamplingConfig,
    position_ids_from_mask,
    resolve_device,
    sampling_logprobs,
)
from tests.agents.conftest import ARCHS, build_model, build_tokenizer, make_policy


def encode_left_padded(tokenizer, texts, P):
    rows = [tokenizer(t)["input_ids"] for t in texts]
    ids = torch.full((len(rows), P), tokenizer.pad_token_id)
    mask = torch.zeros(len(rows), P, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, P - len(r) :] = torch.tensor(r)
        mask[i, P - len(r) :] = 1
    return ids, mask


# ---- sampling distribution ---------------------------------------------------------------
def test_temperature_top_k_top_p():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    torch.testing.assert_close(
        sampling_logprobs(logits, SamplingConfig(temperature=2.0)), torch.log_softmax(logits / 2, -1)
    )
    top2 = sampling_logprobs(logits, SamplingConfig(top_k=2))
    torch.testing.assert_close(top2[:2], torch.log_softmax(logits[:2], -1))
    assert torch.isinf(top2[2:]).all()
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    nucleus = sampling_logprobs(probs.log(), SamplingConfig(top_p=0.7))  # 0.5 < 0.7 <= 0.8: keep two
    torch.testing.assert_close(nucleus[:2].exp(), torch.tensor([0.625, 0.375]))
    assert torch.isinf(nucleus[2:]).all()
    kept = sampling_logprobs(probs.log(), SamplingConfig(top_p=0.7), keep=torch.tensor(3))
    assert torch.isfinite(kept[3]) and torch.isinf(kept[2])


@pytest.mark.parametrize("bad", [dict(temperature=0.0), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5)])
def test_sampling_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SamplingConfig(**bad)


def test_position_ids_ignore_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_device_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


# ---- scoring -------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_left_padded_scoring_matches_unpadded(arch):
    policy = make_policy(arch, value_head=True)
    tok = policy.tokenizer
    P = 6
    texts = ["the movie was good", "a film"]
    response = torch.tensor([tok.convert_tokens_to_ids(["very", "good", "!"])] * 2)
    ids, mask = encode_left_padded(tok, texts, P)
    ids = torch.cat([ids, response], 1)
    mask = torch.cat([mask, torch.ones_like(response)], 1)
    batch = policy.score_sequences(ids, mask, P, with_values=True)
    short = torch.tensor([tok("a film")["input_ids"]])
    alone = policy.score_sequences(
        torch.cat([short, response[:1]], 1), torch.ones(1, 5, dtype=torch.long), 2, with_values=True
    )
    torch.testing.assert_close(batch.logprobs[1:], alone.logprobs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch.values[1:], alone.values, atol=1e-5, rtol=1e-4)


def test_scoring_skips_unused_columns_without_changing_the_scores():
    """Prompt columns padded in every row and response columns after every episode ended are not
    run through the model; the scores of the real columns equal a forward over every column."""
    policy = make_policy("gpt2", value_head=True)
    tok = policy.tokenizer
    P, T = 8, 6
    ids, mask = encode_left_padded(
        tok, ["the movie was good", "a film"], P
    )  # columns 0.. are pad in both rows
    response = torch.tensor([tok.convert_tokens_to_ids(["very", "good", "!"])] * 2)
    ids = torch.cat([ids, response, torch.full((2, T - 3), tok.pad_token_id)], 1)
    mask = torch.cat([mask, torch.tensor([[1, 1, 1], [1, 1, 0]]), torch.zeros(2, T - 3, dtype=torch.long)], 1)
    scores = policy.score_sequences(ids, mask, P, with_values=True, with_entropy=True)
    assert scores.logprobs.shape == scores.values.shape == scores.entropy.shape == (2, T)
    logits, values, _ = policy.forward_tokens(
        ids, mask, position_ids_from_mask(mask), logits_to_keep=T + 1, with_values=True
    )
    full_logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, P:, None]).squeeze(-1)
    real = mask[:, P:].bool()
    torch.testing.assert_close(scores.logprobs[real], full_logp[real], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores.values[real], values[:, :-1][real], atol=1e-5, rtol=1e-4)
    assert (scores.logprobs[:, 3:] == 0).all()  # after the longest episode: not run, zero-padded
    policy.shared_scoring = False  # the one padded forward scores every column up to the longest episode
    padded = policy.score_sequences(ids, mask, P, with_values=True)
    torch.testing.assert_close(padded.values[:, :3], values[:, :3], atol=1e-5, rtol=1e-4)


def test_dropout_off_in_train_mode_but_gradients_flow(tokenizer):
    policy = make_policy("gpt2", value_head=True)
    policy.train()
    assert policy.training and not policy.model.training
    ids = torch.randint(3, len(tokenizer), (2, 8))
    mask = torch.ones_like(ids)
    a = policy.score_sequences(ids, mask, 4, with_values=True, with_entropy=True)
    b = policy.score_sequences(ids, mask, 4, with_values=True, with_entropy=True)
    torch.testing.assert_close(a.logprobs, b.logprobs, rtol=0, atol=0)
    (a.logprobs.sum() + a.values.sum() + a.entropy.sum()).backward()
    grads = {n: p.grad for n, p in policy.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "wpe" not in n)
    assert grads["value_head.weight"].abs().sum() > 0


def test_entropy_is_of_the_sampling_distribution():
    policy = make_policy("llama", sampling=SamplingConfig(top_k=3))
    ids = torch.randint(3, 40, (2, 6))
    ent = policy.score_sequences(ids, torch.ones_like(ids), 3, with_entropy=True).entropy
    assert (ent <= math.log(3) + 1e-5).all() and (ent > 0).all()


def test_value_head_required_for_values():
    policy = make_policy("gpt2")
    ids = torch.randint(3, 40, (1, 4))
    with pytest.raises(ValueError, match="value_head=True"):
        policy.score_sequences(ids, torch.ones_like(ids), 2, with_values=True)


# ---- reference -----------------------------------------------------------------------------
def test_reference_is_a_frozen_copy(gpt2_policy):
    ref = gpt2_policy.reference()
    assert ref.value_head is None and ref.model is not gpt2_policy.model
    assert not any(p.requires_grad for p in ref.parameters())
    ids = torch.randint(3, 40, (2, 6))
    out = ref.score_sequences(ids, torch.ones_like(ids), 3)
    assert not out.logprobs.requires_grad
    torch.testing.assert_close(
        out.logprobs, gpt2_policy.score_sequences(ids, torch.ones_like(ids), 3).logprobs
    )
    with torch.no_grad():
        for p in gpt2_policy.model.parameters():  # training the policy leaves the reference alone
            p.add_(0.1 * torch.randn_like(p))
    assert not torch.allclose(
        out.logprobs, gpt2_policy.score_sequences(ids, torch.ones_like(ids), 3).logprobs
    )
    torch.testing.assert_close(ref.score_sequences(ids, torch.ones_like(ids), 3).logprobs, out.logprobs)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_lora_trains_adapters_only_and_reference_shares_weights(arch):
    base = make_policy(arch)
    ids = torch.randint(3, 40, (2, 6))
    mask = torch.ones_like(ids)
    base_lp = base.score_sequences(ids, mask, 3).logprobs.detach()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = LMPolicy(base.model, base.tokenizer, lora_rank=4, value_head=True)
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("value_head") for n in trainable)
    ref = policy.reference()
    assert ref.model is policy.model and list(ref.parameters()) == []
    with torch.no_grad():  # move the adapters away from their zero init
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    torch.testing.assert_close(ref.score_sequences(ids, mask, 3).logprobs, base_lp)
    assert not torch.allclose(policy.score_sequences(ids, mask, 3).logprobs, base_lp)


# ---- save / load ---------------------------------------------------------------------------
@pytest.mark.parametrize("lora_rank", [0, 4])
def test_save_and_load_round_trip(tmp_path, lora_rank):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = make_policy("gpt2", value_head=True, lora_rank=lora_rank)
        with torch.no_grad():
            for n, p in policy.named_parameters():
                if "lora_B" in n:
                    p.normal_(std=0.5)
        policy.save_pretrained(tmp_path)
        loaded = LMPolicy.from_pretrained(tmp_path, value_head=True, device="cpu")
    assert not list(tmp_path.glob("*.bin")) and (tmp_path / "value_head.safetensors").exists()
    ids = torch.randint(3, 40, (2, 7))
    mask = torch.ones_like(ids)
    want = policy.score_sequences(ids, mask, 3, with_values=True)
    got = loaded.score_sequences(ids, mask, 3, with_values=True)
    torch.testing.assert_close(got.logprobs, want.logprobs)
    torch.testing.assert_close(got.values, want.values)
    if lora_rank:
        torch.testing.assert_close(
            loaded.reference().score_sequences(ids, mask, 3).logprobs,
            policy.reference().score_sequences(ids, mask, 3).logprobs,
        )


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_loads_and_saves_draw_no_transformers_bars_and_leave_them_on(tmp_path, capfd, lora_rank):
    """From Python (no CLI): transformers' "Loading weights" / "Writing model shards" bars stay out of
    rlenv's loads and saves, and the user's setting (bars on) is what it was afterwards."""
    import os

    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
        pytest.skip("HF_HUB_DISABLE_PROGRESS_BARS is set: there are no bars to hide")
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_policy("gpt2", lora_rank=lora_rank).save_pretrained(tmp_path)
            LMPolicy.from_pretrained(tmp_path, device="cpu")
        ours = capfd.readouterr().err
        assert hf_logging.is_progress_bar_enabled()
        AutoModelForCausalLM.from_pretrained(tmp_path)  # the user's own load still draws its bar
        theirs = capfd.readouterr().err
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
    assert "Loading weights" not in ours and "Writing model shards" not in ours, ours
    assert "Loading weights" in theirs


def test_from_pretrained_is_safetensors_only_and_never_trusts_remote_code(tmp_path, monkeypatch):
    make_policy("gpt2").save_pretrained(tmp_path)
    import transformers

    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    LMPolicy.from_pretrained(tmp_path, device="cpu")
    assert seen["use_safetensors"] is True and seen["trust_remote_code"] is False


def test_from_pretrained_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LMPolicy.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        LMPolicy.from_pretrained(tmp_path)
    model = build_model("gpt2", len(build_tokenizer()))
    model.config.save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="safe_serialization=True"):
        LMPolicy.from_pretrained(tmp_path)
    save_file(
        {"weight": torch.zeros(1, 32), "bias": torch.zeros(1)}, str(tmp_path / "value_head.safetensors")
    )
    with pytest.raises(FileNotFoundError, match="no safetensors weights"):
        LMPolicy.from_pretrained(tmp_path)


def test_tokenizer_without_pad_or_eos_is_refused(tmp_path):
    tok = build_tokenizer()
    model = build_model("gpt2", len(tok))
    model.save_pretrained(tmp_path)
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="pad_token"):
        LMPolicy.from_pretrained(tmp_path)
    tok.eos_token = None
    with pytest.raises(ValueError, match="eos_token"):
        LMPolicy(model, tok)


def test_sample_categorical_follows_the_distribution_and_skips_filtered_tokens():
    from agents.training.policy import sample_categorical

    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.1, 0.0, 0.6, 0.3])
    draws = sample_categorical(p.log().expand(100_000, 4), g).flatten()
    freq = torch.bincount(draws, minlength=4).double() / draws.numel()
    assert freq[1] == 0
    torch.testing.assert_close(freq, p.double(), atol=0.01, rtol=0)
    top1 = sampling_logprobs(torch.tensor([[0.0, 5.0, 1.0]]), SamplingConfig(top_k=1))
    assert (sample_categorical(top1.expand(1000, 3), g) == 1).all()


def test_sampling_from_non_finite_logits_raises_runtime_error():
    policy = make_policy("gpt2")
    logits = torch.zeros(3, len(policy.tokenizer))
    logits[1, 5] = float("nan")
    with pytest.raises(RuntimeError, match="not finite"):
        policy.sample(logits)


def test_tanh_gelu_is_fused_without_changing_the_function_or_the_saved_model(tmp_path):
    from transformers.activations import NewGELUActivation

    from agents.training.policy import fuse_tanh_gelu

    original = build_model("gpt2", 64).eval()
    policy = LMPolicy(build_model("gpt2", 64), build_tokenizer())  # same seed: the same weights
    assert not any(isinstance(m, NewGELUActivation) for m in policy.model.modules())
    assert sum(isinstance(m, torch.nn.GELU) for m in policy.model.modules()) == 2  # one per layer
    assert fuse_tanh_gelu(build_model("llama", 64)) == 0  # SiLU models are left alone
    ids = torch.randint(3, 64, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = original(input_ids=ids).logits
    got = policy.model(input_ids=ids).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    expected.square().mean().backward()
    got.square().mean().backward()
    for (name, p), q in zip(original.named_parameters(), policy.model.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-4, msg=name)
    policy.save_pretrained(tmp_path)
    assert '"activation_function": "gelu_new"' in (tmp_path / "config.json").read_text()
