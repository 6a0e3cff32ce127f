"""Train a learned reward model (seeds 001/003/004): ``train_reward_model(RMTrainConfig(...))``.

The config's fields map one to one onto the flags of ``rlenv rm train`` (``--loss --data --model
--out`` and the optional rest).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from reward_models.data import LOSSES, load_examples, train_val_split
from reward_models.learned import META_FILE, ScalarRewardModel
from reward_models.objectives import Objective, make_objective
from reward_models.tokenization import load_tokenizer, prepare_tokenizer, train_word_tokenizer

logger = logging.getLogger(__name__)


class RMTrainError(RuntimeError):
    """Reward-model training was misconfigured or diverged."""


@dataclass(frozen=True)
class RMTrainConfig:
    """Hyper-parameters of rlenv rm train (reward_models.training.train_reward_model)."""

    loss: Literal["mse", "ce", "bt"]
    """mse: regress scores; ce: classify labels; bt: Bradley–Terry on preference pairs."""
    data: str
    """Training file, .jsonl or .csv (schemas in reward_models.data)."""
    tokenizer: str | None = None
    """Local tokenizer directory (e.g. rlenv.DEFAULT_MODEL). None: the one saved with --model, else a
    word-level tokenizer trained on the data."""
    model: str | None = None
    """Start from this local checkpoint: a saved reward model, or any HF encoder directory."""
    out: str | None = None
    """Directory to save the trained model (save_pretrained) and train_metrics.json into."""
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    val_fraction: float = 0.2
    max_length: int = 64
    include_prompt: bool = True
    """Whether the saved reward model scores prompt + completion (True) or the completion alone."""
    margin: float = 0.0
    """bt only: extra margin added to every pair's own margin."""
    max_grad_norm: float = 1.0
    device: str = "cpu"
    # Encoder size when training from scratch (a BertConfig); ignored with --model.
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1
    vocab_size: int = 4000
    """Vocabulary size of the word-level tokenizer trained when no tokenizer is given."""


@dataclass(frozen=True)
class RMProgress:
    """One progress event: after every optimiser step, and with ``metrics`` at the end of each epoch."""

    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class RMTrainResult:
    """What training produced: per-epoch history, final validation and constant-baseline metrics."""

    history: list[dict[str, float]]
    val_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    out: str | None
    num_train: int
    num_val: int
    model: ScalarRewardModel = field(repr=False, compare=False)


def validate_config(config: RMTrainConfig) -> None:
    """Raise :class:`RMTrainError` listing every problem with ``config``, before any heavy work."""
    problems = []
    if config.loss not in LOSSES:
        problems.append(f"--loss must be one of {', '.join(LOSSES)}, got {config.loss!r}")
    if not Path(config.data).is_file():
        problems.append(f"--data {config.data} does not exist")
    for name in ("tokenizer", "model"):
        value = getattr(config, name)
        if value is not None and not Path(value).is_dir():
            problems.append(f"--{name} {value} is not a local directory")
    for name in (
        "epochs",
        "batch_size",
        "max_length",
        "hidden_size",
        "num_layers",
        "num_heads",
        "intermediate_size",
    ):
        if getattr(config, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        problems.append(f"--lr must be a positive number, got {config.lr}")
    if not 0.0 < config.val_fraction < 1.0:
        problems.append(f"--val-fraction must be in (0, 1), got {config.val_fraction}")
    if config.hidden_size % max(config.num_heads, 1):
        problems.append(
            f"--hidden-size {config.hidden_size} must be divisible by --num-heads {config.num_heads}"
        )
    if not 0.0 <= config.dropout < 1.0:
        problems.append(f"--dropout must be in [0, 1), got {config.dropout}")
    if config.loss != "bt" and config.margin != 0.0:
        problems.append("--margin only applies to --loss bt")
    if problems:
        raise RMTrainError("invalid reward-model training config:\n  - " + "\n  - ".join(problems))


def _tokenizer(config: RMTrainConfig, given: Any, texts: list[str]) -> Any:
    if given is not None:
        return prepare_tokenizer(given, "rm train")
    if config.tokenizer is not None:
        return load_tokenizer(config.tokenizer, "rm train")
    if config.model is not None:
        return load_tokenizer(config.model, "rm train")
    logger.info("no tokenizer given: training a word-level tokenizer on %d texts", len(texts))
    return train_word_tokenizer(texts, vocab_size=config.vocab_size)


def _build_model(config: RMTrainConfig, objective: Objective, tokenizer: Any) -> ScalarRewardModel:
    head = {
        "num_labels": objective.num_labels,
        "labels": objective.labels,
        "include_prompt": config.include_prompt,
    }
    if config.model is not None:
        path = Path(config.model)
        if (path / META_FILE).is_file():
            model = ScalarRewardModel.from_pretrained(path)
            if model.num_labels != objective.num_labels:
                raise RMTrainError(
                    f"--model {path} has {model.num_labels} outputs but --loss {config.loss} needs "
                    f"{objective.num_labels}; start from an encoder or a model trained with the same loss"
                )
            model.tokenizer = tokenizer
            return model
        return ScalarRewardModel.from_encoder(path, tokenizer, max_length=config.max_length, **head)
    from transformers import BertConfig

    encoder_config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=max(config.max_length, 8),
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = ScalarRewardModel.from_config(encoder_config, tokenizer, max_length=config.max_length, **head)
    objective.init_head(model)
    return model


def _texts(examples: list[Any]) -> list[str]:
    return [t for e in examples for t in ((e.chosen, e.rejected) if hasattr(e, "chosen") else (e.text,))]


def train_reward_model(
    config: RMTrainConfig, progress: Callable[[RMProgress], None] | None = None, tokenizer: Any = None
) -> RMTrainResult:
    """Train a :class:`ScalarRewardModel` on ``config.data`` with ``config.loss``.

    Splits the data (seeded), trains with AdamW, evaluates on the validation split after every
    epoch, compares with the best constant predictor, and, with ``config.out``, saves the model after
    every epoch whose loss stayed finite. A non-finite loss stops training with :class:`RMTrainError`
    and leaves the last good checkpoint in ``out``. ``tokenizer`` (an object) overrides
    ``config.tokenizer``.
    """
    validate_config(config)
    examples = load_examples(config.data, config.loss)
    if config.margin:
        examples = [replace(e, margin=e.margin + config.margin) for e in examples]  # type: ignore[union-attr, arg-type]  # bt only (validate_config)
    train, val = train_val_split(examples, config.val_fraction, config.seed)
    objective = make_objective(config.loss, train, examples)
    torch.manual_seed(config.seed)
    tok = _tokenizer(config, tokenizer, _texts(train))
    model = _build_model(config, objective, tok).to(config.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps, step = steps_per_epoch * config.epochs, 0
    baseline = objective.baseline(train, val)
    history: list[dict[str, float]] = []
    logger.info("training %s reward model on %d examples (%d validation)", config.loss, len(train), len(val))
    for epoch in range(1, config.epochs + 1):
        model.train()
        order, losses = rng.permutation(len(train)), []
        for start in range(0, len(train), config.batch_size):
            loss = objective.loss(model, [train[i] for i in order[start : start + config.batch_size]])
            step += 1
            if not torch.isfinite(loss):
                kept = (
                    f"; the last good checkpoint (epoch {epoch - 1}) is in {config.out}"
                    if config.out and epoch > 1
                    else ""
                )
                raise RMTrainError(
                    f"non-finite loss {loss.item()} at epoch {epoch}, step {step}: training stopped{kept}. "
                    "Lower --lr or check the data for extreme scores"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
            if progress is not None:
                progress(RMProgress(epoch, config.epochs, step, total_steps, losses[-1]))
        metrics = {
            "epoch": float(epoch),
            "train_loss": float(np.mean(losses)),
            **objective.evaluate(model, val),
        }
        history.append(metrics)
        logger.info("epoch %d/%d: %s", epoch, config.epochs, metrics)
        if progress is not None:
            progress(RMProgress(epoch, config.epochs, step, total_steps, metrics["train_loss"], metrics))
        if config.out is not None:
            model.save_pretrained(config.out)
    model.eval()
    result = RMTrainResult(
        history=history,
        val_metrics={k: v for k, v in history[-1].items() if k not in ("epoch", "train_loss")},
        baseline_metrics=baseline,
        out=config.out,
        num_train=len(train),
        num_val=len(val),
        model=model,
    )
    if config.out is not None:
        summary = {
            "config": asdict(config),
            "history": history,
            "val_metrics": result.val_metrics,
            "baseline_metrics": baseline,
            "num_train": len(train),
            "num_val": len(val),
        }
        (Path(config.out) / "train_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result
