"""The KL penalty as a dial: PPO at several KL coefficients traces a reward-vs-KL frontier.

What it teaches
---------------
RLHF does not maximise the reward alone. It maximises ``reward - beta * KL(policy || reference)``,
where the reference is the frozen starting model: the KL term (summed over the completion's
tokens) charges the policy for every nat it drifts from text the reference would write.
``beta`` (``kl_coef``) sets the exchange rate:

* small beta: the policy goes wherever the reward leads — high reward, large KL;
* large beta: it stays close to the reference — small KL, and less reward.

We train PPO on ``rlenv/PositiveReview-v0`` (continue a review opening; reward = VADER compound of
the completion, in [-1, 1]) with the embedded model, once per beta, everything else equal. The
script prints each run's final mean reward and KL; the PNG shows the reward and KL curves and the
frontier (final reward against final KL, one point per beta).

Measured (``--threads 1``, seed 0, 60 updates of 16, lr 1e-4; final = mean of the last 12 updates;
on the embedded model as rebuilt in commit 05cd2a8, untrained reward -0.01; 421 s in all beside other
jobs on a 2-core machine, about 3.5 minutes idle): beta 1.0 -> reward +0.07 at KL 2.4 nats, 0.2 ->
+0.31 at 4.8, 0.05 -> +0.54 at 8.1, 0.002 -> +0.88 at 63. Each step down in beta buys reward with
KL, and the last step is the expensive one: from beta 0.05 to 0.002 the reward gains a third while
the KL grows eightfold, and the text goes with it ("The mechanic was | much better than I expected
and we were fairly happy! It was so happy great! This car was plainLet'tved" against beta 0.05's
"pretty great."). The far end is noisy: on the embedded model before its rebuild, the same script
took beta 0.002 to +0.7 by update 20, then let it collapse to +0.3 as its text fell apart, ending
at +0.52 and 99 nats.

Run
---
    python examples/03_kl_tradeoff.py                       # about 3.5 minutes on 1 CPU thread
    python examples/03_kl_tradeoff.py --kl-coefs 0.01 0.3   # your own betas
    RLENV_EXAMPLES_QUICK=1 python examples/03_kl_tradeoff.py   # smoke test: 2 tiny updates per beta

Writes ``<out>/03_kl_tradeoff.png`` and each run's metrics.jsonl under ``<out>/03_runs/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.training.config import TrainConfig  # noqa: E402
from agents.training.trainer import train  # noqa: E402

QUICK = os.environ.get("RLENV_EXAMPLES_QUICK") == "1"
ENV = "rlenv/PositiveReview-v0"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/out"), help="output directory")
    parser.add_argument("--kl-coefs", type=float, nargs="+", default=[0.002, 0.05, 0.2, 1.0],
                        help="one PPO run per KL coefficient (> 0, so each run has a reference to measure KL)")
    parser.add_argument("--steps", type=int, default=2 if QUICK else 60, help="updates per run")
    parser.add_argument("--batch-size", type=int, default=4 if QUICK else 16, help="episodes per update")
    parser.add_argument("--model", default=None, help="local causal LM directory (default: rlenv.DEFAULT_MODEL)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1 if QUICK else 2, help="torch CPU threads")
    return parser.parse_args()


def run(kl_coef: float, args: argparse.Namespace) -> list[dict]:
    """PPO from scratch at ``kl_coef`` into <out>/03_runs/kl_<coef>; returns its metrics records."""
    out = args.out / "03_runs" / f"kl_{kl_coef:g}"
    shutil.rmtree(out, ignore_errors=True)  # the trainer refuses to overwrite a finished run
    config = TrainConfig(algo="ppo", env=ENV, model=args.model, steps=args.steps, batch_size=args.batch_size,
                         kl_coef=kl_coef, lr=1e-4, ppo_epochs=4, minibatch_size=args.batch_size // 2,
                         seed=args.seed, out=str(out), device="cpu", checkpoint_every=0,
                         max_new_tokens=6 if QUICK else 24)
    start = time.perf_counter()
    records = train(config).metrics
    print(f"  beta={kl_coef:<6g} reward {records[0]['reward_mean']:+.3f} -> {records[-1]['reward_mean']:+.3f}, "
          f"KL {records[-1]['kl']:.2f} nats ({time.perf_counter() - start:.0f} s)   "
          f"e.g. {records[-1]['sample']!r}")
    return records


def final(records: list[dict], key: str, window: int) -> float:
    """Mean of ``key`` over the last ``window`` updates: a steadier 'final' value than the last one."""
    return float(np.mean([r[key] for r in records[-window:]]))


def main() -> None:
    args = parse_args()
    if min(args.kl_coefs) <= 0:
        raise SystemExit("--kl-coefs must all be > 0: with beta = 0 PPO loads no reference, so there is no KL to plot")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    print(f"PPO on {ENV}: {args.steps} updates of {args.batch_size} completions per KL coefficient")
    runs = {beta: run(beta, args) for beta in sorted(args.kl_coefs)}

    window = max(1, args.steps // 5)
    initial = np.mean([records[0]["reward_mean"] for records in runs.values()])
    print(f"\nfinal values (mean of the last {window} updates); reward of the untrained model ~ {initial:+.3f}")
    print("  kl_coef   reward   KL(policy||ref), nats per completion")
    frontier = []
    for beta, records in runs.items():
        reward, kl = final(records, "reward_mean", window), final(records, "kl", window)
        frontier.append((beta, kl, reward))
        print(f"  {beta:<7g}  {reward:+.3f}   {kl:.3f}")

    fig, (ax_r, ax_kl, ax_f) = plt.subplots(1, 3, figsize=(16, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(runs)))
    for color, (beta, records) in zip(colors, runs.items(), strict=True):
        steps = [r["step"] for r in records]
        ax_r.plot(steps, [r["reward_mean"] for r in records], color=color, label=f"beta = {beta:g}")
        ax_kl.plot(steps, [r["kl"] for r in records], color=color, label=f"beta = {beta:g}")
    ax_r.set(title="Reward (VADER compound)", xlabel="update", ylabel="mean reward")
    ax_kl.set(title="KL to the reference", xlabel="update", ylabel="nats per completion")
    ax_r.legend(fontsize=8)
    betas, kls, rewards = zip(*frontier, strict=True)
    ax_f.plot(kls, rewards, "-", color="grey", lw=1)
    ax_f.scatter(kls, rewards, c=colors, s=60, zorder=3)
    for beta, kl, reward in frontier:
        ax_f.annotate(f"beta={beta:g}", (kl, reward), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax_f.axhline(initial, color="grey", ls=":", label="untrained model")
    ax_f.set(title="Frontier: final reward vs final KL", xlabel="KL(policy || reference), nats",
             ylabel="final mean reward")
    ax_f.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"PPO on {ENV} at {len(runs)} KL coefficients ({args.steps} updates x {args.batch_size} episodes)")
    fig.tight_layout()
    png = args.out / "03_kl_tradeoff.png"
    fig.savefig(png, dpi=110)
    print(f"\nsaved {png} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
