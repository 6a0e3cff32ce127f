"""Stock SB3 PPO through ``agents.bridges.sb3.LMActorCriticPolicy`` vs our native PPO: env tokens/s, same process.

Both sides train the same model on the same task, fp32 on the same device, for the same number of
PPO updates over (about) the same number of env tokens, with the same update shape: 4 epochs, one
minibatch holding the whole rollout, Adam, lr, clip 0.2, value coef 0.1, gamma 1, lambda 0.95,
grad-norm clip 1. The native side runs with ``kl_coef=0`` (no frozen reference), because SB3's PPO
has no KL term; the speed difference is then the bridge's structure, not extra work:

- native (``agents.training.trainer``): the env steps a batch of episodes with the KV cache (one token per
  forward), and the update scores each whole sequence in one forward;
- SB3 (``sb3``, the bridge's defaults since issue 24, with ``rollout_buffer_class=EpisodeRolloutBuffer``):
  acting keeps a KV cache per sub-env (one token per forward), and the update scores the stored
  transitions one forward per episode (agents/bridges/sb3_forward.py);
- SB3 plain (``sb3-plain``, the bridge before issue 24): every env step re-runs the LM over the full
  observation, and the update re-scores every stored transition as its own (L,) sequence, B x T
  rows instead of B.

Protocol: the native run goes first (``--updates`` updates of ``--batch-size`` episodes); the SB3
sides then get ``n_envs = batch_size`` and ``n_steps`` = the native mean env tokens per update /
batch size, so they see as many env tokens per update. With ``--repeats 2`` the SB3 sides run again
in the reverse order (a change in a shared machine's load hits both alike); the median counts. The
first update of each run is a warm-up and is not timed. Tokens/s = env tokens (generated tokens,
EOS included) / wall seconds of the timed updates (rollout + learning; model loading and
checkpoints excluded). The machine's load average is recorded beside each run.

    python benchmarks/sb3_vs_native.py                        # embedded model, PositiveReview
    python benchmarks/sb3_vs_native.py --quick                # a smaller, faster run
    python benchmarks/sb3_vs_native.py --model PATH --env rlenv/Arithmetic-v0
    python benchmarks/sb3_vs_native.py --quick --sides sb3-plain,sb3 --repeats 2 --threads 1   # the savers' ratio
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from transformers.utils import logging as hf_logging

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from machine_load import load_note  # noqa: E402

import rlenv  # noqa: E402
from agents.bridges.sb3 import EpisodeRolloutBuffer, LMActorCriticPolicy, make_sb3_vec_env  # noqa: E402
from agents.training.config import TrainConfig  # noqa: E402
from agents.training.trainer import train  # noqa: E402


class RolloutClock(BaseCallback):
    """Timestamps of every rollout start and end, so each SB3 iteration is timed on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[float] = []
        self.ends: list[float] = []

    def _on_rollout_start(self) -> None:
        self.starts.append(time.perf_counter())

    def _on_rollout_end(self) -> None:
        self.ends.append(time.perf_counter())

    def _on_step(self) -> bool:
        return True


def run_native(args: argparse.Namespace, model: str) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="sb3_vs_native_"))
    config = TrainConfig(algo="ppo", env=args.env, model=model, steps=args.updates, batch_size=args.batch_size,
                         max_new_tokens=args.max_new_tokens, lr=args.lr, kl_coef=0.0, ppo_epochs=4,
                         clip_range=0.2, vf_coef=0.1, gamma=1.0, lam=0.95, max_grad_norm=1.0,
                         seed=args.seed, device=args.device, checkpoint_every=0, out=str(out))
    records = train(config).metrics
    tokens = [r["completion_length"] * args.batch_size for r in records]
    timed = records[1:]  # the first update warms up
    seconds = sum(r["rollout_s"] + r["update_s"] for r in timed)
    timed_tokens = sum(tokens[1:])
    return {
        "updates_timed": len(timed),
        "env_tokens": round(timed_tokens),
        "tokens_per_update": sum(tokens) / len(tokens),
        "seconds": seconds,
        "rollout_s": sum(r["rollout_s"] for r in timed),
        "update_s": sum(r["update_s"] for r in timed),
        "tokens_per_s": timed_tokens / seconds,
        "load": load_note(),
    }


def run_sb3(args: argparse.Namespace, model: str, n_steps: int, savers: bool = True) -> dict[str, Any]:
    env_kwargs = {"tokenizer": model}
    if args.max_new_tokens is not None:
        env_kwargs["max_new_tokens"] = args.max_new_tokens
    venv = make_sb3_vec_env(args.env, args.batch_size, **env_kwargs)
    per_update = n_steps * args.batch_size
    algo = PPO(LMActorCriticPolicy, venv, policy_kwargs=dict(model=model), n_steps=n_steps, batch_size=per_update,
               n_epochs=4, learning_rate=args.lr, clip_range=0.2, vf_coef=0.1, ent_coef=0.0, gamma=1.0,
               gae_lambda=0.95, max_grad_norm=1.0, seed=args.seed, device=args.device,
               rollout_buffer_class=EpisodeRolloutBuffer if savers else None)
    algo.policy.features_extractor.episode_work_savers = savers
    clock = RolloutClock()
    algo.learn(args.updates * per_update, callback=clock)
    finished = time.perf_counter()
    bounds = [*clock.starts, finished]  # iteration i = rollout i + its update
    timed = range(1, args.updates)  # the first update warms up
    seconds = sum(bounds[i + 1] - bounds[i] for i in timed)
    rollout_s = sum(clock.ends[i] - clock.starts[i] for i in timed)
    max_new_tokens = venv.get_attr("max_new_tokens")[0]
    venv.close()
    return {
        "max_new_tokens": max_new_tokens,
        "updates_timed": len(timed),
        "env_tokens": per_update * len(timed),
        "tokens_per_update": per_update,
        "seconds": seconds,
        "rollout_s": rollout_s,
        "update_s": seconds - rollout_s,
        "tokens_per_s": per_update * len(timed) / seconds,
        "load": load_note(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model + tokenizer directory (default: rlenv.DEFAULT_MODEL)")
    parser.add_argument("--env", default="rlenv/PositiveReview-v0")
    parser.add_argument("--batch-size", type=int, default=16, help="episodes per native update = SB3 n_envs")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the env's own")
    parser.add_argument("--updates", type=int, default=4, help="PPO updates per side, the first one untimed")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--quick", action="store_true", help="batch 8, 16 new tokens, 3 updates")
    parser.add_argument("--sides", default="native,sb3", help="comma-separated from native, sb3, sb3-plain")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each SB3 side, alternating order")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.max_new_tokens, args.updates = 8, 16, 3
    if args.updates < 2:
        parser.error("--updates must be >= 2 (the first update of each side is an untimed warm-up)")
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # keep stdout to the one JSON report
    model = args.model or rlenv.DEFAULT_MODEL
    if not Path(model).is_dir():
        parser.error(f"no model at {model}; build the embedded one (python -m tools.corpus, tools.tokenizer, tools.model) or pass --model PATH")

    sides = args.sides.split(",")
    if not set(sides) <= {"native", "sb3", "sb3-plain"}:
        parser.error(f"--sides takes native, sb3, sb3-plain; got {args.sides}")
    before = load_note()
    native = run_native(args, model)  # always: it sets the SB3 sides' n_steps
    n_steps = max(1, round(native["tokens_per_update"] / args.batch_size))
    sb3_sides = [side for side in sides if side != "native"]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sb3_sides}
    for repeat in range(args.repeats):
        for side in sb3_sides if repeat % 2 == 0 else sb3_sides[::-1]:
            runs[side].append(run_sb3(args, model, n_steps, savers=side == "sb3"))
    results = {side: min(r, key=lambda run: abs(run["tokens_per_s"] - statistics.median(x["tokens_per_s"] for x in r)))
               for side, r in runs.items()}
    report: dict[str, Any] = {
        "benchmark": "sb3_vs_native",
        "model": model,
        "env": args.env,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "max_new_tokens": next(iter(results.values()))["max_new_tokens"] if results else args.max_new_tokens,
        "sb3_n_steps": n_steps,
        "repeats": args.repeats,
        "load_before": before,
        "native": {k: round(v, 3) if isinstance(v, float) else v for k, v in native.items()},
    }
    for side, result in results.items():
        result.pop("max_new_tokens")
        report[side] = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
        report[f"native_over_{side}_tokens_per_s"] = round(native["tokens_per_s"] / result["tokens_per_s"], 2)
    if {"sb3", "sb3-plain"} <= set(results):
        per_run = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(runs["sb3"], runs["sb3-plain"], strict=True)]
        report["sb3_over_sb3_plain_tokens_per_s"] = [round(r, 2) for r in per_run]
    report["load_after"] = load_note()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
