"""``rlenv/TokenReverse-v0``: reverse a short sequence of symbols, no language model needed.

A teaching task for RL before LMs: the vocabulary is a handful of symbols, so stock SB3
``PPO("MultiInputPolicy")`` learns it from the observation alone. The prompt is ``length`` random
symbols; the agent must emit them in reverse order, then EOS. Reward, at the end: the fraction of
positions right, plus ``eos_bonus`` when the episode ends by EOS right after the last symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

EOS, PAD, UNK = "<eos>", "<pad>", "<unk>"


def symbol_tokenizer(symbols: Sequence[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``symbols`` plus pad/EOS/unk, built in memory (no files)."""
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *symbols])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins symbols with spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=PAD, unk_token=UNK)


class ReverseReward:
    """Fraction of the reversed prompt reproduced position by position, plus an EOS bonus."""

    name = "token_reverse"

    def __init__(self, eos_bonus: float = 0.0) -> None:
        self.eos_bonus = eos_bonus

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        rewards = []
        for prompt, completion in zip(prompts, completions, strict=True):
            target, got = prompt.split()[::-1], completion.split()
            hits = sum(t == g for t, g in zip(target, got, strict=False))
            exact_length = len(got) == len(target)
            rewards.append(hits / len(target) + (self.eos_bonus if exact_length else 0.0))
        return rewards


def token_reverse(length: int = 3, num_symbols: int = 4, eos_bonus: float = 0.0, **env_kwargs: Any) -> dict[str, Any]:
    """TextGenEnv kwargs for the reversal toy (``length`` symbols out of ``num_symbols``)."""
    if not 1 <= num_symbols <= 26:
        raise ValueError(f"num_symbols must be in [1, 26], got {num_symbols}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    symbols = [chr(ord("a") + i) for i in range(num_symbols)]

    def draw(rng: np.random.Generator) -> str:
        return " ".join(symbols[i] for i in rng.integers(num_symbols, size=length))

    draw.__name__ = f"random {length}-symbol strings over {''.join(symbols)}"
    defaults = dict(tokenizer=symbol_tokenizer(symbols), prompts=draw, reward_model=ReverseReward(eos_bonus),
                    max_prompt_tokens=length, max_new_tokens=length + 1)
    return {**defaults, **env_kwargs}
