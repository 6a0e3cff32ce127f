"""Reward-model training data: JSONL/CSV records checked against the schema of each loss.

Schemas (one record per line / row):

* ``mse``: ``{"text": str, "score": number}`` or ``{"prompt": str, "completion": str, "score": number}``
* ``ce``:  ``{"text": str, "label": str | int}`` (or prompt + completion instead of text)
* ``bt``:  ``{"chosen": str, "rejected": str}`` with optional ``"prompt": str`` (prefixed to both)
  and ``"margin": number`` (required reward gap, default 0)
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

LossName = Literal["mse", "ce", "bt"]
LOSSES: tuple[str, ...] = ("mse", "ce", "bt")

SCHEMAS: dict[str, str] = {
    "mse": '{"text": str, "score": number} or {"prompt": str, "completion": str, "score": number}',
    "ce": '{"text": str, "label": str|int} or {"prompt": str, "completion": str, "label": str|int}',
    "bt": '{"chosen": str, "rejected": str} with optional "prompt": str and "margin": number',
}


class RMDataError(ValueError):
    """Training data is missing, empty, malformed or does not fit the loss's schema."""


@dataclass(frozen=True)
class ScoredText:
    """A text and its target score (``mse``)."""

    text: str
    score: float


@dataclass(frozen=True)
class LabelledText:
    """A text and its class label (``ce``)."""

    text: str
    label: str


@dataclass(frozen=True)
class PreferencePair:
    """A preferred and a dispreferred text (``bt``); ``margin`` is the reward gap required."""

    chosen: str
    rejected: str
    margin: float = 0.0


Example = ScoredText | LabelledText | PreferencePair
T = TypeVar("T")


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RMDataError(
                    f"{path}:{line_no}: malformed JSON ({exc.msg}); each line must be one JSON object"
                ) from exc
            if not isinstance(record, dict):
                raise RMDataError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
            records.append((line_no, record))
    return records


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            if None in row:
                raise RMDataError(f"{path}:{reader.line_num}: more fields than the header has columns")
            record = {k: v for k, v in row.items() if v is not None and k is not None}
            if any(v.strip() for v in record.values()):
                records.append((reader.line_num, record))
    return records


def read_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every non-blank record of a ``.jsonl``/``.json`` or ``.csv`` file."""
    path = Path(path)
    if not path.is_file():
        raise RMDataError(f"data file {path} does not exist; pass --data with a .jsonl or .csv file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        records = _read_jsonl(path)
    elif suffix == ".csv":
        records = _read_csv(path)
    else:
        raise RMDataError(
            f"data file {path}: unsupported extension {suffix!r}; use .jsonl (one JSON object a line) or .csv"
        )
    if not records:
        raise RMDataError(f"data file {path} is empty; it needs at least one record")
    return records


class _Record:
    """Typed field access that reports the file, the line and the schema on every problem."""

    def __init__(self, path: Path, line: int, record: dict[str, Any], loss: str) -> None:
        self.path, self.line, self.record, self.loss = path, line, record, loss

    def error(self, problem: str) -> RMDataError:
        return RMDataError(
            f"{self.path}:{self.line}: {problem} (schema for --loss {self.loss}: {SCHEMAS[self.loss]})"
        )

    def has(self, key: str) -> bool:
        value = self.record.get(key)
        return value is not None and value != ""

    def text(self, key: str) -> str:
        if key not in self.record or self.record[key] is None:
            raise self.error(f"missing key {key!r}")
        value = self.record[key]
        if not isinstance(value, str):
            raise self.error(f"{key!r} must be a string, got {type(value).__name__} {value!r}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        if not self.has(key):
            if default is not None:
                return default
            raise self.error(f"missing key {key!r}")
        value = self.record[key]
        if isinstance(value, str):  # CSV cells
            try:
                value = float(value)
            except ValueError:
                raise self.error(f"{key!r} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"{key!r} must be a finite number, got {value!r}")
        return float(value)

    def label(self, key: str) -> str:
        if not self.has(key):
            raise self.error(f"missing key {key!r}")
        value = self.record[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(f"{key!r} must be a string or an integer class label, got {value!r}")
        return str(value).strip()

    def scored_text(self) -> str:
        if self.has("text"):
            return self.text("text")
        if self.has("prompt") or self.has("completion"):
            return self.text("prompt") + self.text("completion")
        raise self.error("missing key 'text' (or 'prompt' and 'completion')")


def _example(rec: _Record) -> Example:
    if rec.loss == "mse":
        return ScoredText(rec.scored_text(), rec.number("score"))
    if rec.loss == "ce":
        return LabelledText(rec.scored_text(), rec.label("label"))
    prompt = rec.text("prompt") if rec.has("prompt") else ""
    return PreferencePair(
        prompt + rec.text("chosen"), prompt + rec.text("rejected"), rec.number("margin", 0.0)
    )


def load_examples(path: str | Path, loss: LossName) -> list[Example]:
    """Read and validate a training file for ``loss``; errors name the file and line."""
    if loss not in LOSSES:
        raise RMDataError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    path = Path(path)
    return [_example(_Record(path, line, record, loss)) for line, record in read_records(path)]


def label_names(examples: Sequence[LabelledText]) -> list[str]:
    """The sorted distinct labels (numerically when all are integers)."""
    names = {e.label for e in examples}
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def train_val_split(examples: Sequence[T], val_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """A seeded shuffle split into (train, validation); both get at least one example."""
    if not 0.0 < val_fraction < 1.0:
        raise RMDataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(examples) < 2:
        raise RMDataError(f"need at least 2 examples to split into train and validation, got {len(examples)}")
    order = np.random.default_rng(seed).permutation(len(examples))
    n_val = min(len(examples) - 1, max(1, round(val_fraction * len(examples))))
    return [examples[i] for i in order[n_val:]], [examples[i] for i in order[:n_val]]
