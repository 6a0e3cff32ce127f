"""Shared fixtures: one CPU thread, small tokenizers and data files built in the test."""

from __future__ import annotations

import pytest
import torch

from reward_models.datasets import preference_pairs, sentiment_dataset, write_jsonl


@pytest.fixture(autouse=True)
def _one_thread():
    # The CI box has 2 shared cores: one thread per test process is faster and steadier.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def sentiment_rows():
    return sentiment_dataset(800, seed=0)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory, sentiment_rows):
    """JSONL files for the three losses: mse (text, score), ce (text, label), bt (chosen, rejected)."""
    root = tmp_path_factory.mktemp("rm_data")
    return {
        "mse": write_jsonl([{"text": e.text, "score": e.score} for e in sentiment_rows], root / "mse.jsonl"),
        "ce": write_jsonl([{"text": e.text, "label": e.label} for e in sentiment_rows], root / "ce.jsonl"),
        "bt": write_jsonl(preference_pairs(500, seed=0), root / "bt.jsonl"),
    }


@pytest.fixture(scope="session")
def word_tokenizer():
    """A tiny BERT-style word-level tokenizer built with the `tokenizers` library."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = "the movie was great terrible good bad film plot ok not very a is".split()
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
