"""Learning-test margins from the evaluation's own spread, instead of a fixed bar that one CPU's float
rounding or one seed can pass by luck.

A learning test scores the untrained and the trained model under the same seeded evaluation; the gain
must exceed ``z`` standard errors of the difference of the two means. :func:`assert_learned` treats
the two means as independent (each standard error is its episodes' std / sqrt(n)), which is
conservative. :func:`assert_learned_paired` uses the pairing: episode ``i`` before and after training
has the same prompt and the same sampling seed, so the standard error is that of the per-episode
differences, much tighter when most of the spread is the prompts' (an easy sum stays easy). With
z = 3 an untrained model "learns" by chance about once in a thousand runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

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


def paired_standard_error(before: Sequence[float], after: Sequence[float]) -> float:
    """Standard error of the mean gain over paired episodes: that of the differences ``after[i] - before[i]``."""
    if len(before) != len(after):
        raise ValueError(
            f"paired episodes must match one to one, got {len(before)} before and {len(after)} after"
        )
    return standard_error([a - b for a, b in zip(after, before, strict=True)])


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


def assert_learned_paired(
    before: Sequence[float], after: Sequence[float], what: str = "", z: float = Z
) -> float:
    """Fail unless the mean gain over paired episodes (same prompt and sampling seed before and after)
    exceeds ``z`` standard errors of the per-episode differences; returns the gain. The line printed
    (``pytest -s`` / ``-rP``) and the failure message give every number."""
    n = len(before)
    mean_before, mean_after = sum(before) / n, sum(after) / len(after)
    margin = z * paired_standard_error(before, after)
    gain = mean_after - mean_before
    print(
        f"{what}: {mean_before:.3f} -> {mean_after:.3f} (+{gain:.3f}, paired margin {margin:.3f}, {n} episodes)"
    )
    assert gain > margin, (
        f"{what}: trained {mean_after:.3f} vs untrained {mean_before:.3f} (+{gain:.3f}) is within {z:g} "
        f"standard errors of the paired evaluation ({margin:.3f} over {n} episodes)"
    )
    return gain


def threads_from_environment() -> Iterator[None]:
    """Body of a fixture: torch's thread count from ``$OMP_NUM_THREADS`` when it is set, for the test's
    duration (a sweep varies it: the thread count changes the float rounding). Unset, nothing changes."""
    import torch

    listed = os.environ.get("OMP_NUM_THREADS", "").strip()
    before = torch.get_num_threads()
    if listed:
        try:
            torch.set_num_threads(int(listed))
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS must be an integer, got {listed!r}") from None
    yield
    torch.set_num_threads(before)
