"""``rlenv bench`` for a user: Ctrl-C says how to resume (and no worker prints a traceback), --help shows
the grid file, too few seeds are warned about, and the user's own reward function runs in a grid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.benchmarking.bench import RESULTS_FILE, interrupted_message
from agents.benchmarking.bench_config import Cell, parse_args, train_config
from agents.benchmarking.bench_report import MIN_RUNS_FOR_INTERVALS, too_few_runs
from agents.cli import main
from agents.errors import ConfigError
from tests.agents.test_bench import grid_file

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ctrl_c_with_workers_running_prints_the_resume_command_and_no_traceback(tiny_model, tmp_path) -> None:
    grid, out = grid_file(tmp_path, tiny_model), tmp_path / "bench"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # its own session, so that the signal goes to the whole process group, as a terminal's Ctrl-C does
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "bench", str(grid), "--out", str(out), "--jobs", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C's default action, as a terminal's child has it. A child inherits an ignored SIGINT (from
        # a shell that ran the suite in the background, or from something earlier in this process) and
        # Python then keeps ignoring it: two full-suite CI runs saw the grid run to the end and exit 0
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (out / RESULTS_FILE).exists() and time.monotonic() < deadline:  # workers up, cells under way
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "of 12 cells are finished and kept in" in err
    assert err.strip().endswith(f"rlenv bench {grid} --out {out} --jobs 2 --resume")


def test_interrupted_message_counts_the_kept_cells(tiny_model, tmp_path) -> None:
    grid = grid_file(tmp_path, tiny_model)
    bench = parse_args([str(grid), "--out", str(tmp_path / "b")])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / RESULTS_FILE).write_text('{"algo": "grpo", "env": "rlenv/Brief-v0", "seed": 0}\n')
    message = interrupted_message(bench, [str(grid), "--out", str(tmp_path / "b"), "--resume"])
    assert "1 of 12 cells" in message
    assert message.endswith(f"rlenv bench {grid} --out {tmp_path / 'b'} --resume")  # --resume once


def test_bench_help_shows_the_grid_file(capsys) -> None:
    assert main(["bench", "--help"]) == 0
    text = capsys.readouterr().out
    assert "rlenv bench [GRID.toml|.yaml|.json] [flags]" in text and "benchmarks/suite.toml" in text


def test_too_few_runs_per_task_are_warned_about() -> None:
    assert too_few_runs({"ppo": MIN_RUNS_FOR_INTERVALS, "grpo": 2}) == [
        f"grpo: only 2 run(s) per task; its 95% intervals are unreliable with fewer than {MIN_RUNS_FOR_INTERVALS} "
        "(an interval's edge can sit on the point estimate); add seeds (--seeds) and rerun with --resume"
    ]


def test_the_warning_threshold_is_where_the_bootstrap_tails_get_room() -> None:
    from math import comb

    distinct = {n: comb(2 * n - 1, n) for n in range(2, 7)}  # multisets of n draws from n runs
    assert all(distinct[n] <= 40 for n in range(2, MIN_RUNS_FOR_INTERVALS))
    assert distinct[MIN_RUNS_FOR_INTERVALS] > 40  # 2.5% tails fall between distinct resamples


def test_a_grid_runs_the_users_reward_function(tiny_model, tmp_path) -> None:
    (tmp_path / "mine.py").write_text(
        "def half(completions, **kwargs):\n    return [0.5] * len(completions)\n"
    )
    grid = grid_file(tmp_path, tiny_model)
    grid.write_text(
        grid.read_text().replace(
            "[task_args]", f'reward_funcs = ["{tmp_path}/mine.py:half"]\nreward_ceiling = 1.0\n[task_args]'
        )
    )
    bench = parse_args([str(grid), "--out", str(tmp_path / "b")])
    config = train_config(bench, Cell("grpo", "rlenv/Brief-v0", 0))
    assert config.reward_funcs == (f"{tmp_path}/mine.py:half",)
    assert config.env_kwargs()["reward_model"] == f"{tmp_path}/mine.py:half"
    with pytest.raises(ConfigError, match="reward_funcs need reward_ceiling"):
        parse_args([str(grid), "--reward-ceiling", "None"]).validate()
