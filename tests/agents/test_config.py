"""TrainConfig rejects contradictions before any work, with errors that name the fix."""

from __future__ import annotations

import pytest

from agents.training.config import ConfigError, TrainConfig, config_differences


def make(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 1, **kw})


def test_defaults_are_valid_and_derive_per_algorithm_values() -> None:
    assert make(algo="ppo").epochs == 4 and make(algo="grpo").epochs == 1
    assert make(algo="grpo").kl_kind == "k3" and make(algo="ppo").kl_kind == "k1"
    assert make(algo="ppo", kl_estimator="k2").kl_kind == "k2"
    assert make(batch_size=8).minibatch == 8 and make(batch_size=8, minibatch_size=4).minibatch == 4
    assert make(algo="rloo", seed=3).out_dir == "runs/rloo-PositiveReview-seed3"


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"algo": "grpo", "batch_size": 10, "group_size": 4}, "use --batch-size 8 or 12"),
        ({"algo": "rloo", "batch_size": 8, "group_size": 3}, "use --batch-size 6 or 9"),
        ({"algo": "grpo", "group_size": 1}, "--group-size must be >= 2"),
        ({"algo": "rloo", "group_size": 1}, "--group-size must be >= 2"),
        ({"batch_size": 8, "minibatch_size": 16}, "use --minibatch-size 8 or less"),
        ({"batch_size": 8, "minibatch_size": 3}, "pick a minibatch size that divides"),
        ({"steps": None, "time_budget": None}, "pass --steps N"),
        ({"algo": "a2c"}, "choose one of reinforce, ppo, rloo, grpo"),
        ({"algo": "grpo", "kl_target": 1.0}, "--kl-target (adaptive KL) is not supported by grpo"),
        ({"algo": "grpo", "kl_estimator": "k1"}, "use --kl-estimator k3 (the default) or k2"),
        ({"algo": "ppo", "kl_target": 1.0, "kl_coef": 0.0}, "needs a starting --kl-coef > 0"),
        ({"algo": "reinforce", "ppo_epochs": 2}, "drop --ppo-epochs"),
        ({"lr": 0.0}, "--lr must be > 0"),
        ({"kl_coef": -1.0}, "--kl-coef must be >= 0"),
        ({"clip_range": 1.5}, "--clip-range must be in (0, 1)"),
        ({"temperature": 0.0}, "--temperature must be > 0"),
        ({"env_args": ("difficulty",)}, "key=value"),
        ({"steps": 0}, "--steps must be >= 1"),
        ({"time_budget": -5.0}, "--time-budget must be > 0"),
    ],
)
def test_contradictions_raise_with_the_fix(kwargs, fix) -> None:
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    assert fix in str(info.value)


def test_group_size_is_ignored_by_algorithms_without_groups() -> None:
    make(algo="ppo", batch_size=10, group_size=4)  # no error: ppo does not group prompts


def test_env_args_parse_as_json_when_they_can() -> None:
    cfg = make(env_args=("max_prompt_tokens=16", "difficulty=medium", 'prompts=["a", "b"]'))
    assert cfg.parsed_env_args() == {"max_prompt_tokens": 16, "difficulty": "medium", "prompts": ["a", "b"]}


def test_dict_round_trip_and_differences_skip_run_length_fields() -> None:
    cfg = make(algo="grpo", env_args=("a=1",), time_budget=5.0)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    longer = make(algo="grpo", env_args=("a=1",), steps=50, out="elsewhere", device="cpu")
    assert config_differences(cfg, longer) == []
    diffs = config_differences(cfg, make(algo="grpo", env_args=("a=1",), lr=1e-3, seed=7))
    assert diffs == ["lr: 0.0001 (checkpoint) != 0.001 (now)", "seed: 0 (checkpoint) != 7 (now)"]


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="unknown config fields"):
        TrainConfig.from_dict({"steps": 1, "bogus": 2})


def test_grpo_accepts_k1_only_without_a_kl_term() -> None:
    make(algo="grpo", kl_estimator="k1", kl_coef=0.0)  # nothing is differentiated: harmless
    make(algo="ppo", kl_estimator="k1")  # a reward penalty: k1 is the usual choice there


def test_a_new_algorithm_is_one_spec_plus_one_class_in_the_registry(monkeypatch) -> None:
    """The config asks the specs for defaults and constraints (it never tests names); the class takes its
    declarations from its spec."""
    from agents.algorithms import ALGORITHMS, SPECS, AlgorithmSpec, Reinforce, algorithm_class

    two_pass = AlgorithmSpec(
        "two-pass", "REINFORCE twice over", uses_groups=True, default_epochs=2, default_kl_estimator="k2"
    )

    class TwoPassReinforce(Reinforce):
        spec = two_pass

    monkeypatch.setitem(SPECS, "two-pass", two_pass)
    monkeypatch.setitem(ALGORITHMS, "two-pass", TwoPassReinforce)
    cfg = make(algo="two-pass", batch_size=8, group_size=4)
    assert (cfg.epochs, cfg.kl_kind) == (2, "k2")
    assert (
        algorithm_class("two-pass").uses_groups and TwoPassReinforce.max_epochs is None
    )  # all from its spec
    with pytest.raises(ConfigError, match="use --batch-size 8 or 12"):
        make(algo="two-pass", batch_size=10, group_size=4)


def test_each_algorithm_class_declares_exactly_its_spec() -> None:
    """One source per default: every registered class carries its spec's values, and the menu, the
    specs and the classes name the same algorithms."""
    from dataclasses import fields as spec_fields

    from agents.algorithms import ALGORITHMS, ALGOS, SPECS

    assert tuple(ALGORITHMS) == ALGOS == tuple(SPECS)
    for name, cls in ALGORITHMS.items():
        assert cls.spec is SPECS[name]
        for f in spec_fields(cls.spec):
            assert getattr(cls, f.name) == getattr(cls.spec, f.name), (name, f.name)
    assert ALGORITHMS["dapo"].setting_defaults["epsilon_high"] == 0.28
    assert ALGORITHMS["rloo"].max_epochs == 1 and ALGORITHMS["rloo"].uses_groups  # a REINFORCE variant


def test_env_args_accept_a_dict_from_python():
    from pathlib import Path

    config = TrainConfig(
        steps=1,
        env_args={
            "reward_model": "learned",
            "reward_model_args": {"path": "runs/rm"},
            "max_prompt_tokens": 16,
            "prompts": Path("p.txt"),
        },
    )
    assert config.parsed_env_args() == {
        "reward_model": "learned",
        "reward_model_args": {"path": "runs/rm"},
        "max_prompt_tokens": 16,
        "prompts": "p.txt",
    }
    assert all(isinstance(item, str) for item in config.env_args)  # stored like the CLI's key=value
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig(steps=1, env_args={"max_prompt_tokens": 16}) == TrainConfig(
        steps=1, env_args=("max_prompt_tokens=16",)
    )
    with pytest.raises(
        ConfigError, match=r"env_args\['reward_model'\] is a function; .*reward_funcs=.*env factory"
    ):
        TrainConfig(steps=1, env_args={"reward_model": lambda completions, **kw: [0.0]})


def test_the_setting_flags_help_names_each_algorithm_default_from_its_spec() -> None:
    """`rlenv train --help` states the algorithms' own defaults of --kl-coef, --clip-range ... as their
    specs declare them (no number copied into prose), and the base default after them."""
    from typing import get_type_hints

    from agents.algorithms import SPECS
    from agents.training.config import SETTING_DEFAULTS

    hints = get_type_hints(TrainConfig, include_extras=True)
    checked = 0
    for setting in ("kl_coef", "clip_range", "epsilon_high", "dynamic_sampling", "overlong_buffer"):
        text = hints[setting].__metadata__[0].help
        for spec in SPECS.values():
            if setting in spec.setting_defaults:
                assert spec.name in text and repr(spec.setting_defaults[setting]) in text, (
                    setting,
                    spec.name,
                )
                checked += 1
        if SETTING_DEFAULTS[setting] is not None:
            assert text.endswith(f"else {SETTING_DEFAULTS[setting]!r}"), text
    assert checked == sum(len(spec.setting_defaults) for spec in SPECS.values())
    assert (
        "(dapo 0.28; gspo 0.0004; cispo 4.0), else --clip-range" in hints["epsilon_high"].__metadata__[0].help
    )
