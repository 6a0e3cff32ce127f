"""agents: language-model policies, env-driven rollouts and the policy-gradient algorithms over them.

The names below load on first access, so that ``import agents.cli`` (the ``rlenv`` command) does not
import torch and transformers before it knows the command needs them.
"""

from reward_models.lazy import lazy_getattr

_LAZY = {
    "gae_advantages": "agents.advantages",
    "group_advantages": "agents.advantages",
    "leave_one_out_advantages": "agents.advantages",
    "whiten": "agents.advantages",
    "AdaptiveKLController": "agents.kl",
    "FixedKLController": "agents.kl",
    "kl_estimate": "agents.kl",
    "aggregate": "agents.losses",
    "clipped_surrogate_loss": "agents.losses",
    "clipped_value_loss": "agents.losses",
    "entropy_from_logits": "agents.losses",
    "masked_mean": "agents.losses",
    "policy_gradient_loss": "agents.losses",
    "LMPolicy": "agents.policy",
    "SamplingConfig": "agents.policy",
    "SequenceScores": "agents.policy",
    "RolloutBatch": "agents.rollout",
    "collect_rollouts": "agents.rollout",
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
