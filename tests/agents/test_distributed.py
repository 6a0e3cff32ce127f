"""Data-parallel training: the sharding arithmetic in-process, and a real 2-process ``accelerate launch``
on the CPU (gloo): both ranks end with bit-identical weights, the logged reward is the mean over both
ranks' episodes (recomputed here independently), and a killed-and-resumed 2-process run continues the
same curve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.training.config import ConfigError
from agents.training.distributed import Ranks, reduce_stats, refuse_sharded_launch, weights_sha256
from agents.training.policy import LMPolicy
from agents.training.rollout import collect_rollouts
from agents.training.run_log import read_metrics
from agents.training.trainer import Trainer, make_envs, rollout_seed
from tests.agents.helpers_trainers import tiny_config, tiny_env_args

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread

REPO = Path(__file__).resolve().parents[2]


def test_one_process_is_a_no_op() -> None:
    ranks = Ranks()
    assert ranks.is_main and not ranks.distributed
    assert ranks.mean(3.5) == 3.5 and ranks.any(True) and ranks.gather("x") == ["x"]
    stats = {"reward_mean": 0.25, "kl": None, "sample": "text"}
    assert reduce_stats(stats, ranks) is stats


@pytest.mark.parametrize("var", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_an_fsdp_or_deepspeed_launch_is_refused_not_run_unsharded(
    tiny_model, tmp_path, monkeypatch, capsys, var
) -> None:
    """`accelerate launch --use_fsdp` (or a DeepSpeed config) sets these; rlenv never shards, so it says so
    (exit 2, the fix named) instead of training whole-model replicas the user believes are sharded."""
    from agents.cli import main

    refuse_sharded_launch({var: "false"})  # only a request for the engine is refused
    monkeypatch.setenv(var, "true")
    with pytest.raises(ConfigError, match="--multi_gpu"):
        refuse_sharded_launch(os.environ)
    argv = [
        "train",
        "--model",
        tiny_model,
        "--env-args",
        *tiny_env_args(),
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    ]
    assert main(argv) == 2
    assert "does not support" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_each_rank_takes_its_share_and_groups_never_split(tiny_model, tmp_path) -> None:
    two = Ranks(rank=1, world_size=2)
    local = Trainer._local_config(
        tiny_config(tiny_model, tmp_path, algo="grpo", batch_size=16, group_size=4, minibatch_size=8), two
    )
    assert (local.batch_size, local.minibatch) == (8, 4)
    with pytest.raises(ConfigError, match="multiple of 8"):  # 12 = 3 groups of 4 cannot split over 2 ranks
        Trainer._local_config(
            tiny_config(tiny_model, tmp_path, algo="grpo", batch_size=12, group_size=4), two
        )
    assert (
        Trainer._local_config(tiny_config(tiny_model, tmp_path, algo="ppo", batch_size=6), two).batch_size
        == 3
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(model: str, out: Path, steps: int, *extra: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "agents.cli",
        "train",
        "--algo",
        "grpo",
        "--env",
        "rlenv/TextGen-v0",
        "--env-args",
        *tiny_env_args(),
        "--model",
        model,
        "--steps",
        str(steps),
        "--batch-size",
        "8",
        "--group-size",
        "2",
        "--lr",
        "1e-3",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--checkpoint-every",
        "1",
        "--keep-checkpoints",
        "5",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_train_in_lockstep_and_resume_exactly(tiny_model, tmp_path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    launch(tiny_model, full, 3)
    records = read_metrics(full)
    assert [r["episodes"] for r in records] == [8, 16, 24]  # the global batch, both ranks' episodes
    assert all(r["world_size"] == 2 for r in records)

    # rank 0 and rank 1 hold bit-identical weights, and they are the ones saved
    state = torch.load(full / "checkpoints" / "step_000003" / "trainer_state.pt", weights_only=True)
    saved = LMPolicy.from_pretrained(full / "checkpoints" / "step_000003", device="cpu")
    assert state["world_size"] == 2 and state["weights_sha256"] == [weights_sha256(saved)] * 2

    # the first update's reward, recomputed here: each rank's 4 episodes from the untrained model
    policy = LMPolicy.from_pretrained(tiny_model, device="cpu")
    envs = make_envs(
        tiny_config(tiny_model, tmp_path / "x", algo="grpo", batch_size=4, group_size=2), tiny_model
    )
    rank_means = [
        collect_rollouts(policy, envs, seed=rollout_seed(0, 0) + rank * 4, options={"group_size": 2})
        .rewards.mean()
        .item()
        for rank in (0, 1)
    ]
    envs.close()
    assert records[0]["rank_reward_means"] == pytest.approx(rank_means, abs=1e-6)
    assert records[0]["reward_mean"] == pytest.approx(sum(rank_means) / 2, abs=1e-6)

    # killed after two updates, resumed with the same number of processes: the same curve
    launch(tiny_model, part, 2)
    launch(tiny_model, part, 3, "--resume", str(part))
    resumed = read_metrics(part)
    for key in ("reward_mean", "loss", "kl", "grad_norm"):
        assert [r[key] for r in resumed] == pytest.approx([r[key] for r in records], abs=1e-6), key
    assert json.loads((part / "checkpoints" / "step_000003" / "train_config.json").read_text())["steps"] == 3


# ---- one update with 2 processes equals one update with 1 process on the same global batch -------------
# Exact by construction where every statistic the update takes is global (the batch-mean baseline, RLOO's
# advantage std, --scale-rewards batch's reward std, ReBN's turn-return mean and std, REINFORCE++'s return
# mean and std over tokens: ranks hold different numbers of turns and tokens, so these are count-weighted) or
# per group/sequence (groups never straddle ranks; sequence-mean and sequence-sum average over episodes,
# which both ranks hold equally many of). Under token-mean each rank's loss is its own tokens' mean, so
# those equal the one-process update only approximately (as in DDP): they are not in this list.
# name: (algo, config overrides). Adam turns float noise in near-zero gradients into weight differences
# of up to a few % of one step (lr), so the weights are compared to lr / 10 and the gradients to 1e-6
DATA_PARALLEL_CASES = {
    "reinforce": ("reinforce", {"minibatch_size": 6, "lr": 1e-4}),
    "reinforce-running-mean": ("reinforce", {"baseline": "running-mean", "kl_coef": 0.0, "lr": 1e-4}),
    "rloo": ("rloo", {"lr": 1e-4}),
    "grpo-two-epochs": ("grpo", {"ppo_epochs": 2, "loss_aggregation": "sequence-mean", "lr": 1e-4}),
    "rebn": ("rebn", {"gamma": 0.9, "lr": 1e-4}),  # turn returns standardised over the global batch's turns
    # returns whitened over the global batch's tokens (ranks hold different numbers of them)
    "reinforce_pp": ("reinforce_pp", {"loss_aggregation": "sequence-mean", "gamma": 0.9, "lr": 1e-4}),
    # group-centred rewards divided by the global batch's reward std
    "grpo-scale-batch": ("grpo", {"scale_rewards": "batch", "loss_aggregation": "sequence-mean", "lr": 1e-4}),
    # advantages (and, with whiten_rewards, rewards) whitened over the global batch's tokens
    # (its value loss is a token mean per rank, approximate as token-mean is: vf_coef 0 leaves it out)
    "ppo": ("ppo", {"loss_aggregation": "sequence-mean", "whiten_rewards": True, "vf_coef": 0.0, "lr": 1e-4}),
    # the entropy threshold is the quantile of the global minibatch's tokens
    "grpo-top-entropy": (
        "grpo",
        {"top_entropy_quantile": 0.5, "loss_aggregation": "sequence-mean", "lr": 1e-4},
    ),
}


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory) -> list[dict]:
    """Every case's update as 2 processes joined by a gloo group over a file store (no port to pick);
    one launch for all cases, since starting the processes is the slow part."""
    tmp, world = tmp_path_factory.mktemp("data_parallel"), 2
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    store, outs = tmp / "store", [tmp / f"rank{r}.pt" for r in range(world)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.agents.data_parallel_worker",
                json.dumps(DATA_PARALLEL_CASES),
                str(r),
                str(world),
                str(store),
                str(outs[r]),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    logs = []
    try:
        for p in procs:  # the timeout is only a safety net against a hung collective
            logs.append(p.communicate(timeout=900)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, log) in enumerate(zip(procs, logs, strict=True)):
        assert p.returncode == 0, f"rank {r} failed:\n{log[-3000:]}"
    return [torch.load(out, weights_only=True) for out in outs]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(DATA_PARALLEL_CASES))
def test_two_process_update_equals_one_process_update_on_the_global_batch(case, two_rank_results) -> None:
    """The gradient every rank steps on is the one-process gradient of the global batch (so a summed
    instead of averaged all-reduce, or any per-rank scaling, fails; the weights alone would not show a
    sum: Adam's first step is scale-free), and the weights after the step are the same."""
    from tests.agents.data_parallel_worker import one_update

    single = one_update(*DATA_PARALLEL_CASES[case], Ranks())
    for r, results in enumerate(two_rank_results):
        rank = results[case]
        assert len(rank["grads"]) == len(single["grads"]) >= 1
        for step, (got, want) in enumerate(zip(rank["grads"], single["grads"], strict=True)):
            for g, w in zip(got, want, strict=True):
                torch.testing.assert_close(
                    g, w, atol=1e-6, rtol=1e-5, msg=lambda m, r=r, s=step: f"rank {r} step {s}: {m}"
                )
        for got, want in zip(rank["weights"], single["weights"], strict=True):
            torch.testing.assert_close(
                got, want, atol=1e-5, rtol=0, msg=lambda m, r=r: f"rank {r} weights: {m}"
            )
        assert rank["stats"]["grad_norm"] == pytest.approx(single["stats"]["grad_norm"], rel=1e-5)
