"""Reward models: batched scorers with TRL's reward-function signature, a registry, and training.

Built-ins are created by name (``reward_models.make("vader")``) and imported lazily; the heavier
classes (learned model, training) live in their own modules and are importable from here too.
"""

from typing import TYPE_CHECKING

from reward_models.base import (
    RewardFunctionError,
    RewardModel,
    RewardModelError,
    ScoredBatch,
    check_reward_signature,
    reward_name,
    score,
)
from reward_models.combinators import Clip, RunningNormalize, WeightedSum
from reward_models.imports import is_reward_function, load_object
from reward_models.lazy import lazy_getattr
from reward_models.registry import UnknownRewardModelError, available, describe, make, register

if TYPE_CHECKING:  # the lazy names below, for type checkers and the API reference
    from reward_models.learned import ScalarRewardModel
    from reward_models.training import (
        RMProgress,
        RMTrainConfig,
        RMTrainError,
        RMTrainResult,
        train_reward_model,
    )

# Heavier names (torch/transformers) load on first access, keeping `import reward_models` light.
_LAZY = {
    "ScalarRewardModel": "reward_models.learned",
    "RMTrainConfig": "reward_models.training",
    "RMTrainResult": "reward_models.training",
    "RMProgress": "reward_models.training",
    "RMTrainError": "reward_models.training",
    "train_reward_model": "reward_models.training",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "Clip",
    "RMProgress",
    "RMTrainConfig",
    "RMTrainError",
    "RMTrainResult",
    "ScalarRewardModel",
    "train_reward_model",
    "RewardFunctionError",
    "RewardModel",
    "RewardModelError",
    "RunningNormalize",
    "ScoredBatch",
    "UnknownRewardModelError",
    "WeightedSum",
    "available",
    "check_reward_signature",
    "describe",
    "is_reward_function",
    "load_object",
    "make",
    "register",
    "reward_name",
    "score",
]
