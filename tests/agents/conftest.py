"""Fixtures for the agent tests: a word-level tokenizer and tiny random-init causal LMs of four families."""

from __future__ import annotations

import warnings

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from agents.training.policy import LMPolicy, SamplingConfig

WORDS = (
    "the a movie film was is great good bad awful fine food service slow fast and but very not "
    "i liked it hated this place room hotel clean dirty 0 1 2 3 4 5 6 7 8 9 + = . , !"
).split()
PROMPTS = ["the movie was", "the food was", "i liked the hotel", "the service was very", "a film"]
ARCHS = ("gpt2", "llama", "qwen2", "neox")


def build_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<unk>", "<|endoftext|>", "<|pad|>"]
    core = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(specials + WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", eos_token="<|endoftext|>", pad_token="<|pad|>"
    )


def build_model(arch: str, vocab_size: int, seed: int = 0, dropout: float = 0.1):
    """A 2-layer, 32-wide random-init causal LM; dropout on, so tests see that the policy turns it off."""
    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=1, pad_token_id=2)
    if arch == "gpt2":
        cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, resid_pdrop=dropout,
                         embd_pdrop=dropout, attn_pdrop=dropout, **common)
        return GPT2LMHeadModel(cfg)
    small = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64, **common)
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(num_key_value_heads=1, attention_dropout=dropout, **small))
    if arch == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=1, attention_dropout=dropout, **small))
    if arch == "neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(hidden_dropout=dropout, attention_dropout=dropout, **small))
    raise ValueError(arch)


def make_policy(arch: str = "gpt2", *, sampling: SamplingConfig | None = None, **kw) -> LMPolicy:
    tok = build_tokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's fan_in_fan_out note for GPT-2's Conv1D
        return LMPolicy(build_model(arch, len(tok)), tok, sampling=sampling or SamplingConfig(), **kw)


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.fixture
def gpt2_policy() -> LMPolicy:
    return make_policy("gpt2", value_head=True)


def boost_tokens(policy: LMPolicy, token_ids: list[int], bias: float) -> LMPolicy:
    """Add ``bias`` to the logits of ``token_ids`` (a forward hook on the output head, any architecture)."""

    def hook(module, inputs, output):
        output = output.clone()
        output[..., token_ids] += bias
        return output

    policy.model.get_output_embeddings().register_forward_hook(hook)
    return policy


def count_good(prompts, completions, **kwargs):
    """Reward: occurrences of 'good' or 'great' in the completion."""
    return [float(sum(w in ("good", "great") for w in c.split())) for c in completions]


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module of tiny-model tests (see helpers_trainers.one_torch_thread)."""
    from tests.agents.helpers_trainers import one_torch_thread

    yield from one_torch_thread()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A tiny random GPT-2 saved with save_pretrained, loaded by path like any real model (one per module)."""
    from tests.agents.helpers_trainers import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny_gpt2"))
