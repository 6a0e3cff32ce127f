"""Learning-test margins from the evaluation's own spread, instead of a fixed bar that one CPU's float
rounding or one seed can pass by luck.

A learning test scores the untrained and the trained model under the same seeded evaluation; the gain
must exceed ``z`` standard errors of the difference of the two means (each mean's standard error is
its episodes' std / sqrt(n); treating them as independent is conservative, the episodes being paired
by seed). With z = 3 an untrained model "learns" by chance about once in a thousand runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

Z = 3.0
SEEDS_VARIABLE = "RLENV_LEARNING_SEEDS"


def learning_seeds(ci_seeds: Sequence[int]) -> list[int]:
    """The seeds a learning test runs: CI's (the cheapest set that proves the behaviour), or every seed
    listed in ``$RLENV_LEARNING_SEEDS`` (e.g. ``0,1,2``) for a sweep; docs/testing.md gives the command."""
    listed = os.environ.get(SEEDS_VARIABLE, "").strip()
    if not listed:
        return list(ci_seeds)
    try:
        return [int(seed) for seed in listed.split(",")]
    except ValueError:
        raise ValueError(
            f"{SEEDS_VARIABLE} must be comma-separated integers (e.g. 0,1,2), got {listed!r}"
        ) from None


def standard_error(rewards: Sequence[float]) -> float:
    """Standard error of the mean of per-episode rewards (unbiased std / sqrt(n))."""
    n = len(rewards)
    if n < 2:
        raise ValueError(f"a standard error needs at least 2 episodes, got {n}")
    mean = sum(rewards) / n
    return math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1) / n)


def noise_margin(se_before: float, se_after: float, z: float = Z) -> float:
    """The gain that evaluation noise alone would not reach: z standard errors of the difference."""
    return z * math.hypot(se_before, se_after)


def assert_learned(
    before: float, after: float, se_before: float, se_after: float, what: str = "", z: float = Z
) -> None:
    """Fail unless ``after - before`` exceeds the noise margin; the message gives every number."""
    margin = noise_margin(se_before, se_after, z)
    print(
        f"{what}: {before:.3f} -> {after:.3f} (+{after - before:.3f}, margin {margin:.3f})"
    )  # pytest -s / -rP
    assert after - before > margin, (
        f"{what}: trained {after:.3f} vs untrained {before:.3f} (+{after - before:.3f}) is within "
        f"{z:g} standard errors of the evaluation ({margin:.3f}; se {se_before:.3f} / {se_after:.3f})"
    )
