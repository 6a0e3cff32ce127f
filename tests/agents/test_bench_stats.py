"""The benchmark statistics against independent computations (plain numpy loops, scipy.stats.mannwhitneyu)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents import bench_stats


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    scores = np.array([[0.0, 10.0], [1.0, 2.0], [3.0, 4.0], [100.0, 5.0]])  # 8 values
    middle = np.sort(scores.ravel())[2:6]  # drop the lowest and highest quarter
    assert bench_stats.iqm(scores) == pytest.approx(middle.mean())


def test_normalise_maps_untrained_to_zero_and_ceiling_to_one() -> None:
    assert bench_stats.normalise(np.array([0.2, 1.0, 0.6]), 0.2, 1.0) == pytest.approx([0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="must exceed"):
        bench_stats.normalise(np.array([0.5]), 1.0, 1.0)


def test_stratified_interval_matches_a_hand_written_stratified_bootstrap() -> None:
    rng = np.random.default_rng(1)
    scores = np.column_stack([rng.normal(0, 1, 5), rng.normal(3, 1, 5), rng.normal(-2, 2, 5)])
    point, low, high = bench_stats.interval(scores, bench_stats.iqm, reps=2000)
    # independent: resample the runs of each task (column) separately, many times, with numpy
    boot = np.random.default_rng(7)
    reps = []
    for _ in range(2000):
        resampled = np.column_stack([col[boot.integers(0, col.size, col.size)] for col in scores.T])
        reps.append(bench_stats.iqm(resampled))
    ref_low, ref_high = np.percentile(reps, [2.5, 97.5])
    assert point == pytest.approx(bench_stats.iqm(scores))
    assert low == pytest.approx(ref_low, abs=0.15) and high == pytest.approx(ref_high, abs=0.15)
    assert low < point < high


def test_a_stratified_interval_is_narrower_than_pooling_when_tasks_differ() -> None:
    # tasks far apart: a pooled bootstrap would mix tasks and widen the interval; stratified keeps
    # each task's share fixed, so with zero within-task spread the interval collapses to the point
    scores = np.column_stack([np.zeros(4), np.full(4, 10.0)])
    point, low, high = bench_stats.interval(scores, bench_stats.AGGREGATES["mean"])
    assert (point, low, high) == pytest.approx((5.0, 5.0, 5.0))


def test_probability_of_improvement_matches_mann_whitney_and_pair_counting() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(0.3, 1, (6, 3)), rng.normal(0.0, 1, (5, 3))
    x[0, 0] = y[0, 0]  # a tie counts one half
    by_scipy = np.mean([stats.mannwhitneyu(x[:, j], y[:, j]).statistic / (6 * 5) for j in range(3)])
    by_pairs = np.mean([np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in x[:, j] for b in y[:, j]])
                        for j in range(3)])
    assert bench_stats.probability_of_improvement(x, y) == pytest.approx(by_scipy) == pytest.approx(by_pairs)
    point, low, high = bench_stats.probability_of_improvement_interval(x, y, reps=500)
    assert low <= point <= high
    assert bench_stats.probability_of_improvement(x + 100, y) == 1.0  # a flipped sign would give 0


def test_performance_profile_counts_runs_above_each_threshold() -> None:
    scores = np.array([[0.1, 0.5], [0.9, -0.2]])
    assert bench_stats.performance_profile(scores, [-1.0, 0.0, 0.5, 1.0]).tolist() == [1.0, 0.75, 0.25, 0.0]
