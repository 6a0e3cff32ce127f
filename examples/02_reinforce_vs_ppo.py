"""REINFORCE vs PPO on the same task, the same model and the same rollout budget.

What it teaches
---------------
Both algorithms sample a batch of completions, score each with the env's reward and push up the
log-probability of the better ones. They differ in how much they squeeze out of one batch:

* **REINFORCE with a baseline** (the seeds' algorithm): ``loss = -(R - mean R) · log π(completion)``,
  one gradient step per batch, then the batch is thrown away;
* **PPO**: a value head estimates the return token by token (GAE advantages), and several epochs of
  clipped updates reuse each batch without stepping too far from the policy that sampled it.

The task continues the review openings of ``rlenv/PositiveReview-v0`` with the seeds' indicator
reward: 1 if the completion is clearly positive (VADER compound > 0.5, standing in for the seeds'
"classifier says the target label"), else 0, on the embedded model ``rlenv.DEFAULT_MODEL``. About
one untrained completion in six earns it. A 0/1 reward makes the variance of REINFORCE's gradient
easy to see. The script prints the mean reward at the start and the end of each run, and the time
each took; the PNG shows the two reward curves against updates and against wall-clock time (PPO
does more work per batch). Measured (``--steps 150 --threads 1``, seed 0, on the embedded model
rebuilt this session; run beside other jobs on a 2-core machine, so the seconds are about twice an
idle run's — the ratio is the point): REINFORCE 0.25 -> 1.00 in 189 s (1.3 s/update); PPO 0.40 ->
0.99 in 537 s (3.6 s/update) — first and last 18 updates' means. Per update PPO climbs faster at
first (updates 16-25: 0.73 vs REINFORCE's 0.53), since it takes eight minibatch steps per batch to
REINFORCE's one; both pass 0.8 (12-update mean) around update 37-40, and both hold 0.99-1.00 to the
end. Per second REINFORCE wins by 2.8x. Neither run has a KL penalty, so both end up writing
whatever VADER likes (REINFORCE: "... we were extremely happy with it was truly happy with it ...";
PPO: "... pretty happy bist and happy were were pretty happy ...", its text decaying into
fragments) — the reward hacking that examples 03 and 04 take apart.

Run
---
    python examples/02_reinforce_vs_ppo.py                 # about 4 minutes on 1 idle CPU thread
    python examples/02_reinforce_vs_ppo.py --steps 200     # longer runs
    RLENV_EXAMPLES_QUICK=1 python examples/02_reinforce_vs_ppo.py   # smoke test: 2 tiny updates each

Writes ``<out>/02_reinforce_vs_ppo.png`` and each run's metrics.jsonl under ``<out>/02_runs/``.
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

import reward_models  # noqa: E402
from agents.training.config import TrainConfig  # noqa: E402
from agents.training.trainer import train  # noqa: E402
from rlenv.assets import DATA_DIR  # noqa: E402

QUICK = os.environ.get("RLENV_EXAMPLES_QUICK") == "1"
ENV = "rlenv/TextGen-v0"
REWARD = "positive_indicator"


def positive_indicator(threshold: float = 0.5):
    """The seeds' indicator reward: 1 if VADER calls the completion clearly positive, else 0."""
    vader = reward_models.make("vader")

    def reward(prompts, completions, **kwargs):
        return [float(s > threshold) for s in vader(prompts, completions)]

    reward.__name__ = REWARD
    return reward


# the training env is built from a registry name (TrainConfig's env_args are strings)
reward_models.register(REWARD, positive_indicator, overwrite=True)
ENV_ARGS = (f"prompts={DATA_DIR / 'review_prompts.txt'}", f"reward_model={REWARD}", "max_prompt_tokens=16")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/out"), help="output directory")
    parser.add_argument("--steps", type=int, default=2 if QUICK else 100, help="updates per algorithm")
    parser.add_argument("--batch-size", type=int, default=4 if QUICK else 32, help="episodes per update")
    parser.add_argument("--model", default=None, help="local causal LM directory (default: rlenv.DEFAULT_MODEL)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1 if QUICK else 2, help="torch CPU threads")
    return parser.parse_args()


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), same length as ``x``."""
    return np.array([x[max(0, i + 1 - window): i + 1].mean() for i in range(len(x))])


def run(algo: str, args: argparse.Namespace, **hyper: float) -> list[dict]:
    """Train ``algo`` from scratch into <out>/02_runs/<algo>; return its metrics records."""
    out = args.out / "02_runs" / algo
    shutil.rmtree(out, ignore_errors=True)  # the trainer refuses to overwrite a finished run
    config = TrainConfig(algo=algo, env=ENV, env_args=ENV_ARGS, model=args.model, steps=args.steps,
                         batch_size=args.batch_size,
                         seed=args.seed, out=str(out), device="cpu", checkpoint_every=0,
                         **({"max_new_tokens": 4} if QUICK else {"max_new_tokens": 24}), **hyper)

    def progress(record: dict) -> None:
        if record["step"] == 1 or record["step"] % 10 == 0 or record["step"] == args.steps:
            print(f"  {algo:>9} update {record['step']:>3}: reward {record['reward_mean']:.3f}, "
                  f"{record['elapsed_s']:.0f} s   e.g. {record['sample']!r}")

    return train(config, callback=progress).metrics


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    # Each algorithm gets settings that suit it: REINFORCE takes one (larger) step per batch; PPO
    # takes four epochs of smaller ones. No KL penalty for either, to compare the bare estimators.
    runs = {
        "reinforce": run("reinforce", args, lr=1e-4, kl_coef=0.0, loss_aggregation="sequence-sum"),
        "ppo": run("ppo", args, lr=1e-4, kl_coef=0.0, ppo_epochs=4, minibatch_size=args.batch_size // 2),
    }

    window = max(1, args.steps // 8)
    print(f"\nreview openings, indicator reward, batch {args.batch_size}, {args.steps} updates each "
          f"(reward = 1 if VADER > 0.5; averaged over {window} updates)")
    print("  algorithm   first updates   last updates   wall-clock   s/update")
    for algo, records in runs.items():
        reward = np.array([r["reward_mean"] for r in records])
        elapsed = records[-1]["elapsed_s"]
        print(f"  {algo:<10}  {reward[:window].mean():>13.3f}  {reward[-window:].mean():>13.3f}  "
              f"{elapsed:>9.0f} s  {elapsed / len(records):>8.2f}")

    fig, (ax_step, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (algo, records) in enumerate(runs.items()):
        steps = np.array([r["step"] for r in records])
        seconds = np.array([r["elapsed_s"] for r in records])
        reward = np.array([r["reward_mean"] for r in records])
        label = "REINFORCE (baseline = batch mean)" if algo == "reinforce" else "PPO (value head, GAE, clip)"
        for ax, x in ((ax_step, steps), (ax_time, seconds)):
            ax.plot(x, reward, color=f"C{i}", alpha=0.25, lw=1)
            ax.plot(x, smooth(reward, window), color=f"C{i}", lw=2, label=label)
    ax_step.set(title="Reward per update", xlabel="update (batch of completions)", ylabel="share of clearly positive completions")
    ax_time.set(title="Reward against wall-clock time", xlabel="seconds (CPU)")
    ax_step.legend(fontsize=8)
    fig.suptitle(f"REINFORCE vs PPO, indicator reward on review openings (batch {args.batch_size}, seed {args.seed})")
    fig.tight_layout()
    png = args.out / "02_reinforce_vs_ppo.png"
    fig.savefig(png, dpi=110)
    print(f"\nsaved {png} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
