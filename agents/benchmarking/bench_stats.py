"""Statistics of a benchmark grid, following the rliable protocol (Agarwal et al., 2021).

Scores are held-out task scores normalised per task, ``(score - untrained) / (ceiling - untrained)``:
0 is the untrained model, 1 the task's ceiling. With few seeds, point estimates mislead, so every
aggregate comes with a 95% *stratified* bootstrap interval: runs are resampled with replacement
within each task, never across tasks.

The statistics come from SciPy rather than from rliable itself: rliable 1.2.0 fails to import with
pandas 3 (its dependency ``arch`` 7.2 breaks on pandas 3's ``deprecate_kwarg``), and pinning
``pandas<3`` for every rlenv user to get it was not worth it. ``scipy.stats.bootstrap`` given one
sample per task resamples each sample independently, which is exactly the stratified bootstrap;
``scipy.stats.trim_mean(x, 0.25)`` is the interquartile mean; the probability of improvement is the
Mann-Whitney U statistic ``U / (n m)`` averaged over tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def normalise(scores: np.ndarray, untrained: float, ceiling: float) -> np.ndarray:
    """Map raw scores so that ``untrained`` -> 0 and ``ceiling`` -> 1."""
    if not ceiling > untrained:
        raise ValueError(f"a task's ceiling ({ceiling}) must exceed its untrained score ({untrained})")
    return (np.asarray(scores, dtype=float) - untrained) / (ceiling - untrained)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all scores (runs x tasks flattened): the mean of the middle 50%."""
    return float(stats.trim_mean(np.asarray(scores, dtype=float).ravel(), 0.25))


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "iqm": iqm,
    "mean": lambda x: float(np.mean(x)),
    "median": lambda x: float(np.median(x)),
}


def _per_task(scores: np.ndarray) -> list[np.ndarray]:
    """The columns of a (runs, tasks) matrix, one bootstrap stratum each."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"scores must be a (runs, tasks) matrix, got shape {scores.shape}")
    return [scores[:, j] for j in range(scores.shape[1])]


def interval(scores: np.ndarray, aggregate: Callable[[np.ndarray], float], *, reps: int = 2000,
             seed: int = 0) -> tuple[float, float, float]:
    """``(point, low, high)``: ``aggregate`` of a (runs, tasks) matrix and its 95% stratified-bootstrap
    percentile interval. With a single run per task the interval collapses to the point."""
    columns = _per_task(scores)
    point = aggregate(np.column_stack(columns))
    if columns[0].size < 2:
        return point, point, point

    def statistic(*cols: np.ndarray) -> float:
        return aggregate(np.column_stack(cols))

    result = stats.bootstrap(columns, statistic, n_resamples=reps, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=False, paired=False, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return point, float(low), float(high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): for each task the chance that a random run of X beats one of Y (ties count half),
    i.e. Mann-Whitney ``U / (n m)``, averaged over tasks. ``x``, ``y``: (runs, tasks) matrices."""
    xs, ys = _per_task(x), _per_task(y)
    if len(xs) != len(ys):
        raise ValueError(f"x and y must cover the same tasks, got {len(xs)} and {len(ys)} columns")
    return float(np.mean([_auc(a, b) for a, b in zip(xs, ys, strict=True)]))


def _auc(a: np.ndarray, b: np.ndarray) -> float:
    """Mann-Whitney ``U / (n m)`` of ``a`` over ``b`` by direct comparison (the tests check it against
    ``scipy.stats.mannwhitneyu``; this form is ~100x faster inside a bootstrap)."""
    diff = a[:, None] - b[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def probability_of_improvement_interval(x: np.ndarray, y: np.ndarray, *, reps: int = 2000,
                                        seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y) with a 95% stratified-bootstrap interval (X's and Y's runs resampled per task)."""
    xs, ys = _per_task(x), _per_task(y)
    k = len(xs)
    point = probability_of_improvement(x, y)
    if min(xs[0].size, ys[0].size) < 2:
        return point, point, point

    def statistic(*samples: np.ndarray) -> float:
        return probability_of_improvement(np.column_stack(samples[:k]), np.column_stack(samples[k:]))

    result = stats.bootstrap([*xs, *ys], statistic, n_resamples=reps, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=False, paired=False, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return point, float(low), float(high)


def performance_profile(scores: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fraction of runs (all tasks pooled) whose normalised score exceeds each threshold tau."""
    flat = np.asarray(scores, dtype=float).ravel()
    return np.array([(flat > tau).mean() for tau in thresholds])


def mean_interval(values: Sequence[float], *, reps: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)`` of one sample with a 95% percentile bootstrap interval (curve bands)."""
    arr = np.asarray(values, dtype=float)
    point = float(arr.mean())
    if arr.size < 2 or np.all(arr == arr[0]):
        return point, point, point
    result = stats.bootstrap((arr,), np.mean, n_resamples=reps, confidence_level=CONFIDENCE,
                             method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return point, float(low), float(high)


def kl_binned(kl: Sequence[float], values: Sequence[float], edges: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """One run's updates grouped by their KL to the reference: for each bin ``[edges[i], edges[i+1])``,
    ``(mean KL, mean value)`` of the updates that fall in it, NaN where none does. Updates outside
    ``[edges[0], edges[-1])`` are left out; ``edges[-1]`` may be ``inf``.

    KL, not the update index, is the clock of over-optimisation curves (Gao et al., 2022): runs
    (seeds, learning rates) move away from the reference at different speeds, but their rewards at
    equal KL are comparable.
    """
    kl_arr, val_arr, edge_arr = (np.asarray(a, dtype=float) for a in (kl, values, edges))
    if kl_arr.shape != val_arr.shape or kl_arr.ndim != 1:
        raise ValueError(f"kl and values must be 1-D of equal length, got shapes {kl_arr.shape} and {val_arr.shape}")
    if edge_arr.ndim != 1 or edge_arr.size < 2 or np.any(np.diff(edge_arr) <= 0):
        raise ValueError(f"edges must be at least two increasing numbers, got {list(edges)}")
    which = np.searchsorted(edge_arr, kl_arr, side="right") - 1  # bin i holds edges[i] <= kl < edges[i+1]
    n_bins = edge_arr.size - 1
    mean_kl, mean_val = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    for i in range(n_bins):
        inside = which == i
        if inside.any():
            mean_kl[i], mean_val[i] = kl_arr[inside].mean(), val_arr[inside].mean()
    return mean_kl, mean_val


def peak_kl(bin_kl: np.ndarray, bin_values: np.ndarray) -> float:
    """The KL of the bin where a binned curve is highest (empty, NaN bins skipped): where a gold reward
    that first rises with optimisation turns and falls."""
    values = np.asarray(bin_values, dtype=float)
    if np.all(np.isnan(values)):
        raise ValueError("every bin is empty: no KL at which the curve peaks")
    return float(np.asarray(bin_kl, dtype=float)[np.nanargmax(values)])
