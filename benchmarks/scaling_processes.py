"""One process vs N data-parallel processes (``accelerate launch``) on the same global batch.

Both sides run ``rlenv train`` on the same model, env, algorithm, global batch, steps and seed, in
fresh subprocesses one after the other; each side gets the same total number of CPU threads (one
process with T threads vs N processes with T / N each). Reported from each run's metrics.jsonl,
skipping the first update (warm-up): updates per second (wall time of the updates) and env tokens per
second (generated tokens over rollout time, summed over ranks).

On a 2-core CPU little speed-up is to be expected — both sides already use both cores — so the figure
says what the machinery costs (the gradient all-reduce, the per-step metric reductions), not how far
it scales. On GPUs each rank gets its own device and the same command scales the batch out.

Measured (idle 2-core CPU, defaults): 1 process x 2 threads 2.69 updates/s and 3,903 env tokens/s;
2 processes x 1 thread 2.52 updates/s and 2,967 env tokens/s (x0.94 and x0.76).

    python benchmarks/scaling_processes.py                      # embedded model, GRPO, batch 32, 12 updates
    python benchmarks/scaling_processes.py --processes 2 --threads 2 --algo ppo --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: argparse.Namespace, processes: int, out: Path) -> dict[str, float]:
    train = ["-m", "agents.cli", "train", "--algo", args.algo, "--env", args.env, "--steps", str(args.steps),
             "--batch-size", str(args.batch_size), "--group-size", "4", "--max-new-tokens", str(args.max_new_tokens),
             "--seed", "0", "--out", str(out), "--device", "cpu", "--checkpoint-every", "0"]
    if args.model:
        train += ["--model", args.model]
    threads = max(1, args.threads // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": ""}
    if processes == 1:
        cmd = [sys.executable, *train]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), *train]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = records[1:]  # the first update pays for warm-up
    wall = records[-1]["elapsed_s"] - records[0]["elapsed_s"]
    tokens = sum(r["completion_length"] * args.batch_size for r in timed)
    rollout = sum(r["rollout_s"] for r in timed)
    return {"processes": processes, "threads_per_process": threads, "updates_per_s": len(timed) / wall,
            "env_tokens_per_s": tokens / rollout, "final_reward": records[-1]["reward_mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="total CPU threads for each side")
    parser.add_argument("--algo", default="grpo")
    parser.add_argument("--env", default="rlenv/PositiveReview-v0")
    parser.add_argument("--model", default=None, help="local model directory (default: rlenv.DEFAULT_MODEL)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args, 1, Path(tmp) / "one"), run(args, args.processes, Path(tmp) / "many")]
    for row in rows:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    one, many = rows
    print(f"{args.processes} processes / 1 process: updates/s x{many['updates_per_s'] / one['updates_per_s']:.2f}, "
          f"env tokens/s x{many['env_tokens_per_s'] / one['env_tokens_per_s']:.2f} "
          f"({args.algo}, {args.env}, global batch {args.batch_size}, {args.steps} updates, {args.threads} threads)")


if __name__ == "__main__":
    main()
