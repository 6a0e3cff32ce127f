"""Fixtures for the env tests: a tiny word-level tokenizer built here, and simple reward functions."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

WORDS = (
    "the a movie film was is great good bad awful fine food service slow fast and but very not "
    "i liked it hated this place room hotel clean dirty 0 1 2 3 4 5 6 7 8 9 + = . , !"
).split()


def build_word_tokenizer(eos: bool = True, pad: bool = True) -> PreTrainedTokenizerFast:
    specials = ["<unk>"] + (["<|endoftext|>"] if eos else []) + (["<|pad|>"] if pad else [])
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    from tokenizers import decoders

    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    kwargs = {"unk_token": "<unk>"}
    if eos:
        kwargs["eos_token"] = "<|endoftext|>"
    if pad:
        kwargs["pad_token"] = "<|pad|>"
    return PreTrainedTokenizerFast(tokenizer_object=core, **kwargs)


@pytest.fixture(scope="session")
def word_tokenizer() -> PreTrainedTokenizerFast:
    return build_word_tokenizer()


@pytest.fixture(scope="session")
def word_tokenizer_path(tmp_path_factory, word_tokenizer) -> str:
    path = tmp_path_factory.mktemp("word_tokenizer")
    word_tokenizer.save_pretrained(path)
    return str(path)


def count_good(prompts, completions, **kwargs):
    """Reward: number of times 'good' or 'great' appears in the completion."""
    return [float(c.split().count("good") + c.split().count("great")) for c in completions]


PROMPTS = ["the movie was", "the food was", "i liked the hotel", "the service was very"]
