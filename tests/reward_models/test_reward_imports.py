"""The user's own reward: by import path (``module:fn``, ``file.py:fn``), registered as a function, and
exceptions from inside it re-raised naming the model and the batch."""

from __future__ import annotations

import sys
import textwrap

import pytest

import reward_models
from reward_models import RewardFunctionError, RewardModelError, make, register, score
from reward_models.imports import is_reward_function, load_object
from reward_models.registry import _REGISTRY

REWARDS_PY = """
def exclamations(completions, **kwargs):
    return [float(c.count("!")) for c in completions]

def divide(completions, **kwargs):
    return [1.0 / len(c) for c in completions]

def make_counter(char="?"):
    def count(completions, **kwargs):
        return [float(c.count(char)) for c in completions]
    return count

NOT_CALLABLE = 3
"""


@pytest.fixture
def rewards_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(textwrap.dedent(REWARDS_PY))
    return path


@pytest.fixture
def registered():
    """Names registered by a test, removed afterwards (the registry is process-wide)."""
    names: list[str] = []
    yield names
    for name in names:
        _REGISTRY.pop(name, None)


def test_a_file_path_names_a_reward_function(rewards_file):
    rm = make(f"{rewards_file}:exclamations")
    assert rm(prompts=["a", "b"], completions=["hi!", "!!"]) == [1.0, 2.0]
    assert make(f"{rewards_file}:exclamations") is rm  # the file is loaded once per absolute path


def test_a_module_path_names_a_reward_function(rewards_file, monkeypatch):
    monkeypatch.syspath_prepend(str(rewards_file.parent))
    monkeypatch.delitem(sys.modules, "my_rewards", raising=False)
    assert make("my_rewards:exclamations")(prompts=["p"], completions=["!"]) == [1.0]


def test_a_module_in_the_current_directory_is_found_without_pythonpath(rewards_file, monkeypatch):
    monkeypatch.chdir(rewards_file.parent)
    monkeypatch.delitem(sys.modules, "my_rewards", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(rewards_file.parent))])
    assert make("my_rewards:exclamations")(prompts=["p"], completions=["!!!"]) == [3.0]
    assert str(rewards_file.parent) not in sys.path  # the directory was only borrowed


def test_a_factory_by_path_is_called_with_the_options(rewards_file):
    rm = make(f"{rewards_file}:make_counter", char="x")
    assert rm(prompts=["p"], completions=["xxy"]) == [2.0]


@pytest.mark.parametrize(
    ("spec", "match"),
    [("{dir}/missing.py:fn", "file .* does not exist"),
     ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'.*PYTHONPATH.*no_such_module_xyz.py:fn"),
     ("{file}:exclamation", "has no 'exclamation'.*did you mean 'exclamations'"),
     ("{file}:NOT_CALLABLE", "names a int, not a function"),
     ("{file}:", "not an import path")],
)  # fmt: skip
def test_a_missing_file_module_or_name_says_which_and_how_to_fix_it(rewards_file, spec, match):
    with pytest.raises(RewardModelError, match=match):
        make(spec.format(dir=rewards_file.parent, file=rewards_file))


def test_an_error_while_importing_the_users_module_names_it(tmp_path):
    broken = tmp_path / "broken_rewards.py"
    broken.write_text("import no_such_dependency_xyz\n")
    with pytest.raises(
        RewardModelError, match="broken_rewards.py.*raised ModuleNotFoundError.*no_such_dependency_xyz"
    ):
        load_object(f"{broken}:fn")


def test_a_reward_function_takes_no_options(rewards_file):
    with pytest.raises(RewardModelError, match="does not accept 'char'"):
        make(f"{rewards_file}:exclamations", char="x")


def test_is_reward_function_tells_functions_from_factories():
    def reward(prompts, completions, **kwargs):
        return [0.0] * len(completions)

    def factory(threshold=0.5):
        return reward

    assert is_reward_function(reward)
    assert not is_reward_function(factory)
    assert not is_reward_function(reward_models.WeightedSum)  # a class is a factory


def test_register_accepts_a_reward_function(registered):
    def shouting(completions, **kwargs):
        """Fraction of upper-case letters."""
        return [sum(ch.isupper() for ch in c) / max(1, len(c)) for c in completions]

    register("shouting", shouting)
    registered.append("shouting")
    assert make("shouting") is shouting
    assert reward_models.describe("shouting") == "Fraction of upper-case letters."
    assert score(make("shouting"), ["p"], ["AB"]).rewards == [1.0]


def test_register_still_accepts_a_factory(registered):
    register("constant", lambda value=1.0: lambda completions, **kw: [value] * len(completions))
    registered.append("constant")
    assert make("constant", value=2.0)(completions=["a"]) == [2.0]


def test_register_refuses_a_wrong_signature_and_a_colon(registered):
    with pytest.raises(RewardModelError, match="cannot be called as"):
        register("bad", lambda p, completions, /: [0.0])
    with pytest.raises(ValueError, match="cannot contain ':'"):
        register("a:b", lambda completions, **kw: [0.0])


def test_an_exception_inside_a_reward_function_names_the_model_and_the_batch(rewards_file):
    rm = make(f"{rewards_file}:divide")
    with pytest.raises(RewardFunctionError) as info:
        score(rm, ["p1", "p2"], ["ok", ""])
    err = info.value
    assert "'divide' raised ZeroDivisionError" in str(err) and "batch of 2 completion(s)" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)  # the original, with its traceback
    assert err.prompts == ["p1", "p2"] and err.completions == ["ok", ""]


def test_inside_a_weighted_sum_the_failing_part_is_named(rewards_file):
    parts = {"ok": (make(f"{rewards_file}:exclamations"), 1.0), "bad": (make(f"{rewards_file}:divide"), 1.0)}
    with pytest.raises(RewardFunctionError, match="'divide' raised ZeroDivisionError"):
        score(reward_models.WeightedSum(parts), ["p"], [""])


def test_a_broken_protocol_is_still_reported_as_before():
    with pytest.raises(RewardModelError, match="returned 1 values for 2") as info:
        score(lambda completions, **kw: [0.0], ["a", "b"], ["x", "y"])
    assert not isinstance(info.value, RewardFunctionError)
