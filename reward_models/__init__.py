"""Reward models: batched scorers with TRL's reward-function signature, a registry, and training.

Built-ins are created by name (``reward_models.make("vader")``) and imported lazily; the heavier
classes (learned model, training) live in their own modules and are importable from here too.
"""

from reward_models.base import RewardModel, RewardModelError, ScoredBatch, reward_name, score
from reward_models.combinators import Clip, RunningNormalize, WeightedSum
from reward_models.registry import UnknownRewardModelError, available, describe, make, register

__all__ = [
    "Clip",
    "RewardModel",
    "RewardModelError",
    "RunningNormalize",
    "ScoredBatch",
    "UnknownRewardModelError",
    "WeightedSum",
    "available",
    "describe",
    "make",
    "register",
    "reward_name",
    "score",
]
