"""The flags of ``rlenv eval``, ``sample`` and ``serve`` as frozen dataclasses (tyro reads them).

``rlenv train`` parses :class:`agents.training.config.TrainConfig`, ``rlenv bench`` :class:`agents.benchmarking.bench_config.BenchConfig`
and ``rlenv envs`` its one flag in :mod:`agents.cli`. Like the config it imports (and the algorithms'
specs with it), this module imports no torch: the flags parse and fail before a model is near.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import tyro

from agents.training.config import EVAL_SEED


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
    reward_funcs: tuple[str, ...] = ()
    """score with your reward function(s), MODULE:FN or path/to/file.py:FN, instead of the env's reward;
    default: those the checkpoint was trained with (on the same env), if any"""
    reward_weights: tuple[float, ...] = ()
    """one weight per --reward-funcs entry; default 1.0 each"""
    temperature: float = 1.0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    transcripts: int = 0
    """print the first N episodes as role-marked transcripts (to stderr) and write them to --transcripts-out"""
    transcripts_out: str = "transcripts.jsonl"
    """JSONL file of the --transcripts episodes (one per line)"""


@dataclass(frozen=True)
class SampleArgs:
    """Print completions of a model or checkpoint on an env (role-marked transcripts for multi-turn ids);
    --interactive puts you in the env's seat."""

    model: str | None = None
    """a run's --out directory (its latest checkpoint), a checkpoint, or a model directory; default:
    rlenv.DEFAULT_MODEL"""
    env: str | None = None
    """registered env id; default: the env the checkpoint was trained on"""
    prompt: str | None = None
    """use this prompt for every completion instead of the env's prompts"""
    n: int = 4
    """completions to print"""
    greedy: bool = False
    """arg-max decoding instead of sampling (then all n completions of one prompt are the same)"""
    seed: int = 0
    temperature: float = 1.0
    max_new_tokens: int | None = None
    """token budget per episode; default: the env's (or the checkpoint's run's)"""
    interactive: bool = False
    """multi-turn ids: you type the env's reply after each policy turn (empty line ends the episode);
    single-turn ids: you type prompts (empty line quits)"""
    env_args: tuple[str, ...] = ()
    """extra env kwargs as key=value (JSON values); default: the checkpoint's run's, on the same env"""
    reward_funcs: tuple[str, ...] = ()
    """your reward function(s), MODULE:FN or path/to/file.py:FN; default: the checkpoint's run's, if any"""
    reward_weights: tuple[float, ...] = ()
    json: bool = False
    """print one JSON object per episode (turns, reward, how it ended) instead of text"""
    device: Literal["cpu", "cuda", "auto"] = "auto"


@dataclass(frozen=True)
class ServeArgs:
    """Serve an env id as an OpenEnv environment (HTTP reset/step/state/close, WebSocket sessions)."""

    env: tyro.conf.Positional[str]
    """registered env id (rlenv envs lists them)"""
    host: str = "127.0.0.1"
    port: int = 8000
    max_sessions: int = 8
    """concurrent episodes (HTTP and WebSocket together); at capacity a new reset is refused with
    CAPACITY_REACHED until an episode ends, is closed, or idles out"""
    idle_timeout: float = 300.0
    """seconds after which an episode nobody has touched is closed, freeing its slot"""
    env_args: tuple[str, ...] = ()
    """extra env kwargs as key=value (JSON values)"""
    reward_funcs: tuple[str, ...] = ()
    """your reward function(s), MODULE:FN or path/to/file.py:FN, instead of the env's reward"""
    reward_weights: tuple[float, ...] = ()
