"""Task cards and per-algorithm defaults: how ``TrainConfig`` resolves a setting no flag gives, and the
record of where each value came from; plus the options only some algorithms honour."""

from __future__ import annotations

import json

import pytest
import torch

import rlenv
from agents.benchmarking.bench_config import BenchConfig, Cell, train_config
from agents.training.advantages import scaled_group_advantages, turn_returns
from agents.training.config import ConfigError, TrainConfig


def test_the_arithmetic_card_sets_the_learning_rate_where_no_flag_does():
    assert rlenv.task_card("rlenv/Arithmetic-v0") == {"lr": 1e-5}
    for algo in ("reinforce", "ppo", "grpo", "dapo", "rebn"):
        config = TrainConfig(algo=algo, env="rlenv/Arithmetic-v0", steps=1)
        assert config.lr == 1e-5
        assert config.setting_sources["lr"] == "task card (rlenv/Arithmetic-v0)"


def test_a_flag_beats_the_card_and_no_task_card_turns_it_off():
    given = TrainConfig(algo="grpo", env="rlenv/Arithmetic-v0", steps=1, lr=3e-4)
    assert given.lr == 3e-4 and given.setting_sources["lr"] == "flag"
    off = TrainConfig(algo="grpo", env="rlenv/Arithmetic-v0", steps=1, task_card=False)
    assert off.lr == 1e-4 and off.setting_sources["lr"] == "rlenv default"
    other = TrainConfig(algo="grpo", env="rlenv/Brief-v0", steps=1)  # no card
    assert other.lr == 1e-4 and rlenv.task_card("rlenv/Brief-v0") == {}


def test_algorithm_defaults_fill_what_the_card_does_not():
    dapo = TrainConfig(algo="dapo", steps=1)
    assert (
        dapo.kl_coef,
        dapo.clip_range,
        dapo.epsilon_high,
        dapo.dynamic_sampling,
        dapo.overlong_buffer,
    ) == (0.0, 0.2, 0.28, True, 0.2)
    assert dapo.setting_sources["epsilon_high"] == "dapo default"
    gspo = TrainConfig(algo="gspo", steps=1)
    assert (gspo.clip_range, gspo.epsilon_high) == (3e-4, 4e-4)
    grpo = TrainConfig(algo="grpo", steps=1)
    assert (grpo.kl_coef, grpo.clip_range, grpo.epsilon_high) == (0.05, 0.2, None)
    assert TrainConfig(algo="cispo", steps=1).epsilon_high == 4.0


def test_the_sources_are_saved_and_survive_a_round_trip():
    config = TrainConfig(algo="dapo", env="rlenv/Arithmetic-v0", steps=1)
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved["setting_sources"]["lr"] == "task card (rlenv/Arithmetic-v0)"
    again = TrainConfig.from_dict(saved)
    assert again == config  # a resumed run keeps the values and their sources


def test_bench_cells_use_the_card():
    bench = BenchConfig(
        algos=("grpo",), envs=("rlenv/Arithmetic-v0", "rlenv/Brief-v0"), seeds=(0,), steps=2, eval_points=1
    )
    assert train_config(bench, Cell("grpo", "rlenv/Arithmetic-v0", 0)).lr == 1e-5
    assert train_config(bench, Cell("grpo", "rlenv/Brief-v0", 0)).lr == 1e-4
    assert train_config(replace_lr(bench, 3e-5), Cell("grpo", "rlenv/Arithmetic-v0", 0)).lr == 3e-5


def replace_lr(bench: BenchConfig, lr: float) -> BenchConfig:
    from dataclasses import replace

    return replace(bench, lr=lr)


@pytest.mark.parametrize(
    ("algo", "flag", "value"),
    [
        ("ppo", "epsilon_high", 0.3),
        ("reinforce", "top_entropy_quantile", 0.2),
        ("rloo", "scale_rewards", "batch"),
        ("rebn", "dynamic_sampling", True),
        ("sapo", "epsilon_high", 0.3),
        ("gspo", "sapo_tau_neg", 2.0),
    ],
)
def test_an_option_the_algorithm_does_not_use_is_refused(algo, flag, value):
    with pytest.raises(ConfigError, match=f"--{flag.replace('_', '-')} does not apply to {algo}"):
        TrainConfig(algo=algo, steps=1, **{flag: value})


def test_bad_values_of_the_new_options_are_refused():
    with pytest.raises(ConfigError, match="top-entropy-quantile"):
        TrainConfig(algo="dapo", steps=1, top_entropy_quantile=0.0)
    with pytest.raises(ConfigError, match="overlong-buffer"):
        TrainConfig(algo="dapo", steps=1, overlong_buffer=1.0)
    with pytest.raises(ConfigError, match="rollout-correction-cap"):
        TrainConfig(
            algo="grpo",
            steps=1,
            rollout_precision="bf16",
            rollout_correction="mis",
            rollout_correction_cap=1.0,
        )
    with pytest.raises(ConfigError, match="dynamic-sampling does not apply to reinforce_pp"):
        TrainConfig(algo="reinforce_pp", steps=1, dynamic_sampling=True)


def test_envs_shows_the_card(capsys):
    from agents.cli import main

    assert main(["envs", "--json"]) == 0
    records = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["rlenv/Arithmetic-v0"]["card"] == {"lr": 1e-5}
    assert records["rlenv/Brief-v0"]["card"] == {}


# ---- the shared advantage pieces the menu added ---------------------------------------------------------
def test_scaled_group_advantages_by_group_batch_or_nothing():
    rewards = torch.tensor([1.0, 3.0, 2.0, 2.0])
    centred = torch.tensor([-1.0, 1.0, 0.0, 0.0])
    torch.testing.assert_close(scaled_group_advantages(rewards, 2, "none"), centred)
    torch.testing.assert_close(scaled_group_advantages(rewards, 2, "batch"), centred / (rewards.std() + 1e-4))
    group_std = torch.tensor([2.0**0.5, 2.0**0.5, 0.0, 0.0])
    torch.testing.assert_close(scaled_group_advantages(rewards, 2, "group"), centred / (group_std + 1e-4))


def test_turn_returns_credit_each_turn_with_the_rewards_from_it_on():
    mask = torch.tensor([[1.0, 1, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0]])
    rewards = torch.tensor([[0.0, 0.5, 0, 0, 0, -0.3], [0, 0, 1.0, 0, 0, 0]])
    returns, turn = turn_returns(rewards, mask, gamma=0.5)
    torch.testing.assert_close(returns, torch.tensor([0.5 - 0.15, -0.3, 1.0]))
    assert turn.tolist() == [[0, 0, -1, -1, 1, 1], [2, 2, 2, -1, -1, -1]]
