"""The registry: make / register / available / describe, and errors that suggest the fix."""

from __future__ import annotations

import pytest

import reward_models
from reward_models import RewardModelError, UnknownRewardModelError, available, describe, make, register
from reward_models.registry import _REGISTRY

BUILTINS = {
    "vader", "keyword", "regex", "format", "length", "exact_match", "numeric", "reasoning_gym",
    "bleu", "chrf", "ter", "rouge", "embedding_similarity", "classifier", "learned",
}  # fmt: skip


def test_every_builtin_is_available_and_described():
    assert BUILTINS <= set(available())
    assert available() == sorted(available())
    for name in BUILTINS:
        summary = describe(name)
        assert summary and "\n" not in summary, name


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("vader", {}), ("keyword", {"keywords": "x"}), ("regex", {"pattern": "x"}), ("format", {}),
     ("length", {"target": 5}), ("exact_match", {}), ("numeric", {}), ("bleu", {}), ("chrf", {}),
     ("ter", {}), ("rouge", {}), ("reasoning_gym", {"task": "leg_counting"})],
)  # fmt: skip
def test_make_builds_a_named_callable(name, kwargs):
    rm = make(name, **kwargs)
    assert callable(rm)
    assert rm.name.startswith(name)


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownRewardModelError, match="did you mean 'vader'") as info:
        make("vadr")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    assert "available:" in str(info.value)


def test_unknown_name_without_close_match_lists_available():
    with pytest.raises(KeyError, match="unknown reward model 'zzzz'.*available: .*vader"):
        make("zzzz")


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(RewardModelError, match=r"'vader' does not accept 'colour'; its options are: field"):
        make("vader", colour="red")


def test_register_a_plain_function_and_refuse_duplicates():
    def shouty(prompts, completions, **kwargs):
        """Share of upper-case letters."""
        return [sum(ch.isupper() for ch in c) / max(1, len(c)) for c in completions]

    try:
        register("shouty_test", lambda: shouty)  # the factory returns the reward function
        assert "shouty_test" in available()
        assert make("shouty_test") is shouty
        assert make("shouty_test")(["p"], ["AB"]) == [1.0]
        with pytest.raises(ValueError, match="already registered; pass overwrite=True"):
            register("shouty_test", lambda: shouty)
        register("shouty_test", lambda scale=2.0: lambda prompts, completions, **kw: [scale] * len(completions), overwrite=True)
        assert make("shouty_test", scale=3.0)(["p"], ["x"]) == [3.0]
    finally:
        _REGISTRY.pop("shouty_test", None)


def test_register_rejects_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        register("", lambda: None)
    with pytest.raises(TypeError, match="must be callable"):
        register("not_callable", 42)


def test_package_exports():
    for name in reward_models.__all__:
        assert hasattr(reward_models, name), name
    with pytest.raises(AttributeError):
        reward_models.not_a_name  # noqa: B018
