"""Checkpoints: kill-and-resume reproduces the uninterrupted run; config drift and bad paths are refused."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from agents.training.checkpoint import (
    STATE_FILE,
    CheckpointError,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from agents.training.config import ConfigError
from agents.training.run_log import read_metrics
from agents.training.trainer import train
from tests.agents.helpers_trainers import tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread


class Killed(Exception):
    """Stands in for the process dying between two updates."""


def curve(run) -> list[tuple]:
    return [(r["step"], r["episodes"], r["loss"], r["reward_mean"], r["kl"], r["kl_coef"]) for r in read_metrics(run)]


@pytest.mark.parametrize(
    ("algo", "extra"),
    [
        ("ppo", {"minibatch_size": 4, "kl_target": 0.05}),  # value head, Adam moments, shuffling, adaptive KL
        ("grpo", {"ppo_epochs": 2, "minibatch_size": 4}),
        ("reinforce", {"baseline": "running-mean"}),  # the running baseline lives in the checkpoint
        ("rloo", {}),
        ("ppo", {"lora_rank": 4}),  # adapters saved apart; the reference is the base with adapters off
    ],
)
def test_kill_and_resume_equals_the_uninterrupted_run(tiny_model, tmp_path, algo, extra) -> None:
    warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")  # peft's note on GPT-2's Conv1D
    full = tmp_path / "full"
    train(tiny_config(tiny_model, full, algo=algo, steps=5, checkpoint_every=2, **extra))

    def die_after_step_3(record):
        if record["step"] == 3:
            raise Killed

    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        train(tiny_config(tiny_model, broken, algo=algo, steps=5, checkpoint_every=2, **extra), die_after_step_3)
    assert [r["step"] for r in read_metrics(broken)] == [1, 2, 3]  # step 3 logged but not checkpointed
    assert find_checkpoint(broken).name == "step_000002"

    resumed = train(tiny_config(tiny_model, broken, algo=algo, steps=5, checkpoint_every=2, resume=str(broken),
                                **extra))
    assert resumed.step == 5
    assert curve(broken) == curve(full)
    final_full = torch.load(find_checkpoint(full) / STATE_FILE, weights_only=True)
    final_resumed = torch.load(find_checkpoint(broken) / STATE_FILE, weights_only=True)
    assert final_full["episodes"] == final_resumed["episodes"] == 40


def test_resume_can_extend_a_finished_run_into_a_new_directory(tiny_model, tmp_path) -> None:
    train(tiny_config(tiny_model, tmp_path / "a", steps=2))
    result = train(tiny_config(tiny_model, tmp_path / "b", steps=3, resume=str(tmp_path / "a")))
    assert [r["step"] for r in result.metrics] == [1, 2, 3]
    assert [r["step"] for r in read_metrics(tmp_path / "a")] == [1, 2]  # the source run is left alone


def test_resume_with_a_different_config_lists_the_differences(tiny_model, tmp_path) -> None:
    train(tiny_config(tiny_model, tmp_path / "run", algo="grpo", steps=1))
    with pytest.raises(ConfigError) as info:
        train(tiny_config(tiny_model, tmp_path / "run", algo="grpo", steps=2, lr=5e-4, group_size=2,
                          resume=str(tmp_path / "run")))
    message = str(info.value)
    assert "group_size: 4 (checkpoint) != 2 (now)" in message
    assert "lr: 0.001 (checkpoint) != 0.0005 (now)" in message
    assert "train_config.json" in message


def test_resume_from_a_missing_or_empty_directory_names_the_fix(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist; pass the run's --out directory"):
        find_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        find_checkpoint(tmp_path / "empty")


def test_checkpoints_are_pruned_complete_and_loadable_safely(tiny_model, tmp_path) -> None:
    run = tmp_path / "run"
    train(tiny_config(tiny_model, run, algo="ppo", steps=4, checkpoint_every=1, keep_checkpoints=2))
    assert [p.name for p in list_checkpoints(run)] == ["step_000003", "step_000004"]
    assert not list((run / "checkpoints").glob(".tmp*"))
    ckpt, state, config = load_checkpoint(run)  # torch.load(weights_only=True) inside
    assert ckpt.name == "step_000004" and state["step"] == 4 and config.algo == "ppo"
    assert {"optimizer", "kl_controller", "generator"} <= set(state["algorithm"])
    assert {"torch", "numpy", "python"} <= set(state["rng"])
    assert (ckpt / "value_head.safetensors").exists() and (ckpt / "config.json").exists()
    assert json.loads((ckpt / "train_config.json").read_text())["resume"] is None
