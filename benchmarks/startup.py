"""Start-up time of the ``rlenv`` command line: ``--help``, ``envs`` and one-line input errors.

Each command runs as a fresh ``python -m agents.cli`` subprocess (the console script's entry point)
with this checkout first on ``PYTHONPATH``; the figure is the best of ``--repeats`` wall times, the
usual way to see through other load on the machine. The 1-minute load average before and after the
runs is printed beside the figures, since a loaded machine inflates every one of them. Target
(DESIGN.md, issue 23): <= 1.5 s each on an idle machine.

    python benchmarks/startup.py [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMANDS: dict[str, list[str]] = {
    "rlenv --help": ["--help"],
    "rlenv train --help": ["train", "--help"],
    "rlenv envs": ["envs"],
    "error: unknown command": ["frobnicate"],
    "error: unknown env id": ["train", "--env", "rlenv/NoSuchTask-v0", "--steps", "1"],
    "error: bad flag value": [
        "train",
        "--batch-size",
        "6",
        "--group-size",
        "4",
        "--algo",
        "grpo",
        "--steps",
        "1",
    ],
    "error: unknown flag": ["train", "--no-such-flag", "1"],
    "rlenv bench --help": ["bench", "--help"],
    "error: bench unknown flag": ["bench", "--no-such-flag", "1"],
    "error: bench bad value": ["bench", "benchmarks/suite.toml", "--algos", "a2c"],
    "error: bench missing grid": ["bench", "no-such-grid.toml"],
}


def time_command(args: list[str], repeats: int) -> tuple[float, int]:
    """Best wall time in seconds of ``python -m agents.cli *args`` over ``repeats`` runs, and its exit code."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    best, code = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "agents.cli", *args], env=env, cwd=REPO, capture_output=True, text=True
        )
        best = min(best, time.perf_counter() - start)
        code = done.returncode
    return best, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = {name: time_command(argv, args.repeats) for name, argv in COMMANDS.items()}
    load_after = os.getloadavg()[0]
    if args.json:
        print(
            json.dumps(
                {
                    "repeats": args.repeats,
                    "load_1min": [load_before, load_after],
                    "best_s": {name: round(s, 3) for name, (s, _) in results.items()},
                }
            )
        )
        return
    print(
        f"best of {args.repeats}; 1-min load average {load_before:.2f} before, {load_after:.2f} after "
        f"({os.cpu_count()} CPUs)"
    )
    for name, (seconds, code) in results.items():
        print(f"  {name:<28} {seconds:6.2f} s   (exit {code})")


if __name__ == "__main__":
    main()
