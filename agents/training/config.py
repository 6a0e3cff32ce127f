"""``TrainConfig``: every knob of ``rlenv train`` as one frozen dataclass, checked before any work.

Field names map to the command line (``batch_size`` <-> ``--batch-size``). :meth:`TrainConfig.validate`
rejects contradictions up front with errors that name the fix, so a bad flag costs milliseconds, not
a model load. Algorithm-specific defaults and constraints are declared by each algorithm's spec
(:mod:`agents.algorithms.specs`, which imports no torch, so neither does this module); this file only
asks the specs. Fields an algorithm does not use are ignored by it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro

import reward_models
from agents.algorithms.specs import ALGOS, Algo, algo_help, algorithm_spec, setting_default_help
from agents.errors import ConfigError
from agents.training.choices import KLEstimator, LossAggregation, RewardScaling
from rlenv import task_card

__all__ = [
    "ALGOS",
    "EVAL_SEED",
    "RESUMABLE_FIELDS",
    "SETTING_DEFAULTS",
    "ConfigError",
    "EnvSpec",
    "TrainConfig",
    "config_differences",
]

if TYPE_CHECKING:
    EnvSpec = str | Callable[[], Any]
else:  # the command line parses an id; from Python, a callable is accepted as well (see TrainConfig.env)
    EnvSpec = str

Tracker = Literal["tensorboard", "wandb", "none"]
ALGO_HELP = algo_help()  # --algo's menu, from the algorithms' specs

EVAL_SEED = 20_150_000
"""the held-out protocol's fixed seed (agents.training.evaluation): independent of the training seed, so every
run is evaluated on the same episodes"""

# Fields that may change between a run and its resumption: how long to run, where to write and
# what to watch. Everything else shapes the learning curve, so resuming with a change is refused.
RESUMABLE_FIELDS: frozenset[str] = frozenset(
    {
        "steps",
        "time_budget",
        "out",
        "resume",
        "device",
        "tensorboard",
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "eval_episodes",
        "eval_greedy",
        "setting_sources",
        "report_to",
        # exact work savers: the same numbers to float rounding, so a run may resume with them switched
        "rollout_cache",
        "shared_prefill",
        "shared_scoring",
        "threads",
    }
)

SETTING_DEFAULTS: dict[str, Any] = {
    "lr": 1e-4,
    "kl_coef": 0.05,
    "clip_range": 0.2,
    "epsilon_high": None,
    "scale_rewards": None,
    "dynamic_sampling": False,
    "overlong_buffer": 0.0,
    "temperature": 1.0,
}
"""Settings resolved when the config is built, where no flag gives them: from the task's card
(``rlenv envs`` shows it), else the algorithm's declared defaults, else these values. The config's
``setting_sources`` records which one each value came from."""


def setting_help(text: str, setting: str, otherwise: str | None = None) -> str:
    """``rlenv train --help``'s text for a SETTING_DEFAULTS field: ``text``, then the order its default is
    taken in, with the algorithms' own values read from their specs (no number is copied into prose)."""
    own = setting_default_help(setting)
    algorithms = f"the algorithm's ({own}), else " if own else ""
    fallback = otherwise or repr(SETTING_DEFAULTS[setting])
    return f"{text}; default: the task card's (rlenv envs), else {algorithms}{fallback}"


KL_COEF_HELP = setting_help("KL penalty weight (beta); 0 means no reference model is loaded", "kl_coef")
CLIP_RANGE_HELP = setting_help(
    "the clip's lower epsilon (and upper, unless --epsilon-high): ratios outside [1 - eps, 1 + eps_high] are "
    "clipped",
    "clip_range",
)
EPSILON_HIGH_HELP = setting_help(
    "group methods, reinforce_pp: the clip's upper epsilon (clip-higher); cispo: its weights are capped at "
    "1 + epsilon_high",
    "epsilon_high",
    otherwise="--clip-range",
)
DYNAMIC_SAMPLING_HELP = setting_help(
    "group methods: drop groups whose rewards are all equal and refill the batch from fresh prompts (DAPO)",
    "dynamic_sampling",
)
OVERLONG_BUFFER_HELP = setting_help(
    "group methods: DAPO's soft overlong penalty, falling linearly from 0 to -1 over this last share of the "
    "token budget (0: off)",
    "overlong_buffer",
)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (rlenv train)."""

    # ---- what to train, on what ---------------------------------------------------------------
    algo: Annotated[Algo, tyro.conf.arg(help=ALGO_HELP)] = "ppo"
    """the algorithm (agents/algorithms/; which to use: docs/algorithms.md); ``--help`` lists each one's
    summary from :data:`agents.algorithms.specs.SPECS`"""
    env: EnvSpec = "rlenv/PositiveReview-v0"
    """registered env id ('rlenv envs' lists them). From Python also an env factory: a callable with no
    arguments returning a TextGenEnv, e.g. lambda: gym.make("rlenv/TextGen-v0", reward_model=fn); the
    trainer runs batch_size copies of its setup as one vector env"""
    model: str | None = None
    """local model directory (also supplies the env's tokenizer); default: rlenv.DEFAULT_MODEL"""
    env_args: tuple[str, ...] = ()
    """extra env kwargs as key=value; values are parsed as JSON when they can be (e.g. max_prompt_tokens=16).
    A reward model with options: reward_model=learned 'reward_model_args={"path": "runs/rm"}'.
    From Python a dict works too: env_args={"max_prompt_tokens": 16}"""
    reward_funcs: tuple[str, ...] = ()
    """your reward function(s) by import path, MODULE:FN or path/to/file.py:FN, with TRL's signature
    fn(completions, **kwargs) -> list[float] (prompts= and dataset columns arrive as keywords); they
    replace the env's reward, and several are summed with --reward-weights"""
    reward_weights: tuple[float, ...] = ()
    """one weight per --reward-funcs entry; default 1.0 each"""

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
    temperature: float | None = None
    """sampling temperature of the rollouts (the learning logprobs are the tempered policy's, and so is
    the reference's KL); default: the task card's (ChatCalculator: 0.5), else 1.0"""
    top_k: int = 0
    """0 disables top-k"""
    top_p: float = 1.0
    """1.0 disables nucleus sampling"""

    # ---- optimisation -----------------------------------------------------------------------
    lr: float | None = None
    """Adam learning rate (no weight decay); default: the task card's (Arithmetic: 1e-5), else 1e-4, which suits
    the small embedded model; larger pretrained models want ~1e-5 or less"""
    max_grad_norm: float = 1.0
    """gradient-norm clip (0 disables)"""
    lora_rank: int = 0
    """> 0 trains LoRA adapters of this rank instead of all weights (needs peft)"""

    # ---- KL to the frozen reference ---------------------------------------------------------
    kl_coef: Annotated[float | None, tyro.conf.arg(help=KL_COEF_HELP)] = None
    """KL penalty weight (beta); 0 means no reference model is loaded. Default: ``KL_COEF_HELP`` (the
    task card's, else the algorithm's spec's, else SETTING_DEFAULTS')"""
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
    clip_range: Annotated[float | None, tyro.conf.arg(help=CLIP_RANGE_HELP)] = None
    """the clip's lower epsilon (and upper, unless --epsilon-high): ratios outside [1 - eps, 1 + eps_high] are
    clipped (gspo's default is a sequence ratio's, far smaller). Default: ``CLIP_RANGE_HELP``"""
    epsilon_high: Annotated[float | None, tyro.conf.arg(help=EPSILON_HIGH_HELP)] = None
    """group methods, reinforce_pp: the clip's upper epsilon (clip-higher); cispo: its weights are capped at
    1 + epsilon_high. Default: ``EPSILON_HIGH_HELP``"""
    scale_rewards: RewardScaling | None = None
    """group methods: divide centred rewards by the group's std, the batch's, or not at all (Dr. GRPO);
    default: group (grpo: none with --no-scale-advantages)"""
    mask_truncated_completions: bool = False
    """group methods, reinforce_pp, rebn: episodes cut at the token budget are left out of the loss (DAPO)"""
    top_entropy_quantile: float = 1.0
    """group methods, reinforce_pp: learn only from this top share of the minibatch's tokens by entropy
    (Wang et al., 2025 use 0.2); 1.0 = every token"""
    dynamic_sampling: Annotated[bool | None, tyro.conf.arg(help=DYNAMIC_SAMPLING_HELP)] = None
    """group methods: drop groups whose rewards are all equal and refill the batch from fresh prompts
    (DAPO). Default: ``DYNAMIC_SAMPLING_HELP``"""
    max_extra_rollouts: int = 4
    """dynamic sampling: at most this many extra rollout batches per update; groups still short are left
    out of the loss"""
    overlong_buffer: Annotated[float | None, tyro.conf.arg(help=OVERLONG_BUFFER_HELP)] = None
    """group methods: DAPO's soft overlong penalty, falling linearly from 0 to -1 over this last share of
    the token budget (0: off). Default: ``OVERLONG_BUFFER_HELP``"""
    sapo_tau_pos: float = 1.0
    """sapo: gate temperature for tokens with positive advantage (TRL's sapo_temperature_pos)"""
    sapo_tau_neg: float = 1.05
    """sapo: gate temperature for the others (TRL's sapo_temperature_neg)"""
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
    """preallocated: the rollout's KV cache is written in place, not concatenated per step (agents/training/kv_cache.py);
    dynamic: transformers' own cache (the same tokens and logprobs to float tolerance, slower)"""
    rollout_correction: Literal["none", "tis", "mis"] = "none"
    """with --rollout-precision bf16: weight each token's loss by pi_train / pi_sample (fp32 / bf16 logprobs),
    truncated at the cap (tis) or zeroed above it (mis); the mismatch KL is logged either way"""
    rollout_correction_level: Literal["token", "sequence"] = "token"
    """the correction's weight per token, or one per episode (the product of its tokens' ratios)"""
    rollout_correction_cap: float = 3.0
    """the largest weight the correction keeps (TRL's vllm_importance_sampling_clip_max)"""
    shared_prefill: bool = True
    """rollouts prefill each distinct prompt once (GRPO/RLOO groups) and skip left padding common to all rows;
    --no-shared-prefill prefills every row (the same tokens and logprobs to float tolerance)"""
    shared_scoring: bool = True
    """the update's scoring passes (policy and reference) run each distinct prompt once for its group and
    skip padding (agents/training/scoring.py); --no-shared-scoring scores every row in one padded forward (the same
    loss and gradients to float tolerance)"""
    threads: int | None = None
    """torch threads of this process (torch.set_num_threads); default: torch's own (one per core, or
    $OMP_NUM_THREADS when set) but, without $OMP_NUM_THREADS, at most one fewer than the machine's CPUs, so
    that one other busy process does not stall every parallel region (docs/speed.md "Thread policy"; on 2
    cores: 1 thread; --threads 2 is 1.7x faster on an idle machine)"""
    checkpoint_every: int = 10
    """save a checkpoint every K updates (and always at the end); 0 = only at the end"""
    keep_checkpoints: int = 2
    """how many recent checkpoints to keep on disk"""
    tensorboard: bool = False
    """also log to TensorBoard (needs the tensorboard package); the same as --report-to tensorboard"""
    report_to: tuple[Tracker, ...] = ()
    """trackers that receive the metrics, config and reward curve besides metrics.jsonl: tensorboard,
    wandb (the 'wandb' extra; WANDB_MODE=offline runs without an account), none"""
    eval_every: int = 0
    """every K updates, score the held-out split (agents.training.evaluation) and log eval/... keys; 0 = never"""
    eval_episodes: int = 64
    """held-out episodes per evaluation (fixed seeds, the same for every run)"""
    eval_greedy: bool = False
    """evaluate with greedy decoding instead of sampling"""
    task_card: bool = True
    """use the task's recommended settings (`rlenv envs` shows each task's card) where no flag is given"""
    setting_sources: Annotated[dict[str, str], tyro.conf.Suppress] = field(default_factory=dict)
    """filled in when the config is built: where each resolved setting (SETTING_DEFAULTS) came from"""

    def __post_init__(self) -> None:
        if not isinstance(self.env_args, tuple):  # a dict (or list) from Python: store key=JSON strings
            object.__setattr__(self, "env_args", env_args_tuple(self.env_args))
        # a file named relative to where the run started is saved absolute, so --resume works from anywhere
        object.__setattr__(self, "reward_funcs", tuple(map(absolute_file_spec, self.reward_funcs)))
        self._resolve_settings()
        self.validate()

    def _resolve_settings(self) -> None:
        """Fill each unset SETTING_DEFAULTS field from the task card, the algorithm or the base default,
        and record the source (a value already set — a flag, or a resumed run's — keeps its own)."""
        algorithm = algorithm_spec(self.algo)
        # an env factory (from Python) names no task, so it has no card
        card = task_card(self.env) if self.task_card and isinstance(self.env, str) else {}
        unknown = sorted(set(card) - set(SETTING_DEFAULTS))
        if unknown:
            raise ConfigError(
                f"the task card of {self.env} sets {unknown}, which a card cannot set; "
                f"a card may set {', '.join(SETTING_DEFAULTS)}"
            )
        sources = dict(self.setting_sources)
        for name, default in SETTING_DEFAULTS.items():
            if getattr(self, name) is not None:
                sources.setdefault(name, "flag")
                continue
            if name in card:
                value, source = card[name], f"task card ({self.env})"
            elif name in algorithm.setting_defaults:
                value, source = algorithm.setting_defaults[name], f"{self.algo} default"
            else:
                value, source = default, "rlenv default"
            object.__setattr__(self, name, value)
            sources[name] = source
        object.__setattr__(self, "setting_sources", sources)

    # ---- checks -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first contradiction and how to fix it."""
        algorithm = algorithm_spec(self.algo)
        if self.steps is None and self.time_budget is None:
            raise ConfigError(
                "no stopping rule: pass --steps N (updates) or --time-budget S (seconds), or both"
            )
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
        # filled in by _resolve_settings (flag, task card, algorithm default or rlenv default)
        assert self.lr is not None and self.kl_coef is not None and self.clip_range is not None
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
            raise ConfigError(
                f"--threads must be >= 1 (or left unset for rlenv's default), got {self.threads}"
            )
        if self.checkpoint_every < 0 or self.keep_checkpoints < 1:
            raise ConfigError("--checkpoint-every must be >= 0 and --keep-checkpoints >= 1")
        if self.epsilon_high is not None and not self.epsilon_high > 0:
            raise ConfigError(f"--epsilon-high must be > 0, got {self.epsilon_high}")
        if not 0 < self.top_entropy_quantile <= 1:
            raise ConfigError(f"--top-entropy-quantile must be in (0, 1], got {self.top_entropy_quantile}")
        if self.max_extra_rollouts < 0:
            raise ConfigError(f"--max-extra-rollouts must be >= 0, got {self.max_extra_rollouts}")
        assert self.overlong_buffer is not None  # resolved when the config was built
        if not 0 <= self.overlong_buffer < 1:
            raise ConfigError(
                f"--overlong-buffer is a share of the token budget in [0, 1), got {self.overlong_buffer}"
            )
        if not (self.sapo_tau_pos > 0 and self.sapo_tau_neg > 0):
            raise ConfigError("--sapo-tau-pos and --sapo-tau-neg must be > 0")
        if self.rollout_correction != "none":
            if not self.rollout_correction_cap > 1:
                raise ConfigError(f"--rollout-correction-cap must be > 1, got {self.rollout_correction_cap}")
            if self.rollout_precision != "bf16" or self.precision == "bf16":  # auto: fp32 on a CPU
                raise ConfigError(
                    "--rollout-correction corrects for rollouts sampled at a lower precision than the update; "
                    "it needs --rollout-precision bf16 with an fp32 update (--precision fp32, or auto on a CPU; "
                    "otherwise sampler and learner agree): "
                    "add those flags or drop --rollout-correction"
                )
        if self.temperature is None or not self.temperature > 0:
            raise ConfigError(f"--temperature must be > 0, got {self.temperature}")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                f"--top-k must be >= 0 and --top-p in (0, 1], got {self.top_k} and {self.top_p}"
            )
        self.parsed_env_args()  # malformed key=value pairs fail here too
        self._check_rewards_and_trackers()
        algorithm.check_config(self)

    def _check_rewards_and_trackers(self) -> None:
        if callable(self.env) and self.eval_every:
            raise ConfigError(
                "--eval-every scores a named task's held-out split; an env factory has none. Drop "
                "eval_every, or evaluate the checkpoints yourself"
            )
        if callable(self.env) and (self.env_args or self.reward_funcs):
            raise ConfigError(
                "env_args and reward_funcs configure an env id; an env factory builds its own env, so "
                "pass those options to gym.make inside the factory"
            )
        if self.reward_weights and len(self.reward_weights) != len(self.reward_funcs):
            raise ConfigError(
                f"--reward-weights has {len(self.reward_weights)} value(s) for {len(self.reward_funcs)} "
                "--reward-funcs; give one weight per function (or none: 1.0 each)"
            )
        if self.reward_funcs and "reward_model" in self.parsed_env_args():
            raise ConfigError("both --reward-funcs and --env-args reward_model=... name the reward; keep one")
        for spec in self.reward_funcs:
            if ":" not in spec:
                raise ConfigError(
                    f"--reward-funcs {spec!r} is not an import path; write MODULE:FN or path/to/file.py:FN"
                )
            try:  # a missing file, module or name fails now, before any model loads
                reward = reward_models.load_object(spec)
                if reward_models.is_reward_function(reward):
                    reward_models.check_reward_signature(reward)
            except reward_models.RewardModelError as err:
                raise ConfigError(f"--reward-funcs: {err}") from err
        if "none" in self.report_to and len(self.report_to) > 1:
            raise ConfigError(
                f"--report-to {' '.join(self.report_to)}: 'none' cannot be combined with a tracker"
            )
        if "wandb" in self.report_to and importlib.util.find_spec("wandb") is None:
            raise ConfigError("--report-to wandb needs the wandb package: pip install 'rlenv[wandb]'")

    # ---- derived values ---------------------------------------------------------------------
    @property
    def kl_kind(self) -> KLEstimator:
        """The KL estimator in use: the explicit one, else the algorithm's default."""
        return algorithm_spec(self.algo).kl_estimator_for(self)

    @property
    def epochs(self) -> int:
        """Passes over each rollout batch (``ppo_epochs``, else the algorithm's default)."""
        return algorithm_spec(self.algo).epochs_for(self)

    @property
    def minibatch(self) -> int:
        return self.minibatch_size or self.batch_size

    @property
    def out_dir(self) -> str:
        if self.out is not None:
            return self.out
        name = env_label(self.env).split("/")[-1].split("-v")[0].split(".")[-1]
        return f"runs/{self.algo}-{name}-seed{self.seed}"

    @property
    def trackers(self) -> tuple[str, ...]:
        """Where metrics go besides metrics.jsonl: --report-to, plus tensorboard for --tensorboard."""
        chosen = [t for t in self.report_to if t != "none"]
        if self.tensorboard and "tensorboard" not in chosen:
            chosen.append("tensorboard")
        return tuple(chosen)

    def reward_model_spec(self) -> str | dict[str, float] | None:
        """--reward-funcs as the env's ``reward_model``: one import path, or ``{path: weight}`` for a
        weighted sum; None keeps the env's own reward."""
        if not self.reward_funcs:
            return None
        weights = self.reward_weights or (1.0,) * len(self.reward_funcs)
        if len(self.reward_funcs) == 1 and weights[0] == 1.0:
            return self.reward_funcs[0]
        return dict(zip(self.reward_funcs, map(float, weights), strict=True))

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

    def env_kwargs(self) -> dict[str, Any]:
        """The env's keyword arguments: --env-args, with --reward-funcs as its ``reward_model``."""
        kwargs = self.parsed_env_args()
        if self.reward_funcs:
            kwargs["reward_model"] = self.reward_model_spec()
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps({**asdict(self), "env": env_label(self.env)}, default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown config fields {unknown}; this checkpoint was written by another version"
            )
        tuples: dict[str, tuple[Any, ...]] = {
            k: tuple(data[k])
            for k in ("env_args", "reward_funcs", "reward_weights", "report_to")
            if k in data
        }
        return cls(**{**data, **tuples})


def absolute_file_spec(spec: str) -> str:
    """``file.py:fn`` with the file's absolute path; ``module:fn`` unchanged."""
    location, sep, attr = spec.rpartition(":")
    if sep and location.endswith(".py"):
        return f"{os.path.abspath(os.path.expanduser(location))}:{attr}"
    return spec


def env_label(env: EnvSpec) -> str:
    """How a config names its env in files and messages: the id, or ``factory:module.name`` for a callable."""
    if isinstance(env, str):
        return env
    return f"factory:{getattr(env, '__module__', '?')}.{getattr(env, '__qualname__', type(env).__name__)}"


def env_args_tuple(env_args: Mapping[str, Any] | Sequence[str]) -> tuple[str, ...]:
    """``env_args`` given as a dict ``{key: JSON value}`` (or a list of ``key=value``) as the tuple of
    ``key=value`` strings the config stores, so that it prints, compares and saves like a CLI one."""
    if isinstance(env_args, str):
        raise ConfigError(
            f"env_args must be a dict or a sequence of key=value strings, got the string {env_args!r}"
        )
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
                "list, dict) so that a run can be saved and resumed. Name a reward function by import path "
                "(reward_funcs=['my_module:fn'] or 'file.py:fn'), or pass an env factory as env= "
                "(env=lambda: gym.make(id, reward_model=fn))"
            ) from None
    return tuple(items)


def config_differences(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """Lines ``field: saved -> current`` for every field that matters to the learning curve."""
    diffs = []
    for f in fields(TrainConfig):
        if f.name in RESUMABLE_FIELDS:
            continue
        a, b = getattr(saved, f.name), getattr(current, f.name)
        if f.name == "env":  # a factory is saved by name; the same name is the same env
            a, b = env_label(a), env_label(b)
        if a != b:
            diffs.append(f"{f.name}: {a!r} (checkpoint) != {b!r} (now)")
    return diffs
