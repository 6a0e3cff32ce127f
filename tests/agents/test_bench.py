"""``rlenv bench``: a 2 algos x 2 tasks x 3 seeds grid, killed midway and resumed, locally and on Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.benchmarking.bench import RESULTS_FILE, Cell, parse_args, read_results, run_cell, train_config
from agents.benchmarking.bench_report import PLOTS
from agents.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread

ROOT = Path(__file__).resolve().parents[2]


def grid_file(tmp_path: Path, model: str) -> Path:
    """The tiny grid as a TOML file, the way users write benchmarks/suite.toml."""
    path = tmp_path / "grid.toml"
    path.write_text(f"""
algos = ["reinforce", "grpo"]
envs = ["rlenv/Brief-v0", "rlenv/Keyword-v0"]
seeds = [0, 1, 2]
steps = 2
eval_points = 2
eval_episodes = 4
batch_size = 4
group_size = 2
lr = 0.001
model = "{model}"
env_args = ["max_new_tokens=4"]

[task_args]
"rlenv/Keyword-v0" = ["max_words=3"]
""")
    return path


def check_report(out: Path) -> dict:
    rows = read_results(out)
    assert sorted((r["algo"], r["env"], r["seed"]) for r in rows) == sorted(
        (a, e, s) for a in ("reinforce", "grpo") for e in ("rlenv/Brief-v0", "rlenv/Keyword-v0") for s in (0, 1, 2))
    assert all([e["step"] for e in r["evals"]] == [0, 1, 2] for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    for algo in ("reinforce", "grpo"):
        point, low, high = summary["aggregates"][algo]["iqm"]
        assert low <= point <= high
    assert set(summary["probability_of_improvement"]) == {"reinforce > grpo", "grpo > reinforce"}
    assert "| grpo |" in (out / "summary.md").read_text()
    assert all((out / name).stat().st_size > 1000 for name in PLOTS)
    return summary


def test_a_killed_grid_resumes_where_it_stopped(tiny_model, tmp_path) -> None:
    grid, out = grid_file(tmp_path, tiny_model), tmp_path / "bench"
    argv = ["bench", str(grid), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / RESULTS_FILE
    deadline = time.monotonic() + 120
    while (not results.exists() or len(results.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = results.read_text().splitlines()
    assert 3 <= len(before) < 12
    with open(results, "a") as f:
        f.write('{"algo": "grpo", "env": "rlenv/Brief')  # a line cut short by the kill: ignored, rerun

    assert main(argv) == 2  # an existing bench is not overwritten by accident
    assert main([*argv, "--resume"]) == 0
    after = [line for line in results.read_text().splitlines() if line.startswith('{"algo"') and line.endswith("}")]
    assert after[: len(before)] == before  # finished cells were not rerun
    summary = check_report(out)
    assert summary["cost"]["cells"] == 12

    # rerunning a cell with the same seed (and torch thread count: float sums follow it) gives the same numbers
    bench = parse_args([str(grid), "--out", str(tmp_path / "again")])
    row = next(r for r in read_results(out) if (r["algo"], r["env"], r["seed"]) == ("grpo", "rlenv/Keyword-v0", 1))
    assert run_cell(train_config(bench, Cell("grpo", "rlenv/Keyword-v0", 1)), threads=row["threads"])["evals"] == row["evals"]


def test_resume_refuses_changed_settings(tiny_model, tmp_path) -> None:
    out = tmp_path / "b"
    (out).mkdir()
    (out / "bench_config.json").write_text(json.dumps({"steps": 99}))
    assert main(["bench", str(grid_file(tmp_path, tiny_model)), "--out", str(out), "--resume"]) == 2


def test_ray_backend_runs_the_same_grid(tiny_model, tmp_path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'rlenv[ray]')")
    out = tmp_path / "ray"
    assert main(["bench", str(grid_file(tmp_path, tiny_model)), "--out", str(out), "--backend", "ray",
                 "--jobs", "2"]) == 0
    check_report(out)
