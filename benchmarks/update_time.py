"""One update's wall time on a fixed rollout batch: this checkout against another commit, interleaved.

A change that claims to make the update cheaper "exactly" (same maths, less work) is measured here:
both sides run ``Algorithm.update`` on the *same* saved batch, from the same starting weights, on one
torch thread, in fresh subprocesses that alternate (base, this, base, this, ...), so a change in
the machine's load hits both alike. The batch comes from a short ``rlenv train`` run of this checkout
(the policy after ``--warmup`` updates, so its completions have the lengths a real run sees) and is
saved with ``torch.save``; each subprocess loads its side's code and the embedded model, restores the
weights before every timed update, and reports the median of ``--updates`` updates after two
untimed ones.

    python benchmarks/update_time.py --base HEAD~2                       # PPO, the main command's shape
    python benchmarks/update_time.py --base HEAD~2 --algo grpo --rounds 3

The base commit is checked out with ``git worktree`` into a temporary folder (removed afterwards).
Prints each round's medians, the median over rounds, the ratio this / base, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE)]
from machine_load import load_note  # noqa: E402

# runs in a subprocess whose sys.path starts with the side's checkout: its agents/, the shared batch
WORKER = """
import statistics, sys, time, torch
torch.set_num_threads(1)
from agents.training.config import TrainConfig
from agents.training.trainer import Trainer
algo, env, batch_path, out, updates = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
trainer = Trainer(TrainConfig(algo=algo, env=env, steps=1, out=out, threads=1, checkpoint_every=0))
algorithm, policy = trainer.algorithm, trainer.policy
batch = torch.load(batch_path, weights_only=False)
weights = {k: v.clone() for k, v in policy.state_dict().items()}
times = []
for i in range(updates + 2):
    policy.load_state_dict(weights)
    start = time.perf_counter()
    algorithm.update(batch, algorithm.episode_rewards(batch))
    if i >= 2:
        times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def save_batch(algo: str, env: str, warmup: int, path: Path, scratch: Path) -> None:
    """The last rollout batch of a ``warmup``-update run of this checkout, saved with torch.save."""
    sys.path[:0] = [str(ROOT)]
    import torch

    from agents.training.config import TrainConfig
    from agents.training.trainer import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(
        TrainConfig(
            algo=algo, env=env, steps=warmup, out=str(scratch / "warmup"), threads=1, checkpoint_every=0
        )
    )
    trainer.run()
    torch.save(trainer._last_batch, path)


def time_side(checkout: Path, args: argparse.Namespace, batch: Path, scratch: Path, tag: str) -> float:
    out = scratch / f"{tag}-{time.time_ns()}"
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, args.algo, args.env, str(batch), str(out), str(args.updates)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare against (e.g. HEAD~2, a tag)")
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="rlenv/PositiveReview-v0")
    parser.add_argument("--warmup", type=int, default=30, help="updates before the batch is taken")
    parser.add_argument("--updates", type=int, default=10, help="timed updates per side per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        base = scratch / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            batch = scratch / "batch.pt"
            save_batch(args.algo, args.env, args.warmup, batch, scratch)
            print(f"{args.algo} on {args.env}, batch after {args.warmup} updates; {load_note()}")
            rows: dict[str, list[float]] = {"base": [], "this": []}
            for r in range(args.rounds):
                order = [("base", base), ("this", ROOT)] if r % 2 == 0 else [("this", ROOT), ("base", base)]
                for tag, checkout in order:
                    rows[tag].append(time_side(checkout, args, batch, scratch, tag))
                print(
                    f"round {r}: base {rows['base'][-1] * 1e3:.1f} ms, this {rows['this'][-1] * 1e3:.1f} ms; "
                    f"{load_note()}"
                )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
    base_ms, this_ms = (statistics.median(rows[k]) * 1e3 for k in ("base", "this"))
    print(
        json.dumps(
            {
                "algo": args.algo,
                "base": args.base,
                "base_ms": round(base_ms, 1),
                "this_ms": round(this_ms, 1),
                "ratio": round(this_ms / base_ms, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
