"""Reward models: batched scorers with TRL's reward-function signature, a registry, and training."""

from reward_models.base import RewardModel, RewardModelError, ScoredBatch, reward_name, score

__all__ = ["RewardModel", "RewardModelError", "ScoredBatch", "reward_name", "score"]
