"""agents: language-model policies, env-driven rollouts and the policy-gradient algorithms over them.

Grouped by concern:

- :mod:`agents.training`: the policy (:class:`LMPolicy`), rollouts, the shared maths (advantages,
  losses, KL), the config, the trainer, checkpoints, data parallelism, held-out evaluation;
- :mod:`agents.algorithms`: the algorithms, one file each over a base that holds the registry;
- :mod:`agents.benchmarking`: ``rlenv bench`` grids, their statistics and reports;
- :mod:`agents.bridges`: Stable-Baselines3 and sb3-contrib's MaskablePPO;
- :mod:`agents.cli` (with ``cli_args`` and ``config_files``): the ``rlenv`` command line, at the top.

The flat paths of 0.1 (``agents.trainer``, ``agents.config``, ``agents.sb3`` ...) still import the
same modules (:mod:`agents.compat`). The names below load on first access, so that ``import
agents.cli`` (the ``rlenv`` command) does not import torch and transformers before it knows the
command needs them.
"""

from typing import TYPE_CHECKING

from agents import compat
from reward_models.lazy import lazy_getattr

compat.install()

if TYPE_CHECKING:  # the lazy names below, for type checkers and the API reference
    from agents.training.advantages import gae_advantages, group_advantages, leave_one_out_advantages, whiten
    from agents.training.kl import AdaptiveKLController, FixedKLController, kl_estimate
    from agents.training.losses import (
        aggregate,
        clipped_surrogate_loss,
        clipped_value_loss,
        entropy_from_logits,
        masked_mean,
        policy_gradient_loss,
    )
    from agents.training.policy import LMPolicy, SamplingConfig, SequenceScores
    from agents.training.rollout import RolloutBatch, collect_rollouts

_LAZY = {
    "gae_advantages": "agents.training.advantages",
    "group_advantages": "agents.training.advantages",
    "leave_one_out_advantages": "agents.training.advantages",
    "whiten": "agents.training.advantages",
    "AdaptiveKLController": "agents.training.kl",
    "FixedKLController": "agents.training.kl",
    "kl_estimate": "agents.training.kl",
    "aggregate": "agents.training.losses",
    "clipped_surrogate_loss": "agents.training.losses",
    "clipped_value_loss": "agents.training.losses",
    "entropy_from_logits": "agents.training.losses",
    "masked_mean": "agents.training.losses",
    "policy_gradient_loss": "agents.training.losses",
    "LMPolicy": "agents.training.policy",
    "SamplingConfig": "agents.training.policy",
    "SequenceScores": "agents.training.policy",
    "RolloutBatch": "agents.training.rollout",
    "collect_rollouts": "agents.training.rollout",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "AdaptiveKLController",
    "FixedKLController",
    "LMPolicy",
    "RolloutBatch",
    "SamplingConfig",
    "SequenceScores",
    "aggregate",
    "clipped_surrogate_loss",
    "clipped_value_loss",
    "collect_rollouts",
    "entropy_from_logits",
    "gae_advantages",
    "group_advantages",
    "kl_estimate",
    "leave_one_out_advantages",
    "masked_mean",
    "policy_gradient_loss",
    "whiten",
]
