"""Reward-model evaluation metrics (numpy only): MSE, Pearson, Spearman, accuracy, pairwise accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def mse(predictions: ArrayLike, targets: ArrayLike) -> float:
    """Mean squared error."""
    p, t = np.asarray(predictions, dtype=float), np.asarray(targets, dtype=float)
    return float(np.mean((p - t) ** 2))


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation; 0.0 when either side is constant (no linear association to measure)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def rankdata(x: ArrayLike) -> np.ndarray:
    """Ranks starting at 1, ties given their average rank."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    ranks = np.empty(len(a), dtype=float)
    start = 0
    for end in range(1, len(a) + 1):
        if end == len(a) or sorted_a[end] != sorted_a[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation (Pearson of average ranks); 0.0 when either side is constant."""
    return pearson(rankdata(x), rankdata(y))


def accuracy(predicted: ArrayLike, labels: ArrayLike) -> float:
    """Share of equal entries."""
    p, t = np.asarray(predicted), np.asarray(labels)
    return float(np.mean(p == t)) if len(t) else 0.0


def pairwise_accuracy(chosen: ArrayLike, rejected: ArrayLike) -> float:
    """Share of pairs where the chosen text scores higher; ties count one half."""
    c, r = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if not len(c):
        return 0.0
    return float(np.mean((c > r) + 0.5 * (c == r)))
