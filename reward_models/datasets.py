"""Small labelled datasets built by the repo, for training and testing reward models offline.

``sentiment_dataset`` composes review-like sentences from varied word lists and labels them with
VADER (a score for ``mse``, pos/neg/neutral for ``ce``); ``preference_pairs`` pairs them so that the
more positive sentence is chosen (``bt``); ``arithmetic_dataset`` gives right/wrong sums.
Everything is deterministic under ``seed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_SUBJECTS = [
    "the movie",
    "this film",
    "the acting",
    "the plot",
    "the soundtrack",
    "the ending",
    "the dialogue",
    "the service",
    "the food",
    "this hotel",
    "the room",
    "the staff",
    "this book",
    "the story",
    "the camera",
    "the battery",
    "this phone",
    "the screen",
    "the game",
    "the album",
]
_POSITIVE = [
    "great",
    "wonderful",
    "excellent",
    "delightful",
    "brilliant",
    "lovely",
    "superb",
    "enjoyable",
    "charming",
    "fantastic",
    "beautiful",
    "pleasant",
    "amazing",
    "good",
    "fun",
    "impressive",
    "perfect",
    "nice",
]
_NEGATIVE = [
    "terrible",
    "awful",
    "boring",
    "dreadful",
    "horrible",
    "disappointing",
    "bad",
    "poor",
    "dull",
    "ugly",
    "annoying",
    "painful",
    "weak",
    "sad",
    "broken",
    "worst",
    "mediocre",
    "stupid",
]
_NEUTRAL = [
    "long",
    "short",
    "loud",
    "quiet",
    "new",
    "old",
    "simple",
    "unusual",
    "expected",
    "green",
    "typical",
    "standard",
    "modern",
    "plain",
    "wooden",
    "large",
    "small",
]
_INTENSIFIERS = ["", "", "", "very ", "really ", "extremely ", "quite ", "rather ", "somewhat "]
_VERBS = ["was", "is", "seemed", "felt", "looked"]
_ENDINGS = ["", "", ".", "!", " overall.", " in my opinion.", " to be honest.", " at times."]
_LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentExample:
    """A sentence, its VADER compound score in [-1, 1], and its label (negative/neutral/positive)."""

    text: str
    score: float
    label: str


def sentiment_label(compound: float, threshold: float = 0.05) -> str:
    """VADER's conventional label for a compound score."""
    return "positive" if compound >= threshold else "negative" if compound <= -threshold else "neutral"


def _sentence(rng: np.random.Generator) -> str:
    pool = [_POSITIVE, _NEGATIVE, _NEUTRAL][rng.integers(3)]
    clause = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_INTENSIFIERS)}{rng.choice(pool)}"
    if rng.random() < 0.35:  # a second clause mixes sentiments
        other = [_POSITIVE, _NEGATIVE, _NEUTRAL][rng.integers(3)]
        joiner = rng.choice([" and ", " but ", ", while "])
        clause += f"{joiner}{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(other)}"
    text = clause + rng.choice(_ENDINGS)
    return text[0].upper() + text[1:]


def sentiment_dataset(n: int, seed: int = 0) -> list[SentimentExample]:
    """``n`` review-like sentences with their VADER compound score and label; deterministic in ``seed``."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    analyzer = SentimentIntensityAnalyzer()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        text = _sentence(rng)
        compound = float(analyzer.polarity_scores(text)["compound"])
        out.append(SentimentExample(text, compound, sentiment_label(compound)))
    return out


def preference_pairs(n: int, seed: int = 0, min_gap: float = 0.1) -> list[dict[str, str]]:
    """``n`` ``{"chosen", "rejected"}`` pairs where chosen has the higher VADER score (by >= ``min_gap``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pool = sentiment_dataset(4 * n, seed)
    rng = np.random.default_rng(seed + 1)
    pairs: list[dict[str, str]] = []
    while len(pairs) < n:
        a, b = (pool[i] for i in rng.choice(len(pool), size=2, replace=False))
        if abs(a.score - b.score) >= min_gap:
            chosen, rejected = (a, b) if a.score > b.score else (b, a)
            pairs.append({"chosen": chosen.text, "rejected": rejected.text})
    return pairs


def arithmetic_dataset(n: int, seed: int = 0, max_operand: int = 50) -> list[dict[str, Any]]:
    """``n`` statements "a + b = c" labelled ``right``/``wrong`` (about half each) with a 1.0/0.0 ``score``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a, b = (int(x) for x in rng.integers(0, max_operand + 1, size=2))
        op = rng.choice(["+", "-"])
        truth = a + b if op == "+" else a - b
        right = bool(rng.random() < 0.5)
        shown = truth if right else truth + int(rng.choice([-3, -2, -1, 1, 2, 3, 10]))
        rows.append(
            {"text": f"{a} {op} {b} = {shown}", "label": "right" if right else "wrong", "score": float(right)}
        )
    return rows


def write_jsonl(rows: Iterable[Mapping[str, Any] | SentimentExample], path: str | Path) -> Path:
    """Write ``rows`` (dicts or :class:`SentimentExample`) as one JSON object per line; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            record = row.__dict__ if isinstance(row, SentimentExample) else dict(row)
            f.write(json.dumps(record) + "\n")
    return path
