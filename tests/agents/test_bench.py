"""``rlenv bench``: a 2 algos x 2 tasks x 3 seeds grid, killed midway and resumed, locally and on Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.benchmarking.bench import RESULTS_FILE, cell_dir, grid_relative, read_results, run_cell
from agents.benchmarking.bench_config import Cell, parse_args, train_config
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
        (a, e, s)
        for a in ("reinforce", "grpo")
        for e in ("rlenv/Brief-v0", "rlenv/Keyword-v0")
        for s in (0, 1, 2)
    )
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
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
    after = [
        line for line in results.read_text().splitlines() if line.startswith('{"algo"') and line.endswith("}")
    ]
    assert after[: len(before)] == before  # finished cells were not rerun
    summary = check_report(out)
    assert summary["cost"]["cells"] == 12

    # rerunning a cell with the same seed (and torch thread count: float sums follow it) gives the same numbers
    bench = parse_args([str(grid), "--out", str(tmp_path / "again")])
    row = next(
        r for r in read_results(out) if (r["algo"], r["env"], r["seed"]) == ("grpo", "rlenv/Keyword-v0", 1)
    )
    assert (
        run_cell(train_config(bench, Cell("grpo", "rlenv/Keyword-v0", 1)), threads=row["threads"])["evals"]
        == row["evals"]
    )


def test_a_moved_grid_with_old_absolute_rows_resumes_and_reports(tiny_model, tmp_path, monkeypatch) -> None:
    """Rows name their cells relative to the grid, so a grid moved elsewhere resumes and reports; rows
    written before that (absolute paths of where the grid was) read the same, and nothing the grid
    writes holds a path of the machine."""
    monkeypatch.chdir(tmp_path)
    grid = grid_file(tmp_path, tiny_model)
    one_task = ["--algos", "grpo", "--envs", "rlenv/Keyword-v0"]
    # a relative --out, as users type it
    assert main(["bench", str(grid), *one_task, "--seeds", "0", "--out", "first/bench"]) == 0
    first = tmp_path / "first" / "bench"
    assert [r["out"] for r in read_results(first)] == ["cells/grpo-Keyword-v0-seed0"]

    (tmp_path / "moved").mkdir()
    moved = Path(shutil.move(first, tmp_path / "moved" / "bench"))
    # the row as grids wrote it before: the absolute path of a directory that is gone now
    results = moved / RESULTS_FILE
    old_row = {**json.loads(results.read_text()), "out": str(first / "cells" / "grpo-Keyword-v0-seed0")}
    results.write_text(json.dumps(old_row) + "\n")

    assert main(["bench", str(grid), *one_task, "--seeds", "0", "1", "--out", str(moved), "--resume"]) == 0
    lines = results.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == old_row  # seed 0 was not rerun
    rows = read_results(moved)
    assert [r["out"] for r in rows] == ["cells/grpo-Keyword-v0-seed0", "cells/grpo-Keyword-v0-seed1"]
    assert all((cell_dir(moved, r) / "metrics.jsonl").exists() for r in rows)
    summary = json.loads((moved / "summary.json").read_text())
    assert summary["cost"]["cells"] == 2 and summary["bench"]["out"] == "."
    assert [r["out"] for r in summary["runs"]] == [r["out"] for r in rows]
    # the model's path is the user's own input, kept as given
    given = {k: v for k, v in summary["bench"].items() if k != "model"}
    assert str(tmp_path) not in lines[1] and str(tmp_path) not in json.dumps({**summary, "bench": given})


@pytest.mark.parametrize(
    "stored",
    [
        "/work/grid5/bench-suite/cells/ppo-Brief-v0-seed3",  # an old row: absolute
        "runs/bench/cells/ppo-Brief-v0-seed3",  # an old row: relative to the old working directory
        "cells/ppo-Brief-v0-seed3",  # as rows are written now
    ],
)
def test_a_row_names_its_cell_relative_to_the_grid(stored, tmp_path) -> None:
    row = {"algo": "ppo", "env": "rlenv/Brief-v0", "seed": 3, "out": stored}
    assert grid_relative(row) == {**row, "out": "cells/ppo-Brief-v0-seed3"}
    assert cell_dir(tmp_path / "grid", row) == tmp_path / "grid" / "cells" / "ppo-Brief-v0-seed3"
    assert grid_relative({"algo": "ppo"}) == {"algo": "ppo"}  # a row without a directory is left alone


def test_resume_refuses_changed_settings(tiny_model, tmp_path) -> None:
    out = tmp_path / "b"
    (out).mkdir()
    (out / "bench_config.json").write_text(json.dumps({"steps": 99}))
    assert main(["bench", str(grid_file(tmp_path, tiny_model)), "--out", str(out), "--resume"]) == 2


def test_ray_backend_runs_the_same_grid(tiny_model, tmp_path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'rlenv[ray]')")
    out = tmp_path / "ray"
    assert (
        main(
            [
                "bench",
                str(grid_file(tmp_path, tiny_model)),
                "--out",
                str(out),
                "--backend",
                "ray",
                "--jobs",
                "2",
            ]
        )
        == 0
    )
    check_report(out)
