"""The learning tests' margins (tests/margins.py): the paired standard error and its assertion."""

from __future__ import annotations

import math

import pytest

from tests.margins import assert_learned_paired, paired_standard_error, standard_error


def test_paired_standard_error_is_that_of_the_per_episode_differences() -> None:
    before, after = [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]  # differences 1, 0, 0, 0
    # mean 0.25, unbiased variance (0.5625 + 3 * 0.0625) / 3 = 0.25, se = sqrt(0.25 / 4)
    assert paired_standard_error(before, after) == pytest.approx(0.25)
    assert standard_error([1.0, 0.0, 0.0, 0.0]) == pytest.approx(math.sqrt(0.25 / 4))


def test_pairing_removes_the_spread_the_prompts_share() -> None:
    """Easy and hard prompts alternate; training adds 0.1 to each: the paired error is 0, the unpaired is not."""
    before = [0.0, 1.0] * 8
    after = [r + 0.1 for r in before]
    assert paired_standard_error(before, after) == pytest.approx(0.0, abs=1e-12)
    assert standard_error(before) > 0.1
    assert_learned_paired(before, after, "shift")


def test_a_gain_within_the_paired_noise_fails() -> None:
    before = [0.0] * 8
    after = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 0.0]  # mean +0.125, se about 0.3
    with pytest.raises(AssertionError, match="within 3 standard errors"):
        assert_learned_paired(before, after, "noise")


def test_unpaired_episode_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="one to one"):
        paired_standard_error([0.0, 1.0], [0.0, 1.0, 1.0])
