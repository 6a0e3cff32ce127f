"""The two model sizes the benchmarks compare at, both built offline from the embedded tokenizer.

``embedded``: ``rlenv.DEFAULT_MODEL`` itself (GPT-2, 4 layers x 224, 3.4M parameters).
``28m``: a random-init GPT-2 of 8 layers x 512 (8 heads) over the same 4,096-token tokenizer,
27.5M parameters, seeded, so every run builds the same weights. Random weights change neither
the cost of a forward pass nor what the frameworks do per token; the benchmarks time work, not
learning.
``120m`` (not in the default pair; for GPU runs): a random-init GPT-2 of 16 layers x 768 (12 heads)
over the same tokenizer, ~117M parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch

import rlenv

SIZES = ("embedded", "28m")
"""the sizes ``--size both`` runs"""
SHAPES = {"28m": (8, 512, 8), "120m": (16, 768, 12)}
"""random-init sizes: (layers, width, heads)"""


def model_dir(size: str, scratch: Path) -> str:
    """A local model directory for ``size`` (``scratch`` receives the built one)."""
    if size == "embedded":
        return str(rlenv.DEFAULT_MODEL)
    if size not in SHAPES:
        raise ValueError(f"unknown size {size!r}; choose from {('embedded', *SHAPES)}")
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    layers, width, heads = SHAPES[size]
    out = Path(scratch) / f"gpt2-{layers}x{width}"
    if (out / "config.json").exists():
        return str(out)
    tokenizer = AutoTokenizer.from_pretrained(str(rlenv.DEFAULT_MODEL))
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=layers, n_embd=width, n_head=heads, n_positions=256,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)
