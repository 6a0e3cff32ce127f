"""RLOO (REINFORCE Leave-One-Out; Ahmadian et al., 2024): REINFORCE whose baseline is the group.

Each prompt is answered G times (``envs.reset(options={"group_size": G})``); completion i's baseline
is the mean reward of the *other* G - 1 completions of its prompt, which is unbiased (it does not
depend on x_i) and needs no value network:

    A_i = R'_i - (Σ_{j≠i} R'_j) / (G - 1),     R' = R - kl_coef * Σ_t KL_t   (sequence-level penalty)

optionally divided by the batch std (``scale_advantages``; of the global batch under data parallel). Everything else — one on-policy step
per batch, the ``-A · Σ log π`` loss — is REINFORCE's, so this file only swaps the baseline.
"""

from __future__ import annotations

from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.reinforce import Reinforce
from agents.training.advantages import leave_one_out_advantages


class RLOO(Reinforce):
    spec = specs.RLOO

    def advantages(self, shaped_rewards: Tensor) -> Tensor:
        advantages = leave_one_out_advantages(shaped_rewards, self.config.group_size)  # (B,)
        if self.config.scale_advantages and advantages.numel() * self.ranks.world_size > 1:
            advantages = advantages / (self.ranks.std(advantages) + 1e-8)  # the global batch's std
        return advantages
