"""The ``rlenv`` command line: a thin tyro layer over the library's configs.

    rlenv envs                                   # every id, its reward, prompts and defaults
    rlenv train --algo ppo --env rlenv/PositiveReview-v0 --steps 50 [--time-budget S] [...]
    rlenv eval  --env ID [--model PATH] [--episodes N] [--split heldout] [--greedy]   # one JSON summary line
    rlenv bench [GRID.toml] [--algos ...] [--envs ...] [--seeds ...] [--steps N] [--jobs N] [--backend local|ray]
                [--resume]                       # held-out scores, IQM + CIs (agents/bench.py)
    rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]
    rlenv serve ID [--host H] [--port P] [--max-sessions N]           # OpenEnv server (extra 'serve')

``rlenv <command> --help`` lists every flag. Bad input prints one ``error:`` line and exits with 2;
set ``RLENV_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import tyro

from agents.config import EVAL_SEED, TrainConfig
from agents.errors import ConfigError, TrainingDivergedError, built_from_user_input

USAGE = """usage: rlenv {envs,train,eval,bench,rm,serve} ...

  envs    list every registered environment id (reward, prompts, defaults)
  train   train a policy: --algo {reinforce,ppo,rloo,grpo,dapo,gspo,cispo,sapo,reinforce_pp,rebn} --env ID
          [--steps N | --time-budget S] ...  (docs/algorithms.md: which loss, its flags, TRL's names)
  eval    evaluate a model on an env; prints one JSON summary line
  bench   grid of algos x tasks x seeds, each a `train` run scored on held-out prompts; IQM + CIs, plots
  rm      reward models: `rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]`
  serve   serve an env id as an OpenEnv environment: `rlenv serve ID [--host H] [--port P] [--max-sessions N]`

`rlenv <command> --help` lists the flags of a command."""


# ---- eval / envs / bench arguments -----------------------------------------------------------------
@dataclass(frozen=True)
class EvalArgs:
    """Score a model on an env's held-out prompts (fixed seeds) and print one JSON summary line."""

    env: str
    """registered env id ('rlenv envs' lists them)"""
    model: str | None = None
    """local model directory, a training checkpoint, or a run's --out directory (its latest checkpoint);
    default: rlenv.DEFAULT_MODEL"""
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
    transcripts: int = 0
    """print the first N episodes as role-marked transcripts (to stderr) and write them to --transcripts-out"""
    transcripts_out: str = "transcripts.jsonl"
    """JSONL file of the --transcripts episodes (one per line)"""


@dataclass(frozen=True)
class EnvsArgs:
    """List every registered rlenv id."""

    json: bool = False
    """print JSON records instead of a table"""


@dataclass(frozen=True)
class ServeArgs:
    """Serve an env id as an OpenEnv environment (HTTP reset/step/state, WebSocket sessions)."""

    env: tyro.conf.Positional[str]
    """registered env id (``rlenv envs`` lists them)"""
    host: str = "127.0.0.1"
    port: int = 8000
    max_sessions: int = 8
    """concurrent episodes (HTTP and WebSocket together)"""
    env_args: tuple[str, ...] = ()
    """extra env kwargs as key=value (JSON values)"""


# ---- commands -------------------------------------------------------------------------------------
def cmd_train(config: TrainConfig) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from agents.policy import resolve_device
    from agents.trainer import Trainer

    resolve_device(config.device)  # a device this torch cannot use fails before any model loads
    total = config.steps if config.steps is not None else config.time_budget
    assert total is not None  # TrainConfig requires one of the two
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn()]
    trainer = Trainer(config)  # bad paths and ids fail here, before the bar is drawn
    if not trainer.ranks.is_main:  # accelerate launch: rank 0 alone draws the bar and prints the summary
        trainer.run()
        return
    try:
        result = _run_with_progress(trainer, config, Progress(*columns, transient=False), total)
    except KeyboardInterrupt:
        print(interrupted_message(trainer), file=sys.stderr)
        raise SystemExit(130) from None
    metrics = result.metrics
    first, last = (metrics[0], metrics[-1]) if metrics else ({}, {})
    kl = last.get("kl")
    print(
        f"done: {result.step} updates, {result.episodes} episodes in {result.elapsed_s:.1f}s; "
        f"reward {first.get('reward_mean', float('nan')):+.3f} -> {last.get('reward_mean', float('nan')):+.3f}"
        + (f"; kl {kl:.3f}" if kl is not None else "")
        + f"; metrics, curve and checkpoints in {result.out}"
    )


def interrupted_message(trainer: Any) -> str:
    """What Ctrl-C prints: the exact command that continues the run, or why there is none."""
    out = shlex.quote(str(trainer.out))
    ckpt = trainer.last_checkpoint
    if ckpt is None:
        return (f"interrupted at update {trainer.step + 1}, before the first checkpoint (one is written every "
                f"--checkpoint-every {trainer.config.checkpoint_every} updates); nothing to resume: delete {out} "
                "and start again")
    return (f"interrupted at update {trainer.step + 1}; {ckpt.name} is kept. Continue the run (its saved flags are "
            f"the defaults; add --steps N or --time-budget S to change its length) with:\n"
            f"  rlenv train --resume {out}")


def _run_with_progress(trainer: Any, config: TrainConfig, progress: Any, total: float) -> Any:
    with progress:
        task = progress.add_task(f"{config.algo} {config.env}", total=total, status="starting")

        def on_update(record: dict[str, Any]) -> None:
            kl = record.get("kl")
            status = (f"step {record['step']}  reward {record['reward_mean']:+.3f}"
                      + (f"  kl {kl:.3f}" if kl is not None else "") + f"  loss {record['loss']:+.4f}")
            done = record["step"] if config.steps is not None else record["elapsed_s"]
            progress.update(task, completed=min(done, total), status=status)

        trainer.callback = on_update
        progress.update(task, completed=trainer.step if config.steps is not None else 0, status="training")
        return trainer.run()


def cmd_eval(args: EvalArgs) -> None:
    from agents.evaluation import EvalProtocol, evaluate_policy, has_splits, make_eval_envs
    from agents.policy import LMPolicy, resolve_device
    from rlenv import DEFAULT_MODEL, check_env_id

    check_env_id(args.env)
    if args.episodes < 1 or args.batch_size < 1:
        raise ConfigError("--episodes and --batch-size must be >= 1")
    if not 0 <= args.transcripts <= args.episodes:
        raise ConfigError(f"--transcripts must be in [0, --episodes={args.episodes}], got {args.transcripts}")
    resolve_device(args.device)
    split = ("heldout" if has_splits(args.env) else None) if args.split == "auto" else args.split
    protocol = EvalProtocol(episodes=args.episodes, batch_size=min(args.batch_size, args.episodes), seed=args.seed,
                            greedy=args.greedy, temperature=args.temperature,
                            split=None if split == "none" else split)
    model = _model_dir(args.model) if args.model else DEFAULT_MODEL
    # the env's kwargs are checked the way `rlenv train` checks them
    env_kwargs = TrainConfig(env=args.env, model=model, steps=1, env_args=args.env_args).parsed_env_args()
    with built_from_user_input(f"cannot load the model in {model}"):
        policy = LMPolicy.from_pretrained(model, device=args.device)
        reference = LMPolicy.from_pretrained(args.reference or _base_model(model) or DEFAULT_MODEL,
                                             device=args.device).reference()
    with built_from_user_input(f"cannot build {args.env} from its arguments"):
        envs = make_eval_envs(args.env, model, protocol, env_kwargs, args.max_new_tokens)
    try:
        summary = evaluate_policy(policy, envs, protocol, reference, transcripts=args.transcripts)
    finally:
        envs.close()
    if args.transcripts:
        write_transcripts(summary.pop("transcripts"), args.transcripts_out)
    print(json.dumps({"env": args.env, "model": str(model), "split": protocol.split, "seed": args.seed, **summary}))


def write_transcripts(transcripts: list[dict[str, Any]], path: str) -> None:
    """Print role-marked transcripts to stderr (stdout keeps its one JSON line) and write them as JSONL."""
    from agents.transcripts import format_transcript

    for k, transcript in enumerate(transcripts):
        print(format_transcript(transcript, k), file=sys.stderr)
    Path(path).write_text("".join(json.dumps(t) + "\n" for t in transcripts))
    print(f"wrote {len(transcripts)} transcripts to {path}", file=sys.stderr)


def _base_model(model: str) -> str | None:
    """The model a training checkpoint started from (its train_config.json), if ``model`` is one."""
    saved = Path(model) / "train_config.json"
    if not saved.is_file():
        return None
    return json.loads(saved.read_text()).get("model")


def _model_dir(path: str) -> str:
    """A model directory as given, or the latest checkpoint of a run's --out directory."""
    from agents.checkpoint import list_checkpoints

    if not (Path(path) / "config.json").exists():
        checkpoints = list_checkpoints(path)
        if checkpoints:
            return str(checkpoints[-1])
    return path


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
    for column in ("summary", "reward", "prompts", "defaults", "task card (train settings)", "untrained held-out"):
        table.add_column(column, overflow="fold")
    for info in records:
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items())
        score = untrained.get(info.id)
        shown = (f"{score['sampled']['reward_mean']:+.3f} sampled, {score['greedy']['reward_mean']:+.3f} greedy"
                 if score else "-")
        card = ", ".join(f"{k}={v}" for k, v in info.card.items()) or "-"
        table.add_row(info.id, info.summary, info.reward, info.prompts, defaults, card, shown)
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
    if config.out is not None and Path(config.out).is_dir() and any(Path(config.out).iterdir()):
        raise ConfigError(f"--out {config.out} already exists and is not empty; pass a new --out directory, "
                          "or delete that one first (rlenv rm train does not overwrite)")
    result = train_reward_model(config)
    print(json.dumps({"loss": config.loss, "data": config.data, "out": result.out, "num_train": result.num_train,
                      "num_val": result.num_val, "val": result.val_metrics, "constant_baseline": result.baseline_metrics}))


def cmd_serve(args: ServeArgs) -> None:
    from rlenv import check_env_id

    check_env_id(args.env)
    if args.max_sessions < 1 or not 0 < args.port < 65536:
        raise ConfigError("--max-sessions must be >= 1 and --port in [1, 65535]")
    try:
        from rlenv.serving import serve
    except ImportError as err:
        raise ConfigError(str(err)) from None
    env_kwargs = TrainConfig.parsed_env_args(args)  # type: ignore[arg-type]  # the same key=value parsing as train's --env-args
    print(f"serving {args.env} at http://{args.host}:{args.port} (WebSocket /ws, health /health); Ctrl-C stops",
          file=sys.stderr)
    serve(args.env, host=args.host, port=args.port, max_sessions=args.max_sessions, env_kwargs=env_kwargs)


# ---- entry point ----------------------------------------------------------------------------------
def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in ``argv`` (``--flag V`` or ``--flag=V``), or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _train_args(argv: list[str]) -> TrainConfig:
    """``rlenv train`` flags. With ``--resume DIR`` the run's saved config is the default, so only the
    flags passed change it (the trainer still refuses a change that would alter the learning curve)."""
    resume = _flag_value(argv, "--resume")
    if resume is None:
        return tyro.cli(TrainConfig, args=argv, prog="rlenv train")
    from agents.checkpoint import saved_config

    # out=None: continue in the resumed run's directory, wherever it is now, unless --out says otherwise
    default = replace(saved_config(resume), resume=resume, out=None)
    return tyro.cli(TrainConfig, args=argv, default=default, prog="rlenv train")


RM_USAGE = """usage: rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR] ...

  train   train a reward model on scored texts (mse), labels (ce) or preference pairs (bt)

`rlenv rm train --help` lists every flag."""


def run(argv: Sequence[str]) -> None:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command == "train":
        cmd_train(_train_args(rest))
    elif command == "eval":
        cmd_eval(tyro.cli(EvalArgs, args=rest, prog="rlenv eval"))
    elif command == "envs":
        cmd_envs(tyro.cli(EnvsArgs, args=rest, prog="rlenv envs"))
    elif command == "bench":
        from agents.bench import main as bench_main

        bench_main(rest)
    elif command == "rm" and rest[:1] == ["train"]:
        cmd_rm_train(rest[1:])
    elif command == "serve":
        cmd_serve(tyro.cli(ServeArgs, args=rest, prog="rlenv serve"))
    elif command == "rm" and rest[:1] in (["-h"], ["--help"]):
        print(RM_USAGE)
    elif command == "rm":
        raise ConfigError("usage: rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]")
    else:
        raise ConfigError(f"unknown command {command!r}; use one of envs, train, eval, bench, rm, serve (rlenv --help)")


def _user_input_errors() -> tuple[type[BaseException], ...]:
    """What counts as bad input (one ``error:`` line, exit 2): a config, a missing file, an unknown
    id or reward name, malformed prompts or RM data, a reward model's bad output. Anything else —
    a ValueError deep inside training, say — is a bug and keeps its traceback."""
    from reward_models.base import RewardModelError
    from reward_models.data import RMDataError
    from rlenv.prompts import PromptSourceError
    from rlenv.registration import UnknownEnvError

    return (ConfigError, FileNotFoundError, UnknownEnvError, RewardModelError, PromptSourceError, RMDataError)


def _training_failures() -> tuple[type[BaseException], ...]:
    """Failures of a run the user can act on (exit 1): divergence, a reward model that would not train."""
    from reward_models.training import RMTrainError

    return (TrainingDivergedError, RMTrainError)


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
    except _user_input_errors() as err:
        if debug:
            raise
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except _training_failures() as err:
        if debug:
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # rlenv train prints its own resume command
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
