"""The ``rlenv`` command line: a thin tyro layer over the library's configs.

    rlenv envs                                   # every id, its reward, prompts and defaults
    rlenv train --algo ppo --env rlenv/PositiveReview-v0 --steps 50 [--time-budget S] [...]
    rlenv eval  --env ID [--model PATH] [--episodes N] [--split heldout] [--greedy]   # one JSON summary line
    rlenv sample --model RUN|CHECKPOINT [--env ID] [--prompt TEXT] [--n N] [--greedy] [--interactive]
    rlenv bench [GRID.toml] [--algos ...] [--envs ...] [--seeds ...] [--steps N] [--jobs N] [--backend local|ray]
                [--resume]                       # held-out scores, IQM + CIs (agents/benchmarking/bench.py)
    rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]
    rlenv serve ID [--host H] [--port P] [--max-sessions N] [--idle-timeout S]   # OpenEnv server (extra 'serve')

``rlenv <command> --help`` lists every flag. Bad input prints one ``error:`` line and exits with 2;
set ``RLENV_DEBUG=1`` for the traceback.

Start-up is part of the interface: this module imports only the standard library at the top, and each
command imports what it needs (tyro, the config and the algorithms' torch-free specs, and only once a
model loads torch and transformers) inside its function, so ``rlenv --help``, ``rlenv envs``, ``rlenv
train --help`` and the errors found before a model loads answer quickly (benchmarks/startup.py measures
them; tests/agents/test_own_things_cli.py checks that they import no torch).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from agents.errors import ConfigError, TrainingDivergedError, built_from_user_input

if TYPE_CHECKING:
    from agents.cli_args import EvalArgs, SampleArgs, ServeArgs
    from agents.training.config import TrainConfig

USAGE = """usage: rlenv {envs,train,eval,sample,bench,rm,serve} ...

  envs    list every registered environment id (reward, prompts, defaults)
  train   train a policy: --algo {reinforce,ppo,rloo,grpo,dapo,gspo,cispo,sapo,reinforce_pp,rebn} --env ID
          [--steps N | --time-budget S] ...  (docs/algorithms.md: which loss, its flags, TRL's names)
          [--config FILE.yaml|toml] [--reward-funcs MODULE:FN|FILE.py:FN ...] [--report-to tensorboard|wandb]
  eval    evaluate a model on an env; prints one JSON summary line
  sample  print completions of a run, checkpoint or model: --model RUN [--env ID] [--prompt TEXT] [--n N]
  bench   grid of algos x tasks x seeds, each a `train` run scored on held-out prompts; IQM + CIs, plots
  rm      reward models: `rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]`
  serve   serve an env id as an OpenEnv environment: `rlenv serve ID [--host H] [--port P] [--idle-timeout S]`

`rlenv <command> --help` lists the flags of a command."""


@dataclass(frozen=True)
class EnvsArgs:
    """List every registered rlenv id."""

    json: bool = False
    """print JSON records instead of a table"""


# ---- commands -------------------------------------------------------------------------------------
def cmd_train(config: TrainConfig) -> None:
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from agents.training.policy import resolve_device
    from agents.training.trainer import Trainer

    resolve_device(config.device)  # a device this torch cannot use fails before any model loads
    total = config.steps if config.steps is not None else config.time_budget
    assert total is not None  # TrainConfig requires one of the two
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    ]
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
    threads = torch.get_num_threads()
    first, last = (metrics[0], metrics[-1]) if metrics else ({}, {})
    kl = last.get("kl")
    print(
        f"done: {result.step} updates, {result.episodes} episodes in {result.elapsed_s:.1f}s "
        f"({threads} torch thread{'' if threads == 1 else 's'}); "
        f"reward {first.get('reward_mean', float('nan')):+.3f} -> {last.get('reward_mean', float('nan')):+.3f}"
        + (f"; kl {kl:.3f}" if kl is not None else "")
        + f"; metrics, curve and checkpoints in {result.out}"
    )


def interrupted_message(trainer: Any) -> str:
    """What Ctrl-C prints: the exact command that continues the run, or why there is none."""
    out = shlex.quote(str(trainer.out))
    ckpt = trainer.last_checkpoint
    if ckpt is None:
        return (
            f"interrupted at update {trainer.step + 1}, before the first checkpoint (one is written every "
            f"--checkpoint-every {trainer.config.checkpoint_every} updates); nothing to resume: delete {out} "
            "and start again"
        )
    return (
        f"interrupted at update {trainer.step + 1}; {ckpt.name} is kept. Continue the run (its saved flags are "
        f"the defaults; add --steps N or --time-budget S to change its length) with:\n"
        f"  rlenv train --resume {out}"
    )


def _run_with_progress(trainer: Any, config: TrainConfig, progress: Any, total: float) -> Any:
    with progress:
        task = progress.add_task(f"{config.algo} {config.env}", total=total, status="starting")

        def on_update(record: dict[str, Any]) -> None:
            kl = record.get("kl")
            status = (
                f"step {record['step']}  reward {record['reward_mean']:+.3f}"
                + (f"  kl {kl:.3f}" if kl is not None else "")
                + f"  loss {record['loss']:+.4f}"
            )
            done = record["step"] if config.steps is not None else record["elapsed_s"]
            progress.update(task, completed=min(done, total), status=status)

        trainer.callback = on_update
        progress.update(task, completed=trainer.step if config.steps is not None else 0, status="training")
        return trainer.run()


def cmd_eval(args: EvalArgs) -> None:
    from agents.training.evaluation import EvalProtocol, evaluate_policy, make_eval_envs
    from agents.training.policy import LMPolicy, resolve_device
    from rlenv import DEFAULT_MODEL, check_env_id
    from rlenv.registration import has_splits

    check_env_id(args.env)
    if args.episodes < 1 or args.batch_size < 1:
        raise ConfigError("--episodes and --batch-size must be >= 1")
    if not 0 <= args.transcripts <= args.episodes:
        raise ConfigError(f"--transcripts must be in [0, --episodes={args.episodes}], got {args.transcripts}")
    resolve_device(args.device)
    split = ("heldout" if has_splits(args.env) else None) if args.split == "auto" else args.split
    protocol = EvalProtocol(
        episodes=args.episodes,
        batch_size=min(args.batch_size, args.episodes),
        seed=args.seed,
        greedy=args.greedy,
        temperature=args.temperature,
        split=None if split == "none" else split,
    )
    model = _model_dir(args.model) if args.model else DEFAULT_MODEL
    reward_funcs, reward_weights = _reward_funcs(args, _run_config(model), args.env)
    env_kwargs = _env_kwargs(args.env, args.env_args, reward_funcs, reward_weights)
    with built_from_user_input(f"cannot load the model in {model}"):
        policy = LMPolicy.from_pretrained(model, device=args.device)
        reference = LMPolicy.from_pretrained(
            args.reference or _base_model(model) or DEFAULT_MODEL, device=args.device
        ).reference()
    with built_from_user_input(f"cannot build {args.env} from its arguments"):
        envs = make_eval_envs(args.env, model, protocol, env_kwargs, args.max_new_tokens)
    try:
        summary = evaluate_policy(policy, envs, protocol, reference, transcripts=args.transcripts)
    finally:
        envs.close()
    if args.transcripts:
        write_transcripts(summary.pop("transcripts"), args.transcripts_out)
    reward = {"reward_funcs": list(reward_funcs)} if reward_funcs else {}
    print(
        json.dumps(
            {
                "env": args.env,
                "model": str(model),
                "split": protocol.split,
                "seed": args.seed,
                **reward,
                **summary,
            }
        )
    )


def cmd_sample(args: SampleArgs) -> None:
    from agents.training.policy import LMPolicy, SamplingConfig, resolve_device
    from agents.training.sampling import sample, typed_responder
    from rlenv import DEFAULT_MODEL, check_env_id

    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if not args.temperature > 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature}")
    model = _model_dir(args.model) if args.model else DEFAULT_MODEL
    run = _run_config(model)
    env = args.env or run.get("env")
    if env is None:
        raise ConfigError(
            f"{model} is not a training checkpoint, so it names no env; pass --env ID (`rlenv envs`)"
        )
    check_env_id(env)
    same_env = run.get("env") == env
    env_args = args.env_args or (tuple(run.get("env_args") or ()) if same_env else ())
    reward_funcs, reward_weights = _reward_funcs(args, run, env)
    env_kwargs = _env_kwargs(env, env_args, reward_funcs, reward_weights)
    max_new_tokens = args.max_new_tokens or (run.get("max_new_tokens") if same_env else None)
    if max_new_tokens is not None:
        env_kwargs["max_new_tokens"] = max_new_tokens
    resolve_device(args.device)
    sampling = SamplingConfig(temperature=args.temperature, top_k=1 if args.greedy else 0)
    with built_from_user_input(f"cannot load the model in {model}"):
        policy = LMPolicy.from_pretrained(model, device=args.device, sampling=sampling)
    policy.train(False)
    n = 1 if args.interactive else args.n
    envs = _sample_envs(env, n, model, env_kwargs)
    roles = "policy_mask" in envs.single_observation_space.spaces  # multi-turn: the env speaks between turns
    if args.interactive and roles:  # you are the env: the same env with you as its responder
        envs.close()
        envs = _sample_envs(env, n, model, {**env_kwargs, "responder": typed_responder(input, print)})
    try:
        if args.interactive and not roles:
            _chat(policy, envs, args.seed)
            return
        for i, transcript in enumerate(sample(policy, envs, seed=args.seed, prompt=args.prompt)):
            if args.json:
                print(
                    json.dumps(
                        {"turns": transcript.turns, "reward": transcript.reward, "ended": transcript.ended}
                    )
                )
            else:
                print(f"--- {i + 1}/{n}  reward {transcript.reward:+.3f}  ended: {transcript.ended}")
                print(transcript.render(roles))
    finally:
        envs.close()


def _sample_envs(env: str, n: int, model: str, env_kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym

    with built_from_user_input(f"cannot build {env} from its arguments"):
        return gym.make_vec(
            env,
            num_envs=n,
            vectorization_mode="vector_entry_point",
            autoreset_mode="Disabled",
            tokenizer=model,
            **env_kwargs,
        )


def _chat(policy: Any, envs: Any, seed: int) -> None:
    """Single-turn interactive mode: each line you type is a prompt; an empty line (or end of input) quits."""
    from agents.training.sampling import sample

    for turn in range(10**9):
        try:
            prompt = input("prompt> ")
        except EOFError:
            return
        if not prompt.strip():
            return
        transcript = sample(policy, envs, seed=seed + turn, prompt=prompt)[0]
        completion = "".join(text for _, text in transcript.turns[1:])
        print(f"{completion}\n  (reward {transcript.reward:+.3f}, ended: {transcript.ended})")


def _run_config(model: str) -> dict[str, Any]:
    """The settings a training checkpoint was trained with (its train_config.json), or {} for a plain model."""
    saved = Path(model) / "train_config.json"
    return json.loads(saved.read_text()) if saved.is_file() else {}


def _reward_funcs(args: Any, run: dict[str, Any], env: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """--reward-funcs and --reward-weights, else those of the run the checkpoint comes from (same env)."""
    if args.reward_funcs or run.get("env") != env:
        return tuple(args.reward_funcs), tuple(args.reward_weights)
    return tuple(run.get("reward_funcs") or ()), tuple(run.get("reward_weights") or ())


def _env_kwargs(
    env: str, env_args: Sequence[str], reward_funcs: Sequence[str], reward_weights: Sequence[float]
) -> dict[str, Any]:
    """The env's kwargs, parsed and checked the way `rlenv train` checks them (--env-args key=value pairs,
    --reward-funcs import paths), before any model loads."""
    from agents.training.config import TrainConfig

    return TrainConfig(
        env=env,
        steps=1,
        env_args=tuple(env_args),
        reward_funcs=tuple(reward_funcs),
        reward_weights=tuple(reward_weights),
    ).env_kwargs()


def write_transcripts(transcripts: list[dict[str, Any]], path: str) -> None:
    """Print role-marked transcripts to stderr (stdout keeps its one JSON line) and write them as JSONL."""
    from agents.training.transcripts import format_transcript

    for k, transcript in enumerate(transcripts):
        print(format_transcript(transcript, k), file=sys.stderr)
    Path(path).write_text("".join(json.dumps(t) + "\n" for t in transcripts))
    print(f"wrote {len(transcripts)} transcripts to {path}", file=sys.stderr)


def _base_model(model: str) -> str | None:
    """The model a training checkpoint started from (its train_config.json), if ``model`` is one."""
    return _run_config(model).get("model")


def _model_dir(path: str) -> str:
    """A model directory as given, or the latest checkpoint of a run's --out directory."""
    from agents.training.checkpoint import list_checkpoints

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

    table = Table(
        title="rlenv environments (untrained held-out: benchmarks/untrained_heldout.py)", show_lines=True
    )
    table.add_column("id", no_wrap=True, style="bold")
    for column in (
        "summary",
        "reward",
        "prompts",
        "defaults",
        "task card (train settings)",
        "untrained held-out",
    ):
        table.add_column(column, overflow="fold")
    for info in records:
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items())
        score = untrained.get(info.id)
        shown = (
            f"{score['sampled']['reward_mean']:+.3f} sampled, {score['greedy']['reward_mean']:+.3f} greedy"
            if score
            else "-"
        )
        card = ", ".join(f"{k}={v}" for k, v in info.card.items()) or "-"
        table.add_row(info.id, info.summary, info.reward, info.prompts, defaults, card, shown)
    _console().print(table)


def _console() -> Any:
    """Rich console; piped output gets a wide fixed width instead of 80 columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def cmd_rm_train(argv: Sequence[str]) -> None:
    import tyro

    from reward_models.training import RMTrainConfig, RMTrainError, train_reward_model, validate_config

    config = tyro.cli(RMTrainConfig, args=list(argv), prog="rlenv rm train")
    try:
        validate_config(config)
    except RMTrainError as err:  # a bad flag or data path: bad input, not a training failure
        raise ConfigError(str(err)) from None
    if config.out is not None and Path(config.out).is_dir() and any(Path(config.out).iterdir()):
        raise ConfigError(
            f"--out {config.out} already exists and is not empty; pass a new --out directory, "
            "or delete that one first (rlenv rm train does not overwrite)"
        )
    result = train_reward_model(config)
    print(
        json.dumps(
            {
                "loss": config.loss,
                "data": config.data,
                "out": result.out,
                "num_train": result.num_train,
                "num_val": result.num_val,
                "val": result.val_metrics,
                "constant_baseline": result.baseline_metrics,
            }
        )
    )


def cmd_serve(args: ServeArgs) -> None:
    from rlenv import check_env_id

    check_env_id(args.env)
    if args.max_sessions < 1 or not 0 < args.port < 65536:
        raise ConfigError("--max-sessions must be >= 1 and --port in [1, 65535]")
    try:
        from rlenv.serving import serve
    except ImportError as err:
        raise ConfigError(str(err)) from None
    if not args.idle_timeout > 0:
        raise ConfigError(f"--idle-timeout must be > 0 seconds, got {args.idle_timeout}")
    env_kwargs = _env_kwargs(args.env, args.env_args, args.reward_funcs, args.reward_weights)
    print(
        f"serving {args.env} at http://{args.host}:{args.port} (WebSocket /ws, health /health; {args.max_sessions} "
        f"episodes at once, idle ones closed after {args.idle_timeout:g}s); Ctrl-C stops",
        file=sys.stderr,
    )
    serve(
        args.env,
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        env_kwargs=env_kwargs,
        idle_timeout=args.idle_timeout,
    )


# ---- entry point ----------------------------------------------------------------------------------
def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in ``argv`` (``--flag V`` or ``--flag=V``), or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


TRAIN_DESCRIPTION = """Train a policy on an env (TrainConfig). Besides the flags below:

  --config FILE.yaml|.toml|.json   settings from a file, field names as the flags' (batch_size or batch-size);
                                   flags given beside it override the file
  --resume DIR                     continue a run exactly; its saved settings are the defaults"""


def _train_args(argv: list[str]) -> TrainConfig:
    """``rlenv train`` flags. The defaults come, in order of precedence, from the flags, ``--config FILE``,
    the run being resumed (``--resume DIR``: only the flags passed change it; the trainer still refuses a
    change that would alter the learning curve) and TrainConfig's own defaults."""
    import tyro

    from agents.training.config import TrainConfig

    resume = _flag_value(argv, "--resume")
    config_file = _flag_value(argv, "--config")
    argv = _without_flag(argv, "--config")
    values: dict[str, Any] = {}
    if resume is not None:
        from agents.training.checkpoint import saved_config

        # out=None: continue in the resumed run's directory, wherever it is now, unless --out says otherwise
        values = {**asdict(replace(saved_config(resume), resume=resume, out=None))}
    if config_file is not None:
        from agents.config_files import read_config_file

        # a value of the wrong type is refused as the file is read; env_args may be a table (made key=value later)
        types = {k: v for k, v in get_type_hints(TrainConfig).items() if k != "env_args"}
        values.update(
            read_config_file(config_file, (f.name for f in fields(TrainConfig)), "--config file", types)
        )
    if not values:
        return tyro.cli(TrainConfig, args=argv, prog="rlenv train", description=TRAIN_DESCRIPTION)
    return tyro.cli(
        TrainConfig,
        args=argv,
        default=_unchecked_config(values),
        prog="rlenv train",
        description=TRAIN_DESCRIPTION,
    )


def _without_flag(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--flag V`` or ``--flag=V``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _unchecked_config(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig holding ``values`` without validating them: the defaults the flags are parsed over.
    A file may leave out what a flag supplies (``--steps``), so only the merged config can be checked;
    tyro builds that one through the constructor, which validates it."""
    from agents.training.config import TrainConfig, env_args_tuple

    config = object.__new__(TrainConfig)
    for f in fields(TrainConfig):
        if f.name in values:
            value = values[f.name]
        elif f.default_factory is not MISSING:  # e.g. setting_sources, filled in when the config is built
            value = f.default_factory()
        else:
            value = f.default
        if f.name == "env_args" and not isinstance(value, tuple):  # a table in the file, a list from JSON
            value = env_args_tuple(value)
        object.__setattr__(config, f.name, value)
    return config


RM_USAGE = """usage: rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR] ...

  train   train a reward model on scored texts (mse), labels (ce) or preference pairs (bt)

`rlenv rm train --help` lists every flag."""


COMMANDS = ("envs", "train", "eval", "sample", "bench", "rm", "serve")


def run(argv: Sequence[str]) -> None:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(command, COMMANDS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown command {command!r}; {hint}use one of {', '.join(COMMANDS)} (rlenv --help)"
        )
    if command == "rm" and rest[:1] in (["-h"], ["--help"]):
        print(RM_USAGE)
        return
    if command == "rm" and rest[:1] != ["train"]:
        raise ConfigError("usage: rlenv rm train --loss {mse,ce,bt} --data FILE [--model PATH] [--out DIR]")
    _check_env_flag(command, rest)
    import tyro  # imported here, not at the top: `rlenv --help` and a mistyped command need none of it

    if command == "envs":
        cmd_envs(tyro.cli(EnvsArgs, args=rest, prog="rlenv envs"))
        return
    if command == "train":
        cmd_train(_train_args(rest))
    elif command == "bench":
        from agents.benchmarking.bench_config import parse_args

        bench = parse_args(list(rest))
        bench.validate()  # the grid and every cell's config are checked before torch and the trainer load
        from agents.benchmarking.bench import main as bench_main

        bench_main(bench, rest)
    elif command == "rm":
        cmd_rm_train(rest[1:])
    else:
        from agents.cli_args import EvalArgs, SampleArgs, ServeArgs

        if command == "eval":
            cmd_eval(tyro.cli(EvalArgs, args=rest, prog="rlenv eval"))
        elif command == "sample":
            cmd_sample(tyro.cli(SampleArgs, args=rest, prog="rlenv sample"))
        else:
            cmd_serve(tyro.cli(ServeArgs, args=rest, prog="rlenv serve"))


def _check_env_flag(command: str, argv: Sequence[str]) -> None:
    """A mistyped env id (``--env``, or serve's positional id) fails here, before tyro and the config are
    imported to parse the other flags."""
    if "-h" in argv or "--help" in argv:
        return
    env = _flag_value(argv, "--env")
    if command == "serve" and env is None and argv and not argv[0].startswith("-"):
        env = argv[0]
    if env is None or command not in ("train", "eval", "sample", "serve"):
        return
    from rlenv import check_env_id  # light: the ids are registered, the env classes load when made

    check_env_id(env)


def _user_input_errors() -> tuple[type[BaseException], ...]:
    """What counts as bad input (one ``error:`` line, exit 2): a config, a missing file, an unknown
    id or reward name, malformed prompts or RM data, a reward model's bad output. Anything else —
    a ValueError deep inside training, say — is a bug and keeps its traceback.

    Only the classes of modules already imported are looked up: an exception cannot be of a class
    whose module never loaded, and importing them here would cost a one-line error seconds."""
    return (
        ConfigError,
        FileNotFoundError,
        *_loaded_classes(
            "reward_models.base:RewardModelError",
            "reward_models.data:RMDataError",
            "rlenv.prompts:PromptSourceError",
            "rlenv.registration:UnknownEnvError",
        ),
    )


def _loaded_classes(*paths: str) -> tuple[type[BaseException], ...]:
    """The classes ``module:Name`` whose module is imported already."""
    found = []
    for path in paths:
        module, _, name = path.partition(":")
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def _training_failures() -> tuple[type[BaseException], ...]:
    """Failures of a run the user can act on (exit 1): divergence, a reward model that would not train."""
    return (TrainingDivergedError, *_loaded_classes("reward_models.training:RMTrainError"))


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (0 ok, 2 bad input, 1 training failure)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # transformers' per-load "Loading weights" / "Writing model shards" bars are hidden where rlenv loads and
    # saves (reward_models.hf_progress), in this process and in any worker, so nothing is switched off here
    debug = os.environ.get("RLENV_DEBUG") == "1"
    try:
        run(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # tyro / argparse usage errors already printed their message
        return int(exit_.code or 0) if isinstance(exit_.code, int) else 2
    except _user_input_errors() as err:
        if debug:
            raise
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        if err.__cause__ is not None and type(err).__name__ == "RewardFunctionError":
            message += " (RLENV_DEBUG=1 prints its traceback)"
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
