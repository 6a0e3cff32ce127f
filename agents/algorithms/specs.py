"""What each ``--algo`` declares, apart from its torch code: the menu the command line and the config read.

:class:`AlgorithmSpec` holds an algorithm's name, its one-line help, the defaults it overrides, the
optional flags it honours and its constraints; :meth:`AlgorithmSpec.check_config` refuses what it
cannot honour. :class:`~agents.training.config.TrainConfig`, task-card resolution and ``rlenv train
--help`` read only this module, which imports no torch, so a bad flag answers before torch loads.
Each algorithm class points at its spec (``spec = specs.GRPO``) and takes every declaration from it,
so each default has one source; :mod:`agents.algorithms.registry` pairs the names with the classes.

    value_head            needs a value head on the policy's trunk (PPO)
    uses_groups           draws ``group_size`` completions per prompt (GRPO, RLOO)
    default_epochs        passes over each batch when ``--ppo-epochs`` is not given
    max_epochs            the most passes it accepts (None: any)
    default_kl_estimator  k1 / k2 / k3 when ``--kl-estimator`` is not given
    kl_in_loss            the KL term is differentiated (GRPO), so k1 is refused (kl.py says why)
    supports_kl_target    accepts the adaptive KL controller (``--kl-target``)
    default_aggregation   how per-token losses become a scalar (losses.aggregate)
    setting_defaults      its own defaults of config.SETTING_DEFAULTS fields (e.g. DAPO's kl_coef 0);
                          a task card's value wins over them, a flag over both
    options               the optional flags it honours (OPTION_FIELDS); any other given is refused

A variant is its parent's spec with what differs replaced (``replace(GRPO, name="dapo", ...)``), as
its class is its parent's class with one piece replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from agents.errors import ConfigError
from agents.training.choices import KLEstimator, LossAggregation

if TYPE_CHECKING:
    from agents.training.config import TrainConfig

GROUP_OPTION_FIELDS: tuple[str, ...] = (
    "epsilon_high",
    "scale_rewards",
    "mask_truncated_completions",
    "top_entropy_quantile",
    "dynamic_sampling",
    "max_extra_rollouts",
    "overlong_buffer",
)
"""the options GRPO and the menu built on it share (``GROUP_OPTIONS``)"""
OPTION_FIELDS: tuple[str, ...] = (*GROUP_OPTION_FIELDS, "sapo_tau_pos", "sapo_tau_neg")
"""TrainConfig fields only some algorithms use: giving one to another algorithm is an error, not a no-op"""


def given(config: TrainConfig, name: str) -> bool:
    """Whether the user set ``name`` (a flag or an argument), as opposed to a default or a task card."""
    if name in config.setting_sources:
        return config.setting_sources[name] == "flag"
    default = next(f.default for f in fields(config) if f.name == name)
    return getattr(config, name) != default


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm's declarations (the module docstring says what each field means)."""

    name: str
    summary: str
    """one line for ``rlenv train --help``'s ``--algo`` menu"""
    value_head: bool = False
    uses_groups: bool = False
    default_epochs: int = 1
    max_epochs: int | None = None
    default_kl_estimator: KLEstimator = "k1"
    kl_in_loss: bool = False
    supports_kl_target: bool = False
    default_aggregation: LossAggregation = "token-mean"
    setting_defaults: dict[str, Any] = field(default_factory=dict)
    options: frozenset[str] = frozenset()

    def check_config(self, config: TrainConfig) -> None:
        """Raise :class:`ConfigError` for settings this algorithm cannot honour (the message names the fix)."""
        for name in OPTION_FIELDS:
            if given(config, name) and name not in self.options:
                users = [spec.name for spec in SPECS.values() if name in spec.options]
                raise ConfigError(
                    f"--{name.replace('_', '-')} does not apply to {self.name}; drop it, or use an "
                    f"algorithm that uses it: {', '.join(users)}"
                )
        if self.uses_groups:
            if config.group_size < 2:
                raise ConfigError(
                    f"{self.name} compares completions of the same prompt, so --group-size must be >= 2 "
                    f"(got {config.group_size}); e.g. --group-size 4"
                )
            if config.batch_size % config.group_size:
                lower = config.batch_size - config.batch_size % config.group_size
                raise ConfigError(
                    f"--batch-size {config.batch_size} is not divisible by --group-size {config.group_size}; "
                    f"use --batch-size {lower or config.group_size} or {lower + config.group_size}"
                )
        if self.max_epochs is not None and self.epochs_for(config) > self.max_epochs:
            raise ConfigError(
                f"{self.name} makes {self.max_epochs} on-policy pass per batch; drop --ppo-epochs, or use --algo "
                "grpo/ppo to reuse batches with a clipped ratio"
            )
        if config.kl_target is not None and not self.supports_kl_target:
            raise ConfigError(
                f"--kl-target (adaptive KL) is not supported by {self.name}; drop it or use --algo ppo"
            )
        if self.kl_in_loss and (config.kl_coef or 0.0) > 0 and self.kl_estimator_for(config) == "k1":
            raise ConfigError(
                f"{self.name} puts the KL in its loss, where k1's gradient is zero in expectation (it would not pull "
                "towards the reference); use --kl-estimator k3 (the default) or k2"
            )

    def epochs_for(self, config: TrainConfig) -> int:
        return config.ppo_epochs if config.ppo_epochs is not None else self.default_epochs

    def kl_estimator_for(self, config: TrainConfig) -> KLEstimator:
        return config.kl_estimator or self.default_kl_estimator

    def needs_reference(self, config: TrainConfig) -> bool:
        """A frozen reference is loaded only when some KL term uses it: a KL penalty, or the adaptive
        controller's target (which only ``supports_kl_target`` algorithms accept)."""
        return (config.kl_coef or 0.0) > 0 or config.kl_target is not None  # kl_coef None: not yet resolved


REINFORCE = AlgorithmSpec(
    "reinforce", "REINFORCE, batch-mean baseline", max_epochs=1, default_aggregation="sequence-sum"
)
PPO = AlgorithmSpec(
    "ppo",
    "PPO with a value head and GAE (RLHF details)",
    value_head=True,
    default_epochs=4,
    supports_kl_target=True,
)
RLOO = replace(REINFORCE, name="rloo", summary="REINFORCE leave-one-out", uses_groups=True)
REBN = replace(
    REINFORCE,
    name="rebn",
    summary="REINFORCE on batch-normalised per-turn returns (multi-turn)",
    setting_defaults={"kl_coef": 0.0},
    options=frozenset({"mask_truncated_completions"}),
)

GROUP_OPTIONS = frozenset(GROUP_OPTION_FIELDS)

GRPO = AlgorithmSpec(
    "grpo",
    "group-normalised advantages, clipped ratio, KL in the loss",
    uses_groups=True,
    default_kl_estimator="k3",
    kl_in_loss=True,
    options=GROUP_OPTIONS,
)
DAPO = replace(
    GRPO,
    name="dapo",
    summary="GRPO + clip-higher, dynamic sampling, token mean, overlong penalty, no KL",
    setting_defaults={"kl_coef": 0.0, "epsilon_high": 0.28, "dynamic_sampling": True, "overlong_buffer": 0.2},
)
GSPO = replace(
    GRPO,
    name="gspo",
    summary="one clipped length-normalised ratio per sequence",
    default_aggregation="sequence-mean",
    setting_defaults={"kl_coef": 0.0, "clip_range": 3e-4, "epsilon_high": 4e-4},
)
CISPO = replace(
    GRPO,
    name="cispo",
    summary="capped, stop-gradient IS weight on every token",
    setting_defaults={"kl_coef": 0.0, "epsilon_high": 4.0},
)
SAPO = replace(
    GRPO,
    name="sapo",
    summary="a soft sigmoid gate in place of the clip",
    default_aggregation="sequence-mean",
    setting_defaults={"kl_coef": 0.0},
    options=(GROUP_OPTIONS - {"epsilon_high"}) | {"sapo_tau_pos", "sapo_tau_neg"},
)
REINFORCE_PP = replace(
    GRPO,
    name="reinforce_pp",
    summary="PPO clip, KL in the reward, batch-normalised returns",
    uses_groups=False,
    kl_in_loss=False,
    default_kl_estimator="k1",
    options=frozenset({"epsilon_high", "mask_truncated_completions", "top_entropy_quantile"}),
)

SPECS: dict[str, AlgorithmSpec] = {
    spec.name: spec for spec in (REINFORCE, PPO, RLOO, GRPO, DAPO, GSPO, CISPO, SAPO, REINFORCE_PP, REBN)
}
"""``--algo`` name -> its declarations, in the menu's order"""
ALGOS: tuple[str, ...] = tuple(SPECS)
Algo = Literal[ALGOS]  # type: ignore[valid-type]  # the --algo choices, built from the specs


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The declarations of the algorithm registered as ``name`` (``--algo``)."""
    if name not in SPECS:
        raise ConfigError(f"unknown algo {name!r}; choose one of {', '.join(SPECS)} (--algo)")
    return SPECS[name]


def algo_help() -> str:
    """``--algo``'s help: each algorithm's one-line summary."""
    menu = " | ".join(f"{spec.name}: {spec.summary}" for spec in SPECS.values())
    return f"the algorithm (agents/algorithms/; which to use: docs/algorithms.md): {menu}"


def setting_default_help(setting: str) -> str:
    """The algorithms that override SETTING_DEFAULTS field ``setting``, grouped by value, e.g.
    ``"dapo, gspo 0.0; cispo 4.0"``; empty when none does."""
    by_value: dict[str, list[str]] = {}
    for spec in SPECS.values():
        if setting in spec.setting_defaults:
            by_value.setdefault(repr(spec.setting_defaults[setting]), []).append(spec.name)
    return "; ".join(f"{', '.join(names)} {value}" for value, names in by_value.items())
