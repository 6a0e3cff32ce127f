"""WeightedSum, RunningNormalize and Clip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reward_models import Clip, RewardModelError, RunningNormalize, WeightedSum, make, score


def constant(values, name="const"):
    def rm(prompts, completions, **kwargs):
        return list(values)

    rm.__name__ = name
    return rm


def test_weighted_sum_and_unweighted_components():
    rm = WeightedSum({"sentiment": (make("vader"), 2.0), "short": (make("length", target=3), -0.5)})
    completions = ["great great film", "awful"]
    batch = score(rm, ["", ""], completions)
    vader = make("vader")(["", ""], completions)
    length = make("length", target=3)(["", ""], completions)
    assert batch.components == {"sentiment": vader, "short": length}
    assert batch.rewards == pytest.approx([2 * v - 0.5 * n for v, n in zip(vader, length, strict=True)])
    assert rm(["", ""], completions) == batch.rewards


def test_weighted_sum_passes_kwargs_and_nested_components():
    inner = WeightedSum({"num": (make("numeric"), 1.0)})
    rm = WeightedSum({"answer": (inner, 3.0), "fmt": (make("format", pattern="number"), 1.0)})
    batch = score(rm, ["", ""], ["19", "the answer is 18"], answer=[19, 19])
    assert batch.rewards == [4.0, 0.0]
    assert batch.components["answer.num"] == [1.0, 0.0]


def test_weighted_sum_names_the_broken_part():
    rm = WeightedSum({"ok": (constant([1.0]), 1.0), "bad": (constant([math.nan], "broken"), 1.0)})
    with pytest.raises(RewardModelError, match="'broken' returned nan at index 0"):
        rm([""], ["x"])
    with pytest.raises(RewardModelError, match=r"part 'x' must be \(reward_model, weight\)"):
        WeightedSum({"x": make("vader")})
    with pytest.raises(RewardModelError, match="at least one part"):
        WeightedSum({})


def test_running_normalize_matches_numpy_and_resumes():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=n).tolist() for n in (5, 1, 7)]
    seen: list[float] = []
    norm = RunningNormalize(constant([]), eps=1e-8)
    for values in batches:
        norm.rm = constant(values)
        out = norm([""] * len(values), ["x"] * len(values))
        seen += values
        assert norm.mean == pytest.approx(np.mean(seen))
        assert norm.std == pytest.approx(np.std(seen))
        assert out == pytest.approx(((np.array(values) - np.mean(seen)) / (np.std(seen) + 1e-8)).tolist())
    resumed = RunningNormalize(constant([10.0]))
    resumed.load_state_dict(norm.state_dict())
    assert resumed.state_dict() == norm.state_dict()
    norm.rm = constant([10.0])
    assert resumed([""], ["x"]) == norm([""], ["x"])


def test_running_normalize_clip_frozen_and_components():
    norm = RunningNormalize(constant([0.0, 0.0, 0.0, 100.0]), clip=1.0)
    batch = score(norm, [""] * 4, ["a"] * 4)
    assert max(batch.rewards) == 1.0 and batch.components["raw"] == [0.0, 0.0, 0.0, 100.0]
    state = norm.state_dict()
    norm.update = False
    norm([""] * 4, ["a"] * 4)
    assert norm.state_dict() == state
    with pytest.raises(RewardModelError, match="missing"):
        norm.load_state_dict({"mean": 0.0})


def test_clip_bounds_and_guards_infinity():
    rm = Clip(constant([-5.0, 0.3, 5.0, math.inf]), low=-1.0, high=1.0)
    assert score(rm, [""] * 4, ["a"] * 4).rewards == [-1.0, 0.3, 1.0, 1.0]
    with pytest.raises(RewardModelError, match="need low < high"):
        Clip(make("vader"), 1.0, 0.0)
    with pytest.raises(RewardModelError, match="returned nan"):
        score(Clip(constant([math.nan])), [""], ["a"])
    assert score(Clip(constant([3.0])), [""], ["a"]).components == {"raw": [3.0]}
