"""Shared set-up of the trainer, checkpoint and CLI tests: a tiny saved GPT-2 and a matching TrainConfig.

The model is the core tests' 2-layer, 32-wide random GPT-2 over a word-level vocabulary, saved with
``save_pretrained`` so that the trainer loads it by path like any real model; the env is the generic
``rlenv/TextGen-v0`` with a handful of prompts and the VADER reward, which is cheap and has words to find.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from agents.training.config import TrainConfig
from tests.agents.conftest import PROMPTS, build_model, build_tokenizer


def save_tiny_model(path: Path, seed: int = 0) -> str:
    tokenizer = build_tokenizer()
    model = build_model("gpt2", len(tokenizer), seed=seed, dropout=0.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def tiny_env_args(max_new_tokens: int = 6) -> tuple[str, ...]:
    return (f"prompts={json.dumps(PROMPTS)}", "reward_model=vader", "max_prompt_tokens=8",
            f"max_new_tokens={max_new_tokens}")


def tiny_config(model: str, out: Path, **overrides: Any) -> TrainConfig:
    """Two updates of 8 episodes of 6 tokens each: a whole run takes well under a second per update."""
    fields: dict[str, Any] = dict(
        env="rlenv/TextGen-v0", model=model, env_args=tiny_env_args(), steps=2, batch_size=8, group_size=4,
        lr=1e-3, seed=0, out=str(out), device="cpu", checkpoint_every=1,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def one_torch_thread() -> Iterator[None]:
    """Body of a module fixture: the tiny model's matmuls are microseconds, and on a shared 2-core
    machine torch's thread pool makes them 20x slower, so these tests run single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
