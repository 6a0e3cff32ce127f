"""What ``rlenv bench`` is asked to run: the grid's settings (:class:`BenchConfig`), its cells and each cell's
``TrainConfig``, and the command line's parsing of a grid file and flags.

Nothing here imports torch or the trainer (:mod:`agents.benchmarking.bench` runs the cells), so
``rlenv bench --help``, an unknown flag, a bad value in the grid file and a missing grid file answer
before the heavy stack loads; :meth:`BenchConfig.validate` checks every cell's ``TrainConfig`` the same
way, before any directory is made or model loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_type_hints

from agents.config_files import read_config_file
from agents.training.config import ALGOS, ConfigError, TrainConfig
from rlenv.registration import has_splits

CELLS_DIR = "cells"
"""each cell trains into <out>/cells/<cell name>"""
SUITE: tuple[str, ...] = (
    "rlenv/PositiveReview-v0",
    "rlenv/Brief-v0",
    "rlenv/Keyword-v0",
    "rlenv/ContinueReview-v0",
)

# settings that only say how/where the grid runs; everything else shapes a cell's numbers
RUN_ONLY_FIELDS = frozenset({"jobs", "backend", "ray_address", "resume", "out", "device", "kl_budget"})


@dataclass(frozen=True)
class BenchConfig:
    """A grid of short training runs scored on held-out prompts (rlenv bench)."""

    algos: tuple[str, ...] = ALGOS
    envs: tuple[str, ...] = SUITE
    """task ids; each needs a train/held-out split (every named LM task has one)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 100
    """updates per cell (a step budget, not a time budget, so a cell is reproducible)"""
    eval_points: int = 4
    """held-out evaluations per cell, evenly spaced (plus one of the untrained model)"""
    eval_episodes: int = 64
    eval_greedy: bool = False
    model: str | None = None
    batch_size: int = 32
    group_size: int = 4
    lr: float | None = None
    """default: TrainConfig's"""
    kl_coef: float | None = None
    max_new_tokens: int | None = None
    env_args: tuple[str, ...] = ()
    """extra env kwargs (key=value) for every task"""
    reward_funcs: tuple[str, ...] = ()
    """your reward function(s) by import path (MODULE:FN or file.py:FN) in place of every task's reward,
    for training and the held-out scores; needs reward_ceiling"""
    reward_weights: tuple[float, ...] = ()
    """one weight per reward_funcs entry; default 1.0 each"""
    reward_ceiling: float | None = None
    """with reward_funcs: the best score they can give, the top of the normalised scale (0 = untrained)"""
    task_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """per-task env kwargs, e.g. {"rlenv/Arithmetic-v0": ["partial_width=10"]} (a TOML table)"""
    kl_budget: float = 5.0
    """nats: 'reward at matched KL' is each run's held-out score at its last evaluation within this KL"""
    jobs: int = 1
    """cells at once; each gets cores // jobs torch threads"""
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    """address of a running Ray cluster; default: start a local one"""
    resume: bool = False
    """skip the cells already in <out>/results.jsonl"""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    out: str = "runs/bench"

    def validate(self) -> None:
        if not self.algos or not self.envs or not self.seeds:
            raise ConfigError("the grid is empty: give at least one --algos, --envs and --seeds")
        if self.steps < 1 or self.eval_points < 1 or self.eval_points > self.steps:
            raise ConfigError(
                f"need steps >= eval_points >= 1, got steps={self.steps}, eval_points={self.eval_points}"
            )
        if self.jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {self.jobs}")
        if self.reward_funcs and self.reward_ceiling is None:
            raise ConfigError(
                "reward_funcs need reward_ceiling: the best score they can give, which a normalised "
                "score of 1 means (e.g. reward_ceiling = 1.0 for a reward in [0, 1])"
            )
        unknown = sorted(set(self.task_args) - set(self.envs))
        if unknown:
            raise ConfigError(
                f"task_args names tasks not in the grid: {unknown}; add them to envs or drop them"
            )
        for env in self.envs:
            if not has_splits(env):
                raise ConfigError(
                    f"{env} has no held-out prompt split, so it cannot be benchmarked; "
                    f"use named tasks such as {', '.join(SUITE)}"
                )
        for cell in cells(self):  # each cell's own checks (an unknown algo, a bad lr, a batch/group mismatch)
            train_config(self, cell)

    @property
    def eval_every(self) -> int:
        return max(1, self.steps // self.eval_points)

    def shaping(self) -> dict[str, Any]:
        """The settings that determine the cells' numbers (compared on ``--resume``)."""
        return {k: v for k, v in _jsonable(asdict(self)).items() if k not in RUN_ONLY_FIELDS}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class Cell:
    algo: str
    env: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.algo}|{self.env}|{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.algo}-{self.env.split('/')[-1]}-seed{self.seed}"


def cells(bench: BenchConfig) -> list[Cell]:
    return [Cell(a, e, s) for e in bench.envs for a in bench.algos for s in bench.seeds]


def train_config(bench: BenchConfig, cell: Cell) -> TrainConfig:
    """The ordinary TrainConfig of one cell (validated, so a bad grid fails before any run starts)."""
    overrides: dict[str, Any] = {
        k: v for k, v in (("lr", bench.lr), ("kl_coef", bench.kl_coef)) if v is not None
    }
    env_args = tuple(bench.env_args) + tuple(bench.task_args.get(cell.env, ()))
    return TrainConfig(
        algo=cell.algo,
        env=cell.env,
        seed=cell.seed,
        model=bench.model,
        steps=bench.steps,
        batch_size=bench.batch_size,
        group_size=bench.group_size,
        max_new_tokens=bench.max_new_tokens,
        env_args=env_args,
        reward_funcs=bench.reward_funcs,
        reward_weights=bench.reward_weights,
        device=bench.device,
        checkpoint_every=0,
        keep_checkpoints=1,
        eval_every=bench.eval_every,
        eval_episodes=bench.eval_episodes,
        eval_greedy=bench.eval_greedy,
        out=str(Path(bench.out) / CELLS_DIR / cell.name),
        **overrides,
    )


# ---- command line -----------------------------------------------------------------------------------
def load_grid_file(path: str | Path) -> dict[str, Any]:
    """Defaults from a TOML, YAML or JSON grid file (:mod:`agents.config_files`); lists become tuples, and
    a value of the wrong type is refused."""
    return read_config_file(
        path, (f.name for f in fields(BenchConfig)), "bench grid file", get_type_hints(BenchConfig)
    )


DESCRIPTION = """A grid of short training runs (algos x tasks x seeds) scored on held-out prompts; IQM and
stratified-bootstrap intervals in OUT/summary.md and summary.json.

  rlenv bench [GRID.toml|.yaml|.json] [flags]

GRID (positional, optional, first): a file of the settings below (field names as the flags', e.g.
algos = ["ppo", "grpo"]); flags given after it override the file. benchmarks/suite.toml is the published grid."""


def parse_args(argv: list[str]) -> BenchConfig:
    """``rlenv bench [GRID.toml] [flags]``: the file gives defaults, flags override them."""
    import tyro

    default = BenchConfig()
    if argv and not argv[0].startswith("-"):
        default = replace(default, **load_grid_file(argv.pop(0)))
    return tyro.cli(
        BenchConfig, args=argv, default=default, prog="rlenv bench [GRID.toml]", description=DESCRIPTION
    )
