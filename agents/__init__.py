"""agents: language-model policies, env-driven rollouts and the policy-gradient algorithms over them."""

from agents.advantages import gae_advantages, group_advantages, leave_one_out_advantages, whiten
from agents.kl import AdaptiveKLController, FixedKLController, kl_estimate
from agents.losses import (
    aggregate,
    clipped_surrogate_loss,
    clipped_value_loss,
    entropy_from_logits,
    masked_mean,
    policy_gradient_loss,
)
from agents.policy import LMPolicy, SamplingConfig, SequenceScores
from agents.rollout import RolloutBatch, collect_rollouts

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
