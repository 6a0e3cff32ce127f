"""The benchmark statistics against independent computations (plain numpy loops, scipy.stats.mannwhitneyu)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.benchmarking import bench_stats


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


def test_kl_binned_averages_each_bin_against_a_loop() -> None:
    rng = np.random.default_rng(3)
    kl, values = rng.uniform(0, 50, 40), rng.normal(0, 1, 40)
    edges = [0.0, 5.0, 20.0, 30.0, np.inf]
    mean_kl, mean_val = bench_stats.kl_binned(kl, values, edges)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = [j for j in range(40) if lo <= kl[j] < hi]
        assert mean_kl[i] == pytest.approx(np.mean(kl[inside]))
        assert mean_val[i] == pytest.approx(np.mean(values[inside]))


def test_kl_binned_puts_an_edge_in_the_bin_it_opens_and_leaves_empty_bins_nan() -> None:
    mean_kl, mean_val = bench_stats.kl_binned([0.0, 2.0, 2.5, 9.0, 12.0], [1.0, 3.0, 5.0, 7.0, 100.0],
                                              [0.0, 2.0, 4.0, 8.0, 10.0])
    assert mean_val[:2] == pytest.approx([1.0, 4.0])  # 2.0 opens bin [2, 4)
    assert np.isnan(mean_val[2]) and np.isnan(mean_kl[2])  # nothing in [4, 8)
    assert mean_val[3] == pytest.approx(7.0)  # 12.0 lies past the last edge: left out
    with pytest.raises(ValueError, match="increasing"):
        bench_stats.kl_binned([1.0], [1.0], [5.0, 1.0])


def test_peak_kl_finds_where_a_rise_and_fall_turns() -> None:
    # gold climbs until KL ~ 20, then falls while KL keeps growing
    kl = np.array([1.0, 3.0, 8.0, 15.0, 22.0, 45.0, 90.0, 170.0])
    gold = np.array([0.1, 0.1, 0.3, 0.5, 0.6, 0.4, 0.1, 0.0])
    edges = [0.0, 5.0, 10.0, 30.0, 60.0, np.inf]
    mean_kl, mean_gold = bench_stats.kl_binned(kl, gold, edges)
    assert bench_stats.peak_kl(mean_kl, mean_gold) == pytest.approx(18.5)  # the [10, 30) bin: (15 + 22) / 2
    assert bench_stats.peak_kl(mean_kl, -mean_gold) == pytest.approx(130.0)  # its lowest point is the far tail
    with pytest.raises(ValueError, match="empty"):
        bench_stats.peak_kl(np.array([np.nan]), np.array([np.nan]))
