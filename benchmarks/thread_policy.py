"""Which thread policy survives a busy machine: torch threads x OpenMP wait policy x busy neighbours.

A CPU-first tool usually shares its cores (a laptop with a browser, a CI runner, colleagues' jobs).
With as many torch threads as cores, every parallel region waits for its slowest thread, and a
thread that lost its core to another process holds all the others; OpenMP's default wait policy
then spins those others on their cores, taking CPU from the very process that holds the straggler.
This benchmark measures that directly, on the README's main command (PPO on PositiveReview with the
embedded model) or on the GRPO benchmark's shape:

- torch threads: 1 and 2 (``--threads``, set via ``rlenv train --threads``);
- ``OMP_WAIT_POLICY``: unset (the runtime's default: spin a while, then sleep) and ``PASSIVE``
  (sleep at once), given to the training subprocess's environment;
- load: idle, and with 1 and 2 busy sibling processes that this script starts itself (each a
  single-threaded matrix-multiply loop, a stand-in for another CPU-heavy job) and stops by pid.

Each cell is a fresh ``rlenv train`` subprocess of ``--steps`` updates; its rate is updates per
second over the updates after the first (the first warms up), read from the run's own
``metrics.jsonl`` (``elapsed_s``). Cells run in interleaved rounds (every cell once per round, the
order rotating), so a change in the machine's own load hits all cells alike; the median over
``--rounds`` counts. The load average is printed beside every cell: on a machine that is not idle
at the start, "idle" means "no sibling of ours", and the figures say so.

    python benchmarks/thread_policy.py                          # PPO main command, full grid, 3 rounds
    python benchmarks/thread_policy.py --workload grpo --rounds 2
    python benchmarks/thread_policy.py --quick                   # 1 round, 6 updates per cell

The table gives updates/s per cell and, per policy, the rate under load as a share of its own
idle rate next to the CPU share a fair scheduler would give it: with k single-threaded busy
siblings on C cores, a process gets about C / (C + k) of the machine when it runs C threads, and
at least half a core when it runs one (``fair_share``). A policy that "degrades gracefully" keeps
close to that share; one that collapses to a small fraction of it is the failure issue 24 reports.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from machine_load import load_note  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    # the README's first command, as a fixed number of updates
    "ppo": ["--algo", "ppo", "--env", "rlenv/PositiveReview-v0"],
    # the GRPO benchmark's shape on the embedded model (4 prompts x 8 completions, 32 tokens)
    "grpo": [
        "--algo",
        "grpo",
        "--env",
        "rlenv/PositiveReview-v0",
        "--batch-size",
        "32",
        "--group-size",
        "8",
        "--max-new-tokens",
        "32",
        "--kl-coef",
        "0.04",
    ],
}
BUSY_LOOP = (
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "a = torch.randn(384, 384)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


@dataclass(frozen=True)
class Cell:
    threads: int
    wait_policy: str  # "default" or "passive"
    busy: int  # sibling processes kept busy during the run

    @property
    def name(self) -> str:
        return f"{self.threads}t {self.wait_policy:7s} busy={self.busy}"


def fair_share(threads: int, busy: int, cores: int) -> float:
    """The share of its idle speed a process of ``threads`` threads should keep beside ``busy``
    single-threaded CPU hogs under a fair scheduler on ``cores`` cores (1.0 when idle)."""
    if busy == 0:
        return 1.0
    runnable = threads + busy
    if runnable <= cores:
        return 1.0
    per_thread = cores / runnable  # every runnable thread gets the same slice
    return min(1.0, per_thread * threads / min(threads, cores))


def run_cell(cell: Cell, args: argparse.Namespace, scratch: Path, tag: str) -> dict[str, float | str]:
    """One ``rlenv train`` subprocess beside ``cell.busy`` busy siblings; updates/s after the first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("OMP_NUM_THREADS", None)  # --threads sets torch's count; OpenMP's default must not cap it
    if cell.wait_policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = scratch / f"{tag}-{cell.threads}-{cell.wait_policy}-{cell.busy}"
    command = [
        sys.executable,
        "-m",
        "agents.cli",
        "train",
        *WORKLOADS[args.workload],
        "--steps",
        str(args.steps),
        "--threads",
        str(cell.threads),
        "--seed",
        "0",
        "--checkpoint-every",
        "0",
        "--out",
        str(out),
    ]
    siblings = [
        subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env={**env, "OMP_NUM_THREADS": "1"})
        for _ in range(cell.busy)
    ]
    try:
        time.sleep(0.5 if siblings else 0.0)  # let them start computing
        load = load_note()
        subprocess.run(
            command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    finally:
        for sibling in siblings:
            sibling.kill()
            sibling.wait()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    elapsed = records[-1]["elapsed_s"] - records[0]["elapsed_s"]
    return {"updates_per_s": (len(records) - 1) / elapsed, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=list(WORKLOADS), default="ppo")
    parser.add_argument("--steps", type=int, default=20, help="updates per cell (the first is a warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median counts")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to try")
    parser.add_argument("--wait-policies", default="default,passive")
    parser.add_argument("--busy", default="0,1,2", help="busy sibling counts")
    parser.add_argument("--quick", action="store_true", help="one round of 6 updates per cell")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps = 1, 6
    if args.steps < 3:
        parser.error("--steps must be >= 3 (the first update is a warm-up)")
    cores = os.cpu_count() or 1
    cells = [
        Cell(int(t), w, int(b))
        for t, w, b in itertools.product(
            args.threads.split(","), args.wait_policies.split(","), args.busy.split(",")
        )
    ]
    print(
        f"thread policy, workload {args.workload} ({' '.join(WORKLOADS[args.workload])}), {args.steps} updates "
        f"per cell, {args.rounds} round(s), {cores} cores; start: {load_note()}",
        flush=True,
    )
    rates: dict[Cell, list[float]] = {cell: [] for cell in cells}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            shift = round_ % len(cells)
            for cell in cells[shift:] + cells[:shift]:
                result = run_cell(cell, args, Path(tmp), f"r{round_}")
                rates[cell].append(float(result["updates_per_s"]))
                print(
                    f"  round {round_}  {cell.name}  {result['updates_per_s']:6.2f} updates/s  [{result['load']}]",
                    flush=True,
                )
    print(f"\nmedian updates/s (end: {load_note()})")
    print(f"  {'policy':20s} " + "  ".join(f"busy={b:<13s}" for b in args.busy.split(",")))
    for threads, wait in itertools.product(args.threads.split(","), args.wait_policies.split(",")):
        row = [cell for cell in cells if cell.threads == int(threads) and cell.wait_policy == wait]
        idle = next((statistics.median(rates[c]) for c in row if c.busy == 0), None)
        parts = []
        for cell in row:
            rate = statistics.median(rates[cell])
            kept = (
                f" {rate / idle:4.0%}/{fair_share(cell.threads, cell.busy, cores):4.0%}"
                if idle and cell.busy
                else ""
            )
            parts.append(f"{rate:6.2f}{kept:12s}")
        print(f"  {threads}t {wait:17s} " + "  ".join(parts))
    print("  (under load: updates/s, then kept share of its own idle rate / the fair share)")


if __name__ == "__main__":
    main()
