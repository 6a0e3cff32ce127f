"""PPO on rlenv/PositiveReview-v0 with the embedded model: mean VADER compound before vs after a
fixed CPU time budget (DESIGN.md's target: a gain of more than 0.3 within 10 CPU minutes).

Before and after are measured the same way: ``agents.training.trainer.evaluate`` over the same seeded
evaluation episodes (prompts the training rollouts are not seeded with), sampling at temperature 1.
Training is ``rlenv train``'s own code path (``agents.training.trainer.train``) with the settings printed.

    python benchmarks/ppo_positive_review.py                         # 600 s budget, the target's setting
    python benchmarks/ppo_positive_review.py --time-budget 300 --out runs/bench_ppo
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from agents.training.config import TrainConfig
from agents.training.policy import LMPolicy
from agents.training.trainer import evaluate, make_envs, train


def mean_reward(model: str, config: TrainConfig, episodes: int) -> dict:
    policy = LMPolicy.from_pretrained(model, device="cpu")
    envs = make_envs(config, model)
    try:
        return evaluate(policy, envs, episodes, seed=12345)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-budget", type=float, default=600.0, help="training seconds")
    parser.add_argument("--episodes", type=int, default=256, help="evaluation episodes, before and after")
    parser.add_argument("--lr", type=float, default=None, help="default: TrainConfig's")
    parser.add_argument("--kl-coef", type=float, default=None, help="default: TrainConfig's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: TrainConfig's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import rlenv

    model = str(rlenv.DEFAULT_MODEL)
    out = args.out or Path(tempfile.mkdtemp(prefix="ppo_positive_review_"))
    overrides = {k: v for k, v in (("lr", args.lr), ("kl_coef", args.kl_coef), ("batch_size", args.batch_size))
                 if v is not None}
    config = TrainConfig(algo="ppo", env="rlenv/PositiveReview-v0", time_budget=args.time_budget, seed=args.seed,
                         out=str(out), device="cpu", **overrides)
    before = mean_reward(model, config, args.episodes)
    started = time.perf_counter()
    result = train(config)
    wall = time.perf_counter() - started
    after = mean_reward(str(result.checkpoint), config, args.episodes)
    report = {
        "benchmark": "ppo_positive_review",
        "time_budget_s": args.time_budget,
        "train_wall_s": round(wall, 1),
        "updates": result.step,
        "episodes": result.episodes,
        "lr": config.lr,
        "kl_coef": config.kl_coef,
        "batch_size": config.batch_size,
        "reward_before": round(before["reward_mean"], 4),
        "reward_after": round(after["reward_mean"], 4),
        "gain": round(after["reward_mean"] - before["reward_mean"], 4),
        "final_kl": result.final.get("kl"),
        "eos_rate_before": round(before["eos_rate"], 3),
        "eos_rate_after": round(after["eos_rate"], 3),
        "samples_after": after["samples"],
        "threads": args.threads,
        "run": str(result.out),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
