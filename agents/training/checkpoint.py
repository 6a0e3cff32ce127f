"""Checkpoints: the policy (``save_pretrained``) plus everything else a resumed run needs to continue exactly.

Layout of one checkpoint directory ``out/checkpoints/step_000010/``::

    config.json  model.safetensors  tokenizer files  [value_head.safetensors]  [lora_adapter/]
    trainer_state.pt   # optimizer, step, episodes, elapsed time, algorithm state (KL controller,
                       # baseline, minibatch generator), RNG states of torch / numpy / random

``trainer_state.pt`` holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``. A checkpoint is written to a temporary directory and renamed into
place, so a run killed while saving never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from agents.training.config import TrainConfig

STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "train_config.json"
CHECKPOINTS_DIR = "checkpoints"


class CheckpointError(FileNotFoundError):
    """No usable checkpoint where one was expected; the message names the path and the fix."""


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch, numpy and ``random`` (numpy's as tensors, for weights_only loads)."""
    state_tuple = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = state_tuple
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | Path, step: int, policy: Any, trainer_state: dict[str, Any],
                    config: TrainConfig, *, keep: int = 2) -> Path:
    """Write ``run_dir/checkpoints/step_{step:06d}`` atomically and keep only the ``keep`` newest."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp_step_{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(tmp)
    torch.save(trainer_state, tmp / STATE_FILE)
    (tmp / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Finished checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if (p / STATE_FILE).exists())


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the newest checkpoint of a run directory."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    found = list_checkpoints(path)
    if found:
        return found[-1]
    if not path.exists():
        raise CheckpointError(f"--resume {str(path)!r} does not exist; pass the run's --out directory or one of its checkpoints")
    raise CheckpointError(
        f"no checkpoint in {str(path)!r} (looked for {STATE_FILE} there and in {CHECKPOINTS_DIR}/step_*); "
        "a run writes one every --checkpoint-every updates and at its end"
    )


def load_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any], TrainConfig]:
    """(checkpoint directory, trainer state, the config it was trained with)."""
    ckpt = find_checkpoint(path)
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(json.loads((ckpt / CONFIG_FILE).read_text()))
    return ckpt, state, config


def saved_config(path: str | Path) -> TrainConfig:
    """The config a run (or one checkpoint) was trained with: the defaults of ``rlenv train --resume``."""
    ckpt = find_checkpoint(path)
    return TrainConfig.from_dict(json.loads((ckpt / CONFIG_FILE).read_text()))
