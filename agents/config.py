"""``TrainConfig``: every knob of ``rlenv train`` as one frozen dataclass, checked before any work.

Field names map to the command line (``batch_size`` <-> ``--batch-size``). :meth:`TrainConfig.validate`
rejects contradictions up front with errors that name the fix, so a bad flag costs milliseconds, not
a model load. Algorithm-specific defaults and constraints are declared by each algorithm class
(:mod:`agents.algorithms`); this file only asks the registry. Fields an algorithm does not use are
ignored by it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from agents.algorithms import ALGOS, Algo, algorithm_class
from agents.errors import ConfigError
from agents.kl import KLEstimator
from agents.losses import LossAggregation

__all__ = ["ALGOS", "EVAL_SEED", "RESUMABLE_FIELDS", "ConfigError", "TrainConfig", "config_differences"]

EVAL_SEED = 20_150_000
"""the held-out protocol's fixed seed (agents.evaluation): independent of the training seed, so every
run is evaluated on the same episodes"""

# Fields that may change between a run and its resumption: how long to run, where to write and
# what to watch. Everything else shapes the learning curve, so resuming with a change is refused.
RESUMABLE_FIELDS: frozenset[str] = frozenset(
    {"steps", "time_budget", "out", "resume", "device", "tensorboard", "checkpoint_every", "keep_checkpoints",
     "eval_every", "eval_episodes", "eval_greedy",
     # exact work savers: the same numbers to float rounding, so a run may resume with them switched
     "rollout_cache", "shared_prefill", "shared_scoring", "threads"}
)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (rlenv train)."""

    # ---- what to train, on what ---------------------------------------------------------------
    algo: Algo = "ppo"
    """the algorithm (agents/algorithms/): reinforce | ppo | rloo | grpo"""
    env: str = "rlenv/PositiveReview-v0"
    """registered env id ('rlenv envs' lists them)"""
    model: str | None = None
    """local model directory (also supplies the env's tokenizer); default: rlenv.DEFAULT_MODEL"""
    env_args: tuple[str, ...] = ()
    """extra env kwargs as key=value; values are parsed as JSON when they can be (e.g. max_prompt_tokens=16).
    A reward model with options: reward_model=learned 'reward_model_args={"path": "runs/rm"}'.
    From Python a dict works too: env_args={"max_prompt_tokens": 16}"""

    # ---- how long ---------------------------------------------------------------------------
    steps: int | None = None
    """number of updates (one rollout batch each)"""
    time_budget: float | None = None
    """wall-clock seconds; training stops after the update that crosses it (counts resumed time)"""

    # ---- batch and generation ---------------------------------------------------------------
    batch_size: int = 16
    """episodes (completions) per update"""
    group_size: int = 4
    """completions per prompt (rloo, grpo); batch_size / group_size prompts per update"""
    max_new_tokens: int | None = None
    """generation budget per episode; default: the env's own"""
    temperature: float = 1.0
    top_k: int = 0
    """0 disables top-k"""
    top_p: float = 1.0
    """1.0 disables nucleus sampling"""

    # ---- optimisation -----------------------------------------------------------------------
    lr: float = 1e-4
    """Adam learning rate (no weight decay); 1e-4 suits the small embedded model, larger pretrained models want ~1e-5 or less"""
    max_grad_norm: float = 1.0
    """gradient-norm clip (0 disables)"""
    lora_rank: int = 0
    """> 0 trains LoRA adapters of this rank instead of all weights (needs peft)"""

    # ---- KL to the frozen reference ---------------------------------------------------------
    kl_coef: float = 0.05
    """KL penalty weight (beta); 0 means no reference model is loaded for reinforce and rloo"""
    kl_estimator: KLEstimator | None = None
    """k1 | k2 | k3; default: the algorithm's (k3 for grpo, whose KL is in the loss; k1 elsewhere, in the reward)"""
    kl_target: float | None = None
    """ppo: set to use the adaptive KL controller aiming at this KL per sequence"""
    kl_horizon: int = 10000
    """ppo: adaptive controller horizon in episodes"""

    # ---- rewards and advantages -------------------------------------------------------------
    missing_eos_penalty: float = 0.0
    """subtracted from the reward of episodes that hit max_new_tokens without EOS"""
    baseline: Literal["batch-mean", "running-mean"] = "batch-mean"
    """reinforce: the baseline subtracted from the sequence reward"""
    baseline_momentum: float = 0.9
    """reinforce: running-mean baseline update rate"""
    scale_advantages: bool = True
    """grpo/rloo: divide group-relative advantages by the group std (grpo) / batch std (rloo);
    Dr. GRPO is --no-scale-advantages with --loss-aggregation sequence-sum"""
    loss_aggregation: LossAggregation | None = None
    """token-mean | sequence-mean | sequence-sum; default sequence-sum for reinforce/rloo, token-mean otherwise"""

    # ---- PPO / clipped updates --------------------------------------------------------------
    ppo_epochs: int | None = None
    """passes over each rollout batch; default: the algorithm's (ppo 4, others 1); reinforce/rloo take only 1"""
    minibatch_size: int | None = None
    """episodes per forward pass; default: the whole batch. ppo/grpo take an optimizer step per minibatch
    (with the importance ratio); reinforce/rloo accumulate the minibatches into one on-policy step"""
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    whiten_rewards: bool = False
    """ppo: whiten the per-token rewards before GAE (advantages are always whitened)"""

    # ---- run bookkeeping --------------------------------------------------------------------
    seed: int = 0
    out: str | None = None
    """output directory; default runs/<algo>-<env>-seed<seed>"""
    resume: str | None = None
    """a run directory or checkpoint to continue exactly"""
    device: Literal["cpu", "cuda", "auto"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """bf16: autocast the model's forward passes (rollouts and updates) to bfloat16; weights, optimizer
    state, logprobs and losses stay fp32. auto: bf16 on a CUDA device that supports it (as TRL
    defaults to), fp32 on a CPU (where bf16 changes the numbers: ask for it)"""
    rollout_precision: Literal["fp32", "bf16"] | None = None
    """the rollouts' forwards only; default: --precision. With bf16 rollouts and fp32 updates, what the
    update learns from (REINFORCE/RLOO's KL penalty) is recomputed in fp32"""
    reference_precision: Literal["fp32", "bf16"] | None = None
    """the frozen reference's forwards only (it is never differentiated; its logprobs feed only the
    KL); default: --precision. bf16 autocasts them: 2-3x faster on a CPU with bf16 units, at ~0.02-0.03
    nats of error in an episode's summed logprob (benchmarks/reference_precision.py)"""
    rollout_cache: Literal["dynamic", "preallocated"] = "preallocated"
    """preallocated: the rollout's KV cache is written in place, not concatenated per step (agents/kv_cache.py);
    dynamic: transformers' own cache (the same tokens and logprobs to float tolerance, slower)"""
    shared_prefill: bool = True
    """rollouts prefill each distinct prompt once (GRPO/RLOO groups) and skip left padding common to all rows;
    --no-shared-prefill prefills every row (the same tokens and logprobs to float tolerance)"""
    shared_scoring: bool = True
    """the update's scoring passes (policy and reference) run each distinct prompt once for its group and
    skip padding (agents/scoring.py); --no-shared-scoring scores every row in one padded forward (the same
    loss and gradients to float tolerance)"""
    threads: int | None = None
    """torch threads of this process (torch.set_num_threads); default: torch's own, one per core. On a
    machine shared with other busy processes fewer threads can be faster (benchmarks/thread_policy.py)"""
    checkpoint_every: int = 10
    """save a checkpoint every K updates (and always at the end); 0 = only at the end"""
    keep_checkpoints: int = 2
    """how many recent checkpoints to keep on disk"""
    tensorboard: bool = False
    """also log to TensorBoard (needs the tensorboard package)"""
    eval_every: int = 0
    """every K updates, score the held-out split (agents.evaluation) and log eval/... keys; 0 = never"""
    eval_episodes: int = 64
    """held-out episodes per evaluation (fixed seeds, the same for every run)"""
    eval_greedy: bool = False
    """evaluate with greedy decoding instead of sampling"""

    def __post_init__(self) -> None:
        if not isinstance(self.env_args, tuple):  # a dict (or list) from Python: store key=JSON strings
            object.__setattr__(self, "env_args", env_args_tuple(self.env_args))
        self.validate()

    # ---- checks -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first contradiction and how to fix it."""
        algorithm = algorithm_class(self.algo)
        if self.steps is None and self.time_budget is None:
            raise ConfigError("no stopping rule: pass --steps N (updates) or --time-budget S (seconds), or both")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"--time-budget must be > 0 seconds, got {self.time_budget}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.minibatch_size is not None:
            if self.minibatch_size < 1:
                raise ConfigError(f"--minibatch-size must be >= 1, got {self.minibatch_size}")
            if self.minibatch_size > self.batch_size:
                raise ConfigError(
                    f"--minibatch-size {self.minibatch_size} is larger than --batch-size {self.batch_size}; "
                    f"use --minibatch-size {self.batch_size} or less"
                )
            if self.batch_size % self.minibatch_size:
                raise ConfigError(
                    f"--batch-size {self.batch_size} is not divisible by --minibatch-size {self.minibatch_size}; "
                    "pick a minibatch size that divides the batch"
                )
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        if self.kl_coef < 0:
            raise ConfigError(f"--kl-coef must be >= 0, got {self.kl_coef}")
        if self.kl_target is not None:
            if not self.kl_target > 0:
                raise ConfigError(f"--kl-target must be > 0, got {self.kl_target}")
            if self.kl_coef == 0:
                raise ConfigError("the adaptive KL controller needs a starting --kl-coef > 0")
        if self.kl_horizon < 1:
            raise ConfigError(f"--kl-horizon must be >= 1, got {self.kl_horizon}")
        if self.ppo_epochs is not None and self.ppo_epochs < 1:
            raise ConfigError(f"--ppo-epochs must be >= 1, got {self.ppo_epochs}")
        if not 0 < self.clip_range < 1:
            raise ConfigError(f"--clip-range must be in (0, 1), got {self.clip_range}")
        if not self.value_clip_range > 0:
            raise ConfigError(f"--value-clip-range must be > 0, got {self.value_clip_range}")
        if not 0 <= self.gamma <= 1 or not 0 <= self.lam <= 1:
            raise ConfigError(f"--gamma and --lam must lie in [0, 1], got {self.gamma} and {self.lam}")
        if not 0 <= self.baseline_momentum < 1:
            raise ConfigError(f"--baseline-momentum must be in [0, 1), got {self.baseline_momentum}")
        if self.max_grad_norm < 0:
            raise ConfigError(f"--max-grad-norm must be >= 0 (0 disables clipping), got {self.max_grad_norm}")
        if self.lora_rank < 0:
            raise ConfigError(f"--lora-rank must be >= 0 (0 = full fine-tuning), got {self.lora_rank}")
        if self.eval_every < 0 or self.eval_episodes < 1:
            raise ConfigError("--eval-every must be >= 0 (0 = never) and --eval-episodes >= 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1 (or left unset for torch's default), got {self.threads}")
        if self.checkpoint_every < 0 or self.keep_checkpoints < 1:
            raise ConfigError("--checkpoint-every must be >= 0 and --keep-checkpoints >= 1")
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be > 0, got {self.temperature}")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-k must be >= 0 and --top-p in (0, 1], got {self.top_k} and {self.top_p}")
        self.parsed_env_args()  # malformed key=value pairs fail here too
        algorithm.check_config(self)

    # ---- derived values ---------------------------------------------------------------------
    @property
    def kl_kind(self) -> KLEstimator:
        """The KL estimator in use: the explicit one, else the algorithm's default."""
        return algorithm_class(self.algo).kl_estimator_for(self)

    @property
    def epochs(self) -> int:
        """Passes over each rollout batch (``ppo_epochs``, else the algorithm's default)."""
        return algorithm_class(self.algo).epochs_for(self)

    @property
    def minibatch(self) -> int:
        return self.minibatch_size or self.batch_size

    @property
    def out_dir(self) -> str:
        if self.out is not None:
            return self.out
        name = self.env.split("/")[-1].split("-v")[0]
        return f"runs/{self.algo}-{name}-seed{self.seed}"

    def parsed_env_args(self) -> dict[str, Any]:
        """``env_args`` as a dict, each value JSON-decoded when possible (so ``16`` is an int)."""
        parsed: dict[str, Any] = {}
        for item in self.env_args:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--env-args entries must look like key=value, got {item!r}")
            try:
                parsed[key] = json.loads(raw)
            except json.JSONDecodeError:
                parsed[key] = raw
        return parsed

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}; this checkpoint was written by another version")
        if "env_args" in data:
            data = {**data, "env_args": tuple(data["env_args"])}
        return cls(**data)


def env_args_tuple(env_args: Mapping[str, Any] | Sequence[str]) -> tuple[str, ...]:
    """``env_args`` given as a dict ``{key: JSON value}`` (or a list of ``key=value``) as the tuple of
    ``key=value`` strings the config stores, so that it prints, compares and saves like a CLI one."""
    if isinstance(env_args, str):
        raise ConfigError(f"env_args must be a dict or a sequence of key=value strings, got the string {env_args!r}")
    if not isinstance(env_args, Mapping):
        return tuple(env_args)
    items = []
    for key, value in env_args.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        try:
            items.append(f"{key}={json.dumps(value)}")
        except TypeError:
            raise ConfigError(
                f"env_args[{key!r}] is a {type(value).__name__}; env_args hold JSON values (str, number, bool, "
                "list, dict) so that a run can be saved and resumed. Register a Python object by name "
                "(reward_models.register) and pass the name, or build the env yourself with gym.make"
            ) from None
    return tuple(items)


def config_differences(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """Lines ``field: saved -> current`` for every field that matters to the learning curve."""
    diffs = []
    for f in fields(TrainConfig):
        if f.name in RESUMABLE_FIELDS:
            continue
        a, b = getattr(saved, f.name), getattr(current, f.name)
        if a != b:
            diffs.append(f"{f.name}: {a!r} (checkpoint) != {b!r} (now)")
    return diffs
