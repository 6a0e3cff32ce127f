"""reward_models.score validates what a reward model returns and names the model and the index."""

from __future__ import annotations

import math

import pytest
import torch

from reward_models import RewardModelError, ScoredBatch, score

PROMPTS, COMPLETIONS = ["p1", "p2", "p3"], ["a", "b", "c"]


def returning(values, name="my_rm"):
    def rm(prompts, completions, **kwargs):
        return values

    rm.__name__ = name
    return rm


def test_valid_output_is_floats():
    batch = score(returning([1, 0.5, torch.tensor(2.0)]), PROMPTS, COMPLETIONS)
    assert batch == ScoredBatch(rewards=[1.0, 0.5, 2.0])
    assert all(type(r) is float for r in batch.rewards)


@pytest.mark.parametrize("values", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], []])
def test_wrong_count_names_the_model(values):
    with pytest.raises(RewardModelError, match=r"'my_rm' returned \d values for 3 completions"):
        score(returning(values), PROMPTS, COMPLETIONS)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_names_model_and_index(bad):
    with pytest.raises(RewardModelError, match=r"'my_rm' returned (nan|inf|-inf) at index 1"):
        score(returning([0.0, bad, 1.0]), PROMPTS, COMPLETIONS)


@pytest.mark.parametrize("bad", ["high", None, True, [1.0], {"r": 1}])
def test_non_number_names_model_and_index(bad):
    with pytest.raises(RewardModelError, match=r"'my_rm' returned a non-number at index 2"):
        score(returning([0.0, 1.0, bad]), PROMPTS, COMPLETIONS)


def test_not_a_list_is_rejected():
    with pytest.raises(RewardModelError, match="'my_rm' returned float"):
        score(returning(1.0), PROMPTS, COMPLETIONS)


def test_name_attribute_is_used():
    class Named:
        name = "fancy"

        def __call__(self, prompts, completions, **kwargs):
            return [math.nan] * len(completions)

    with pytest.raises(RewardModelError, match="'fancy' returned nan at index 0"):
        score(Named(), PROMPTS, COMPLETIONS)


def test_components_are_validated_and_named():
    class WithParts:
        name = "parts"

        def score_with_components(self, prompts, completions, **kwargs):
            return [1.0] * len(completions), {"style": [0.0, math.nan, 0.0]}

        def __call__(self, prompts, completions, **kwargs):
            return self.score_with_components(prompts, completions)[0]

    with pytest.raises(RewardModelError, match=r"'parts\.style' returned nan at index 1"):
        score(WithParts(), PROMPTS, COMPLETIONS)


def test_mismatched_prompts_and_columns():
    with pytest.raises(ValueError, match="2 prompts for 3 completions"):
        score(returning([0.0] * 3), ["a", "b"], COMPLETIONS)
    with pytest.raises(ValueError, match="'answer' has 2 entries for 3 completions"):
        score(returning([0.0] * 3), PROMPTS, COMPLETIONS, answer=[1, 2])
