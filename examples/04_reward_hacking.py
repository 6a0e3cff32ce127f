"""Reward hacking in miniature: optimise a weak learned reward model and watch the true reward.

What it teaches
---------------
In RLHF the reward the policy optimises is a *learned* reward model, a proxy for what people want.
A proxy is only right on text like its training data. Push a policy hard against it and the policy
finds text the proxy over-rates: the proxy reward keeps climbing while the true ("gold") reward
stalls or falls. Gao et al. (2022) measured this as a function of KL(policy || reference);
this script reproduces the shape on a CPU in a few minutes.

1. Gold reward: VADER sentiment (the reward of ``rlenv/PositiveReview-v0``).
2. Proxy: the seeds' Transformer-encoder RM, deliberately weak — a tiny encoder trained with MSE on
   a few hundred templated sentences scored by VADER (``reward_models.datasets``).
3. PPO on PositiveReview with the proxy as the reward and a small KL coefficient. A wrapper around
   the proxy also scores every completion with VADER, on the side, so we see both rewards of the
   same completions. The policy never sees the gold reward.

The script prints the proxy's quality on held-out templated sentences (good) and on the
embedded model's own completions (worse: off-distribution), then gold vs proxy reward at a few KL
points along the run. The PNG shows both rewards against KL.

Measured (2 CPU threads, seed 0, 80 updates of 16, lr 1e-4, about 50 s): the proxy correlates 0.83
with VADER on held-out templated sentences but only 0.07 on the untrained LM's own completions.
Means over 16 updates, proxy / gold: KL 6.6 nats +0.08 / +0.04; 20 nats +0.17 / +0.26; 52 nats
+0.38 / +0.68; 48 nats +0.44 / +0.81 (gold's peak); 77 nats +0.42 / +0.72. The gold reward
climbs with the proxy up to about 50 nats, then falls back while the proxy holds, and the text
degrades into VADER-word salad ("To elegant album train ride wanted. ... argument fantastic.").
The effect is mild on this small model; with ``--steps 200`` the gold reward drifts down to +0.64
at 137 nats while the proxy, too, sags (+0.27), so this proxy is hard to exploit for long.

Run
---
    python examples/04_reward_hacking.py                   # a few minutes on 2 CPU cores
    python examples/04_reward_hacking.py --steps 200       # push further
    RLENV_EXAMPLES_QUICK=1 python examples/04_reward_hacking.py   # smoke test: tiny RM, 2 updates

Writes ``<out>/04_reward_hacking.png``, the proxy RM (``<out>/04_proxy_rm``) and the PPO run's
metrics.jsonl (``<out>/04_runs/ppo_proxy``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import reward_models  # noqa: E402
import rlenv  # noqa: E402
from agents.config import TrainConfig  # noqa: E402
from agents.trainer import train  # noqa: E402
from reward_models import RMTrainConfig, train_reward_model  # noqa: E402
from reward_models.datasets import sentiment_dataset, write_jsonl  # noqa: E402
from reward_models.metrics import pearson  # noqa: E402

QUICK = os.environ.get("RLENV_EXAMPLES_QUICK") == "1"
ENV = "rlenv/PositiveReview-v0"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/out"), help="output directory")
    parser.add_argument("--rm-texts", type=int, default=80 if QUICK else 300,
                        help="VADER-scored sentences the proxy RM is trained on (small on purpose)")
    parser.add_argument("--rm-epochs", type=int, default=2 if QUICK else 8, help="passes over them")
    parser.add_argument("--steps", type=int, default=2 if QUICK else 80, help="PPO updates")
    parser.add_argument("--batch-size", type=int, default=4 if QUICK else 16, help="episodes per update")
    parser.add_argument("--kl-coef", type=float, default=0.01, help="small, so the policy may drift far")
    parser.add_argument("--lr", type=float, default=1e-4, help="PPO learning rate")
    parser.add_argument("--model", default=None, help="local causal LM directory (default: rlenv.DEFAULT_MODEL)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1 if QUICK else 2, help="torch CPU threads")
    return parser.parse_args()


class WatchedProxy:
    """The proxy reward PPO optimises; it also scores the same completions with the gold reward and
    keeps both, so the script can compare them per update. Only the proxy's rewards are returned."""

    name = "proxy_rm"

    def __init__(self, proxy: Any, gold: Any) -> None:
        self.proxy, self.gold = proxy, gold
        self.proxy_seen: list[float] = []
        self.gold_seen: list[float] = []

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        rewards = self.proxy(prompts, completions)
        self.proxy_seen.extend(rewards)
        self.gold_seen.extend(self.gold(prompts, completions))
        return rewards

    def drain(self) -> tuple[float, float]:
        """Mean (proxy, gold) reward of the completions scored since the last call."""
        means = float(np.mean(self.proxy_seen)), float(np.mean(self.gold_seen))
        self.proxy_seen.clear()
        self.gold_seen.clear()
        return means


def train_proxy(args: argparse.Namespace) -> Any:
    """A deliberately weak RM: a tiny encoder, a few hundred templated sentences, MSE on VADER scores."""
    data = sentiment_dataset(args.rm_texts, seed=args.seed)
    path = write_jsonl([{"text": e.text, "score": e.score} for e in data], args.out / "04_data" / "proxy_train.jsonl")
    config = RMTrainConfig(loss="mse", data=str(path), out=str(args.out / "04_proxy_rm"), epochs=args.rm_epochs,
                           hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, include_prompt=False,
                           seed=args.seed)
    result = train_reward_model(config)
    print(f"proxy RM: {result.num_train} training sentences, validation Pearson with VADER "
          f"{result.val_metrics['pearson']:.3f} (constant baseline 0.000)")
    return result.model


def sample_completions(n: int, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``n`` (prompt, completion) pairs from the untrained model on PositiveReview, via the env."""
    from agents.policy import LMPolicy
    from agents.rollout import collect_rollouts

    model = args.model or rlenv.DEFAULT_MODEL
    policy = LMPolicy.from_pretrained(model, device="cpu")
    envs = gym.make_vec(ENV, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode="Disabled",
                        tokenizer=model, **({"max_new_tokens": 6} if QUICK else {}))
    batch = collect_rollouts(policy, envs, seed=args.seed + 1)
    envs.close()
    return batch.prompts, batch.completions


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    gold = reward_models.make("vader")

    # 1. The proxy, and how well it tracks the gold reward on- and off-distribution.
    proxy = train_proxy(args)
    prompts, completions = sample_completions(8 if QUICK else 64, args)
    off = pearson(proxy(prompts, completions), gold(prompts, completions))
    print(f"          on {len(completions)} completions of the untrained LM: Pearson with VADER {off:.3f}")

    # 2. PPO against the proxy. The env looks reward models up by name, so we register ours.
    watched = WatchedProxy(proxy, gold)
    reward_models.register("proxy_rm", lambda: watched, overwrite=True)
    out = args.out / "04_runs" / "ppo_proxy"
    shutil.rmtree(out, ignore_errors=True)  # the trainer refuses to overwrite a finished run
    config = TrainConfig(algo="ppo", env=ENV, env_args=("reward_model=proxy_rm",), model=args.model,
                         steps=args.steps, batch_size=args.batch_size, kl_coef=args.kl_coef, lr=args.lr,
                         ppo_epochs=4, minibatch_size=args.batch_size // 2, seed=args.seed, out=str(out),
                         device="cpu", checkpoint_every=0, max_new_tokens=6 if QUICK else 24)
    history: list[dict[str, float]] = []

    def after_update(record: dict) -> None:
        proxy_mean, gold_mean = watched.drain()
        history.append({"step": record["step"], "kl": record["kl"], "proxy": proxy_mean, "gold": gold_mean,
                        "sample": record["sample"]})
        if record["step"] == 1 or record["step"] % 10 == 0:
            print(f"  update {record['step']:>3}: KL {record['kl']:6.2f}  proxy {proxy_mean:+.3f}  "
                  f"gold {gold_mean:+.3f}   e.g. {record['sample']!r}")

    print(f"\nPPO on {ENV} against the proxy (kl_coef {args.kl_coef}, {args.steps} updates x {args.batch_size})")
    train(config, callback=after_update)

    # 3. Gold vs proxy as KL grows. KL is noisy per update, so bin the run into a few stretches.
    steps = np.array([h["step"] for h in history])
    kl = np.array([h["kl"] for h in history])
    proxy_r = np.array([h["proxy"] for h in history])
    gold_r = np.array([h["gold"] for h in history])
    chunks = np.array_split(np.arange(len(history)), min(5, len(history)))
    print("\n  updates    KL (nats)   proxy reward   gold reward (VADER)   gap")
    for idx in chunks:
        k, p, g = kl[idx].mean(), proxy_r[idx].mean(), gold_r[idx].mean()
        print(f"  {steps[idx[0]]:>3}-{steps[idx[-1]]:<4}  {k:>9.2f}   {p:>+12.3f}   {g:>+19.3f}   {p - g:+.3f}")
    print(f"  last completion: {history[-1]['sample']!r}")

    fig, (ax_kl, ax_step) = plt.subplots(1, 2, figsize=(12, 4.2))
    order = np.argsort(kl)
    window = max(1, len(history) // 8)

    def smooth(y: np.ndarray) -> np.ndarray:
        return np.convolve(y, np.ones(window) / window, mode="valid")

    for y, color, label in ((proxy_r, "C1", "proxy RM (what PPO optimises)"), (gold_r, "C0", "gold: VADER")):
        ax_kl.scatter(kl, y, color=color, s=10, alpha=0.35)
        ax_kl.plot(smooth(kl[order]), smooth(y[order]), color=color, lw=2, label=label)
        ax_step.plot(steps, y, color=color, alpha=0.3, lw=1)
        ax_step.plot(steps[window - 1:], smooth(y), color=color, lw=2, label=label)
    ax_kl.set(title="Reward against KL from the reference", xlabel="KL(policy || reference), nats per completion",
              ylabel="mean reward of the batch")
    ax_step.set(title="Reward per update", xlabel="PPO update", ylabel="mean reward of the batch")
    ax_kl.legend(fontsize=8)
    ax_step.legend(fontsize=8)
    fig.suptitle(f"Over-optimising a weak learned reward model (PPO on {ENV}, kl_coef {args.kl_coef})")
    fig.tight_layout()
    png = args.out / "04_reward_hacking.png"
    fig.savefig(png, dpi=110)
    print(f"\nsaved {png} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
