"""Cross-check of agents.benchmarking.bench_stats (SciPy) against rliable on the same random score matrices.

rliable 1.2.0 does not import with pandas 3 (its dependency arch 7.2 breaks), so run it from an
isolated target directory holding pandas 2:

    pip install --no-deps --target /tmp/rlt "pandas==2.3.3" "arch==7.2.0" rliable statsmodels patsy \\
        formulaic interface_meta seaborn
    PYTHONPATH=/tmp/rlt python benchmarks/stats_vs_rliable.py

Prints both point estimates and 95% stratified-bootstrap intervals (IQM, probability of improvement).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.benchmarking import bench_stats  # noqa: E402


def main() -> None:
    from rliable import library as rly
    from rliable import metrics

    rng = np.random.default_rng(3)
    scores = {"a": rng.normal(0.3, 0.3, (5, 4)), "b": rng.normal(0.1, 0.3, (5, 4))}
    points, intervals = rly.get_interval_estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=20000)
    for name, matrix in scores.items():
        ours = bench_stats.interval(matrix, bench_stats.iqm, reps=20000)
        print(f"IQM {name}: rliable {points[name][0]:.4f} [{intervals[name][0, 0]:.4f}, {intervals[name][1, 0]:.4f}]"
              f"  scipy {ours[0]:.4f} [{ours[1]:.4f}, {ours[2]:.4f}]")
    points, intervals = rly.get_interval_estimates({"a,b": (scores["a"], scores["b"])},
                                                   metrics.probability_of_improvement, reps=5000)
    ours = bench_stats.probability_of_improvement_interval(scores["a"], scores["b"], reps=5000)
    print(f"P(a > b): rliable {float(points['a,b']):.3f} [{intervals['a,b'][0, 0]:.3f}, {intervals['a,b'][1, 0]:.3f}]"
          f"  scipy {ours[0]:.3f} [{ours[1]:.3f}, {ours[2]:.3f}]")


if __name__ == "__main__":
    main()
