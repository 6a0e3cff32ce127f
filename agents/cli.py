"""The ``rlenv`` command line: a thin tyro layer over the library's configs.

    rlenv envs                                   # every id, its reward, prompts and defaults
    rlenv train --algo ppo --env rlenv/PositiveReview-v0 --steps 50 [--time-budget S] [...]
    rlenv eval  --env ID [--model PATH] [--episodes N] [--split heldout] [--greedy]   # one JSON summary line
    rlenv bench [GRID.toml] [--algos ...] [--envs ...] [--seeds ...] [--steps N] [--jobs N] [--backend local|ray]
                [--resume]                       # held-out scores, IQM + CIs (agents/bench.py)
    rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]

``rlenv <command> --help`` lists every flag. Bad input prints one ``error:`` line and exits with 2;
set ``RLENV_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import tyro

from agents.config import EVAL_SEED, ConfigError, TrainConfig

USAGE = """usage: rlenv {envs,train,eval,bench,rm} ...

  envs    list every registered environment id (reward, prompts, defaults)
  train   train a policy: --algo {reinforce,ppo,rloo,grpo} --env ID [--steps N | --time-budget S] ...
  eval    evaluate a model on an env; prints one JSON summary line
  bench   grid of algos x tasks x seeds, each a `train` run scored on held-out prompts; IQM + CIs, plots
  rm      reward models: `rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]`

`rlenv <command> --help` lists the flags of a command."""


# ---- eval / envs / bench arguments -----------------------------------------------------------------
@dataclass(frozen=True)
class EvalArgs:
    """Score a model on an env's held-out prompts (fixed seeds) and print one JSON summary line."""

    env: str
    """registered env id (``rlenv envs`` lists them)"""
    model: str | None = None
    """local model directory (a training checkpoint works too); default: rlenv.DEFAULT_MODEL"""
    episodes: int = 64
    seed: int = EVAL_SEED
    """the protocol's seed; the default is the one `rlenv bench` and --eval-every use"""
    split: Literal["auto", "train", "heldout", "none"] = "auto"
    """prompt split: auto = heldout for tasks that have one, else the env's prompts (none)"""
    greedy: bool = False
    """arg-max decoding instead of sampling"""
    reference: str | None = None
    """model the KL is measured to; default: a checkpoint's base model, else rlenv.DEFAULT_MODEL"""
    batch_size: int = 32
    """episodes per rollout batch"""
    max_new_tokens: int | None = None
    env_args: tuple[str, ...] = ()
    """extra env kwargs as key=value (JSON values)"""
    temperature: float = 1.0
    device: Literal["cpu", "cuda", "auto"] = "auto"


@dataclass(frozen=True)
class EnvsArgs:
    """List every registered rlenv id."""

    json: bool = False
    """print JSON records instead of a table"""


# ---- commands -------------------------------------------------------------------------------------
def cmd_train(config: TrainConfig) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from agents.trainer import Trainer

    total = config.steps if config.steps is not None else config.time_budget
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn()]
    trainer = Trainer(config)  # bad paths and ids fail here, before the bar is drawn
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(f"{config.algo} {config.env}", total=total, status="starting")

        def on_update(record: dict[str, Any]) -> None:
            kl = record.get("kl")
            status = (f"step {record['step']}  reward {record['reward_mean']:+.3f}"
                      + (f"  kl {kl:.3f}" if kl is not None else "") + f"  loss {record['loss']:+.4f}")
            done = record["step"] if config.steps is not None else record["elapsed_s"]
            progress.update(task, completed=min(done, total), status=status)

        trainer.callback = on_update
        progress.update(task, completed=trainer.step if config.steps is not None else 0, status="training")
        result = trainer.run()
    metrics = result.metrics
    first, last = (metrics[0], metrics[-1]) if metrics else ({}, {})
    kl = last.get("kl")
    print(
        f"done: {result.step} updates, {result.episodes} episodes in {result.elapsed_s:.1f}s; "
        f"reward {first.get('reward_mean', float('nan')):+.3f} -> {last.get('reward_mean', float('nan')):+.3f}"
        + (f"; kl {kl:.3f}" if kl is not None else "")
        + f"; metrics, curve and checkpoints in {result.out}"
    )


def cmd_eval(args: EvalArgs) -> None:
    from agents.evaluation import EvalProtocol, evaluate_policy, has_splits, make_eval_envs
    from agents.policy import LMPolicy
    from rlenv import DEFAULT_MODEL, check_env_id

    check_env_id(args.env)
    if args.episodes < 1 or args.batch_size < 1:
        raise ConfigError("--episodes and --batch-size must be >= 1")
    split = ("heldout" if has_splits(args.env) else None) if args.split == "auto" else args.split
    protocol = EvalProtocol(episodes=args.episodes, batch_size=min(args.batch_size, args.episodes), seed=args.seed,
                            greedy=args.greedy, temperature=args.temperature,
                            split=None if split == "none" else split)
    model = args.model or DEFAULT_MODEL
    # the env's kwargs are checked the way `rlenv train` checks them
    env_kwargs = TrainConfig(env=args.env, model=model, steps=1, env_args=args.env_args).parsed_env_args()
    policy = LMPolicy.from_pretrained(model, device=args.device)
    reference = LMPolicy.from_pretrained(args.reference or _base_model(model) or DEFAULT_MODEL,
                                         device=args.device).reference()
    envs = make_eval_envs(args.env, model, protocol, env_kwargs, args.max_new_tokens)
    try:
        summary = evaluate_policy(policy, envs, protocol, reference)
    finally:
        envs.close()
    print(json.dumps({"env": args.env, "model": str(model), "split": protocol.split, "seed": args.seed, **summary}))


def _base_model(model: str) -> str | None:
    """The model a training checkpoint started from (its train_config.json), if ``model`` is one."""
    saved = Path(model) / "train_config.json"
    if not saved.is_file():
        return None
    return json.loads(saved.read_text()).get("model")


def cmd_envs(args: EnvsArgs) -> None:
    import rlenv
    from rlenv.tasks import untrained_heldout

    records = rlenv.envs()
    untrained = untrained_heldout().get("scores", {})
    if args.json:
        for info in records:
            print(json.dumps({**asdict(info), "untrained_heldout": untrained.get(info.id)}, default=str))
        return
    from rich.table import Table

    table = Table(title="rlenv environments (untrained held-out: benchmarks/untrained_heldout.py)", show_lines=True)
    table.add_column("id", no_wrap=True, style="bold")
    for column in ("summary", "reward", "prompts", "defaults", "untrained held-out"):
        table.add_column(column, overflow="fold")
    for info in records:
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items())
        score = untrained.get(info.id)
        shown = (f"{score['sampled']['reward_mean']:+.3f} sampled, {score['greedy']['reward_mean']:+.3f} greedy"
                 if score else "-")
        table.add_row(info.id, info.summary, info.reward, info.prompts, defaults, shown)
    _console().print(table)


def _console() -> Any:
    """Rich console; piped output gets a wide fixed width instead of 80 columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def cmd_rm_train(argv: Sequence[str]) -> None:
    from reward_models.training import RMTrainConfig, RMTrainError, train_reward_model, validate_config

    config = tyro.cli(RMTrainConfig, args=list(argv), prog="rlenv rm train")
    try:
        validate_config(config)
    except RMTrainError as err:  # a bad flag or data path: bad input, not a training failure
        raise ConfigError(str(err)) from None
    result = train_reward_model(config)
    print(json.dumps({"loss": config.loss, "data": config.data, "out": result.out, "num_train": result.num_train,
                      "num_val": result.num_val, "val": result.val_metrics, "constant_baseline": result.baseline_metrics}))


# ---- entry point ----------------------------------------------------------------------------------
def run(argv: Sequence[str]) -> None:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command == "train":
        cmd_train(tyro.cli(TrainConfig, args=rest, prog="rlenv train"))
    elif command == "eval":
        cmd_eval(tyro.cli(EvalArgs, args=rest, prog="rlenv eval"))
    elif command == "envs":
        cmd_envs(tyro.cli(EnvsArgs, args=rest, prog="rlenv envs"))
    elif command == "bench":
        from agents.bench import main as bench_main

        bench_main(rest)
    elif command == "rm" and rest[:1] == ["train"]:
        cmd_rm_train(rest[1:])
    elif command == "rm":
        raise ConfigError("usage: rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]")
    else:
        raise ConfigError(f"unknown command {command!r}; use one of envs, train, eval, bench, rm (rlenv --help)")


BAD_INPUT = (ConfigError, ValueError, KeyError, FileNotFoundError, TypeError)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (0 ok, 2 bad input, 1 training failure)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would interleave with ours
    except ImportError:  # pragma: no cover
        pass
    debug = os.environ.get("RLENV_DEBUG") == "1"
    try:
        run(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # tyro / argparse usage errors already printed their message
        return int(exit_.code or 0) if isinstance(exit_.code, int) else 2
    except BAD_INPUT as err:
        if debug:
            raise
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # training diverged, reward-model training failed
        if debug:
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; resume with --resume <out> (the last checkpoint is kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
