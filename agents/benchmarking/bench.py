"""``rlenv bench``: a grid of algorithms x tasks x seeds, each cell an ordinary training run.

    rlenv bench benchmarks/suite.toml [--jobs 2] [--backend local|ray] [--resume] [flags override the file]

The grid's settings, its cells and their parsing are :mod:`agents.benchmarking.bench_config` (no torch,
so the command's help and input errors answer quickly); this module runs the cells.

Each cell is ``train(TrainConfig(...))`` — the code path of ``rlenv train`` — with the trainer's
held-out evaluation (:mod:`agents.training.evaluation`) every ``steps // eval_points`` updates, plus one
evaluation of the untrained model before the first update. A cell's result is appended to
``<out>/results.jsonl`` as soon as it finishes, so a killed grid loses at most the cells in flight;
``--resume`` skips the cells already there. A row names its cell's directory relative to the grid
(``cells/<name>``; :func:`cell_dir` resolves it), so a grid moved or copied elsewhere still resumes and reports. Cells run in this process (``--jobs 1``), in
``--jobs N`` worker processes with ``cores // N`` torch threads each (capped by the trainer's
thread policy, :func:`agents.training.trainer.default_threads`: never every core), or as Ray tasks
(``--backend ray``; a local cluster, or ``--ray-address`` for a running one).
When the grid is complete, :mod:`agents.benchmarking.bench_report` writes summary.md, summary.json and plots.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import Any

import torch

from agents.benchmarking.bench_config import CELLS_DIR, BenchConfig, cells, train_config
from agents.benchmarking.bench_config import SUITE as SUITE  # re-exported: these lived here until 0.2.0
from agents.benchmarking.bench_config import Cell as Cell
from agents.benchmarking.bench_config import load_grid_file as load_grid_file
from agents.benchmarking.bench_config import parse_args as parse_args
from agents.benchmarking.bench_report import write_report
from agents.errors import ConfigError
from agents.training.config import TrainConfig
from agents.training.trainer import Trainer

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "bench_config.json"


def run_cell(config: TrainConfig, threads: int | None = None) -> dict[str, Any]:
    """Train one cell and return its result row: the held-out evaluations at step 0 and every
    ``eval_every`` updates, and the cost. A leftover directory of a killed attempt is replaced."""
    caller_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    assert config.out is not None and config.eval_every > 0, (
        "a cell comes from train_config(), which sets both"
    )
    shutil.rmtree(config.out, ignore_errors=True)  # no result line means the attempt did not finish
    start = time.perf_counter()
    try:
        trainer = Trainer(config)
        assert trainer.evaluator is not None  # eval_every > 0
        evals = [{"step": 0, **_strip(trainer.evaluator())}]  # the untrained model, same protocol
        result = trainer.run()
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(caller_threads)
    evals += [{"step": r["step"], **_strip(r)} for r in result.metrics if "eval/reward_mean" in r]
    return {
        "algo": config.algo,
        "env": config.env,
        "seed": config.seed,
        "steps": result.step,
        "episodes": result.episodes,
        "train_s": round(result.elapsed_s, 2),
        "wall_s": round(time.perf_counter() - start, 2),
        "threads": threads,
        "evals": evals,
        "train_reward_last": result.final.get("reward_mean"),
        "out": str(result.out),
    }


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("eval/"): v for k, v in record.items() if k.startswith("eval/")}


# ---- results file -----------------------------------------------------------------------------------
def read_results(out: str | Path) -> list[dict[str, Any]]:
    """The finished cells, each row's ``out`` relative to the grid (:func:`grid_relative`); a last line
    cut short by a kill is ignored (it will be rerun)."""
    path = Path(out) / RESULTS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(grid_relative(json.loads(line)))
        except json.JSONDecodeError:
            logger.warning("ignoring a partial line in %s (a killed write); that cell will run again", path)
    return rows


def grid_relative(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its cell directory as stored: ``cells/<name>``, relative to the grid directory.

    A cell always trains into ``<grid>/cells/<name>``, so the last two parts of whatever path a row
    holds name it wherever the grid has gone since. Rows written before paths were stored this way
    hold the path as given then (absolute, or relative to the old working directory); they read the
    same as new ones, and a grid moved or copied elsewhere publishes no machine's paths.
    """
    path = PurePath(row.get("out") or "")
    if path.parent.name != CELLS_DIR:
        return row  # no cell directory to rewrite (a row cut down by hand, say)
    return {**row, "out": (PurePath(CELLS_DIR) / path.name).as_posix()}


def cell_dir(grid: str | Path, row: dict[str, Any]) -> Path:
    """The directory a result row's cell trained into (its metrics.jsonl and checkpoints), wherever
    the grid directory ``grid`` is now."""
    return Path(grid) / grid_relative(row)["out"]


def _append(out: Path, row: dict[str, Any]) -> None:
    path = out / RESULTS_FILE
    # a kill mid-write leaves a line without its newline: end it, so this row starts a line of its own
    cut_short = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as f:
        f.write(("\n" if cut_short else "") + json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _prepare_out(bench: BenchConfig) -> list[dict[str, Any]]:
    """Check ``--resume`` against the saved grid; return the rows already done."""
    out = Path(bench.out)
    saved_path = out / CONFIG_FILE
    done = read_results(out)
    if saved_path.exists() or done:
        if not bench.resume:
            raise ConfigError(f"{out} already holds a bench; continue it with --resume, or pass a new --out")
        saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
        diffs = [
            f"{k}: {saved.get(k)!r} (saved) != {v!r} (now)"
            for k, v in bench.shaping().items()
            if k not in ("algos", "envs", "seeds") and saved.get(k) != v
        ]
        if diffs:
            raise ConfigError(
                f"cannot resume {out} with different settings: {'; '.join(diffs)}; "
                "pass the original settings or a new --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    saved_path.write_text(json.dumps(bench.shaping(), indent=2) + "\n")
    return done


# ---- executors ------------------------------------------------------------------------------------
def _threads_per_cell(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_local(configs: list[TrainConfig], jobs: int) -> Iterable[dict[str, Any]]:
    threads = _threads_per_cell(jobs)
    if jobs == 1:
        for config in configs:
            yield run_cell(config, threads)
        return
    import multiprocessing
    import signal

    # Ctrl-C is the parent's to handle (it prints how to resume): workers start with SIGINT ignored —
    # a disposition spawned interpreters inherit and keep — so none prints a KeyboardInterrupt
    # traceback, and leaving the with-block terminates them
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = multiprocessing.get_context("spawn").Pool(processes=jobs)
    finally:
        signal.signal(signal.SIGINT, previous)
    with pool:
        yield from pool.imap_unordered(_run_cell_job, [(config, threads) for config in configs])


def _run_cell_job(job: tuple[TrainConfig, int]) -> dict[str, Any]:
    return run_cell(*job)


def _run_ray(configs: list[TrainConfig], jobs: int, address: str | None) -> Iterable[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'rlenv[ray]'") from None
    threads = _threads_per_cell(jobs)
    root = str(Path(__file__).resolve().parent.parent)  # workers import this checkout's packages
    path = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    started = not ray.is_initialized()
    if started:
        init: dict[str, Any] = dict(
            address=address,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            include_dashboard=False,
            log_to_driver=False,
        )
        if address is None:
            init["num_cpus"] = jobs * threads
        ray.init(**init)
    try:
        remote = ray.remote(num_cpus=threads)(run_cell)
        pending = [remote.remote(config, threads) for config in configs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started:
            ray.shutdown()


def run_bench(
    bench: BenchConfig, on_cell: Callable[[dict[str, Any], int, int], None] | None = None
) -> dict[str, Any]:
    """Run the grid's missing cells, append each result as it finishes, then write the report."""
    bench.validate()
    done = _prepare_out(bench)
    finished = {(r["algo"], r["env"], r["seed"]) for r in done}
    todo = [c for c in cells(bench) if (c.algo, c.env, c.seed) not in finished]
    configs = [train_config(bench, c) for c in todo]  # every config is validated before the first run
    out = Path(bench.out)
    runner = (
        _run_ray(configs, bench.jobs, bench.ray_address)
        if bench.backend == "ray"
        else _run_local(configs, bench.jobs)
    )
    total = len(cells(bench))
    for row in runner:
        row = grid_relative(row)
        _append(out, row)
        done.append(row)
        if on_cell is not None:
            on_cell(row, len(done), total)
    wanted = {(c.algo, c.env, c.seed) for c in cells(bench)}
    return write_report([r for r in done if (r["algo"], r["env"], r["seed"]) in wanted], bench)


# ---- command line -----------------------------------------------------------------------------------
def main(bench: BenchConfig, argv: list[str]) -> None:
    """``rlenv bench``: run ``bench``, parsed from ``argv`` and validated by the command line before torch
    was imported (:func:`agents.benchmarking.bench_config.parse_args`); Ctrl-C prints how to resume."""
    try:
        _main(bench)
    except KeyboardInterrupt:
        print(interrupted_message(bench, argv), file=sys.stderr)
        raise SystemExit(130) from None


def interrupted_message(bench: BenchConfig, argv: list[str]) -> str:
    """What Ctrl-C prints: how many cells are kept and the command that runs the rest."""
    import shlex

    done = len(read_results(bench.out))
    again = [a for a in argv if a != "--resume"] + ["--resume"]
    return (
        f"interrupted; {done} of {len(cells(bench))} cells are finished and kept in "
        f"{Path(bench.out) / RESULTS_FILE} (the cells in flight will run again). Continue the grid with:\n"
        f"  rlenv bench {shlex.join(again)}"
    )


def _main(bench: BenchConfig) -> None:
    def progress(row: dict[str, Any], n: int, total: int) -> None:
        last = row["evals"][-1]
        print(
            f"[{n}/{total}] {row['algo']} {row['env']} seed {row['seed']}: held-out "
            f"{row['evals'][0]['reward_mean']:+.3f} -> {last['reward_mean']:+.3f} (kl {last['kl']:.2f}) "
            f"in {row['wall_s']:.0f}s",
            file=sys.stderr,
        )

    summary = run_bench(bench, progress)
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(summary['runs'])} cells; summary in {Path(bench.out) / 'summary.md'}")
