"""How long the SB3 bridge's usage snippet takes, and whether a shorter ``learn()`` already learns.

The snippet (docs/speed.md, the README's "Bridges" section): stock SB3 PPO with
``LMActorCriticPolicy`` on PositiveReview, 16 sub-envs of rlenv's native batched env,
``n_steps=16, batch_size=256`` (one minibatch per epoch, SB3's default 10 epochs), the embedded model.
This script runs it for ``--timesteps`` env steps and reports the wall time of ``learn`` and the
mean VADER reward of a seeded evaluation (``--eval-episodes`` sampled episodes, the same seeds
before and after) of the untrained and the trained policy. ``--plain`` switches the bridge's
episode savers off (one forward per observation, as before issue 24), to time that path too.

    python benchmarks/sb3_snippet_time.py --timesteps 20000             # the snippet as written
    python benchmarks/sb3_snippet_time.py --timesteps 4096 --threads 1   # the short run in docs/speed.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from machine_load import load_note  # noqa: E402

import rlenv  # noqa: E402
from agents.bridges.sb3 import LMActorCriticPolicy, make_sb3_vec_env  # noqa: E402


def mean_reward(model, episodes: int, seed: int) -> float:
    """Mean final reward of ``episodes`` sampled episodes on freshly seeded sub-envs."""
    venv = make_sb3_vec_env("rlenv/PositiveReview-v0", n_envs=16, monitor=False)
    venv.seed(seed)
    torch.manual_seed(seed)
    obs, rewards = venv.reset(), []
    while len(rewards) < episodes:
        actions, _ = model.predict(obs, deterministic=False)
        obs, reward, dones, _ = venv.step(actions)
        rewards.extend(reward[dones].tolist())
    venv.close()
    return float(np.mean(rewards[:episodes]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--eval-episodes", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--plain", action="store_true", help="the bridge without its episode savers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from stable_baselines3 import PPO
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    env = make_sb3_vec_env("rlenv/PositiveReview-v0", n_envs=16)
    model = PPO(
        LMActorCriticPolicy,
        env,
        n_steps=16,
        batch_size=256,
        seed=args.seed,
        policy_kwargs=dict(model=rlenv.DEFAULT_MODEL),
    )
    model.policy.features_extractor.episode_work_savers = not args.plain
    before = mean_reward(model, args.eval_episodes, seed=12345)
    load_before = load_note()
    start = time.perf_counter()
    model.learn(args.timesteps)
    seconds = time.perf_counter() - start
    after = mean_reward(model, args.eval_episodes, seed=12345)
    print(
        json.dumps(
            {
                "benchmark": "sb3_snippet_time",
                "timesteps": args.timesteps,
                "savers": not args.plain,
                "threads": torch.get_num_threads(),
                "learn_s": round(seconds, 1),
                "env_steps_per_s": round(args.timesteps / seconds, 1),
                "eval_reward_before": round(before, 3),
                "eval_reward_after": round(after, 3),
                "eval_episodes": args.eval_episodes,
                "load_before": load_before,
                "load_after": load_note(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
