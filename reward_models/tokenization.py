"""Tokenizers for learned reward models: load a local one, or train a small word-level one on data."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reward_models.base import RewardModelError

logger = logging.getLogger(__name__)

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"


def train_word_tokenizer(texts: Iterable[str], vocab_size: int = 4000, min_frequency: int = 1) -> Any:
    """A lower-casing word-level tokenizer trained on ``texts``, wrapped as ``PreTrainedTokenizerFast``.

    It prepends ``[CLS]`` to every text (the learned reward model reads the first token) and pads
    with ``[PAD]`` (id 0); unseen words map to ``[UNK]``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK, CLS, SEP]
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A",
        pair=f"{CLS} $A {SEP} $B",
        special_tokens=[(CLS, tok.token_to_id(CLS)), (SEP, tok.token_to_id(SEP))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, unk_token=UNK, cls_token=CLS, sep_token=SEP, padding_side="right"
    )


def prepare_tokenizer(tokenizer: Any, who: str = "reward model") -> Any:
    """Check that ``tokenizer`` can pad batches and pads on the right (the head reads token 0).

    A tokenizer with an EOS but no pad token (GPT-2 style) pads with its EOS; one with neither is
    rejected with an error saying how to fix it.
    """
    if getattr(tokenizer, "pad_token", None) is None:
        if getattr(tokenizer, "eos_token", None) is None:
            raise RewardModelError(
                f"{who}: the tokenizer has neither a pad nor an EOS token, so batches cannot be padded; "
                "set tokenizer.pad_token (e.g. tokenizer.add_special_tokens({'pad_token': '[PAD]'}))"
            )
        logger.info("%s: tokenizer has no pad token; padding with its EOS token %r", who, tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_tokenizer(path: str | Path, who: str = "reward model") -> Any:
    """Load a tokenizer from a local directory (never downloads, never runs remote code)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise RewardModelError(
            f"{who}: tokenizer directory {path} does not exist; pass a local tokenizer path"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise RewardModelError(f"{who}: could not load a tokenizer from {path}: {exc}") from exc
    return prepare_tokenizer(tokenizer, who)
