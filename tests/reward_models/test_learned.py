"""ScalarRewardModel: first-token head, reward protocol, safetensors save/load."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig

from reward_models import RewardModelError, make, score
from reward_models.learned import ScalarRewardModel


def tiny(tokenizer, **kwargs):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return ScalarRewardModel.from_config(config, tokenizer, max_length=32, **kwargs).eval()


def test_forward_reads_the_first_token(word_tokenizer):
    model = tiny(word_tokenizer)
    batch = model.tokenize(["the movie was great", "bad"])
    scores = model(**batch)
    assert scores.shape == (2,)
    hidden = model.encoder(**batch).last_hidden_state[:, 0]  # (B, H)
    assert torch.allclose(scores, model.head(hidden).squeeze(-1))


def test_reward_protocol_scores_prompt_plus_completion(word_tokenizer):
    model = tiny(word_tokenizer)
    prompts, completions = ["the movie ", "the plot "], ["was great", "was bad"]
    rewards = score(model, prompts, completions).rewards
    assert rewards == pytest.approx(model.predict(["the movie was great", "the plot was bad"]).tolist())
    completion_only = tiny(word_tokenizer, include_prompt=False)
    assert completion_only(prompts, completions) == pytest.approx(model.predict(completions).tolist())
    assert not any(p.requires_grad for p in [torch.tensor(rewards)])


def test_batched_scoring_matches_single(word_tokenizer):
    model = tiny(word_tokenizer)
    model.batch_size = 2
    texts = ["the movie was great", "bad", "a very bad plot is not good", "ok"]
    together = model([""] * 4, texts)
    alone = [model([""], [t])[0] for t in texts]
    assert together == pytest.approx(alone, abs=1e-5)


def test_class_head_rewards_probability_of_reward_label(word_tokenizer):
    model = tiny(word_tokenizer, num_labels=3, labels=["neg", "neu", "pos"])
    [r] = model([""], ["great"])
    logits = model.predict(["great"])
    assert r == pytest.approx(logits.softmax(-1)[0, 2].item())


def test_save_load_is_bit_exact_and_safetensors_only(word_tokenizer, tmp_path):
    model = tiny(word_tokenizer, num_labels=2, labels=["bad", "good"], include_prompt=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # make it differ from any fresh init
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    meta = json.loads((tmp_path / "reward_model.json").read_text())
    assert meta["labels"] == ["bad", "good"] and meta["include_prompt"] is False
    loaded = make("learned", path=str(tmp_path))
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    texts = ["the movie was great", "not good"]
    assert loaded([""] * 2, texts) == model([""] * 2, texts)
    assert loaded.include_prompt is False and loaded.labels == ["bad", "good"]


def test_from_pretrained_guards(tmp_path, word_tokenizer):
    with pytest.raises(RewardModelError, match="is not a saved reward model"):
        ScalarRewardModel.from_pretrained(tmp_path)
    model = tiny(word_tokenizer)
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error type
        ScalarRewardModel.from_pretrained(tmp_path)
    with pytest.raises(RewardModelError, match="does not exist"):
        ScalarRewardModel.from_encoder(tmp_path / "missing")


def test_from_encoder_checkpoint(tmp_path, word_tokenizer):
    from transformers import BertModel

    model = tiny(word_tokenizer)
    model.encoder.save_pretrained(tmp_path, safe_serialization=True)
    word_tokenizer.save_pretrained(tmp_path)
    fresh = ScalarRewardModel.from_encoder(tmp_path)
    assert isinstance(fresh.encoder, BertModel)
    enc_a, enc_b = model.encoder.state_dict(), fresh.encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)


def test_tokenizer_without_pad_or_eos_is_rejected(word_tokenizer):
    import copy

    broken = copy.deepcopy(word_tokenizer)
    broken.pad_token = None
    with pytest.raises(RewardModelError, match="neither a pad nor an EOS token"):
        tiny(broken)


def test_called_by_keyword_it_scores_text(word_tokenizer):
    rm = tiny(word_tokenizer)
    assert rm(prompts=["the movie"], completions=["good"]) == pytest.approx(rm(["the movie"], ["good"]))
