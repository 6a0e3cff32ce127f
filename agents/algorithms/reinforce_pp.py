"""REINFORCE++ (Hu, 2025, "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language
Models"): PPO's clipped update without a critic, the KL to the reference in the reward, and advantages
normalised over the whole batch instead of per prompt group:

    r_t   = -beta * KL_t  (+ R(x, y) on the last token),      KL_t = log π_old(y_t) - log π_ref(y_t)
    G_t   = sum_{s >= t} gamma^(s - t) r_s                    (gamma = --gamma, 1 by default)
    A_t   = (G_t - mean(G)) / std(G)                          over every valid token of the batch
    loss  = token-mean( max(-A_t r_t, -A_t clip(r_t, 1 - eps, 1 + eps_high)) )

Under data parallel the mean and std are the global batch's (every rank's valid tokens, weighted by
count: ranks hold different numbers of them), as in one process. Per-turn rewards of multi-turn
episodes land on their turn's last token, so G_t counts only the rewards still to come.
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.base import per_token_rewards
from agents.algorithms.grpo import GRPO
from agents.training.advantages import discounted_returns, whiten
from agents.training.kl import kl_estimate
from agents.training.rollout import RolloutBatch


class ReinforcePP(GRPO):
    spec = specs.REINFORCE_PP

    def advantages(self, batch: RolloutBatch, rewards: Tensor, ref_logprobs: Tensor | None) -> Tensor:
        """(B, T) batch-normalised returns of the per-token rewards, KL penalty included."""
        mask = self.loss_mask(batch)
        token_rewards = per_token_rewards(batch, rewards)  # (B, T)
        if ref_logprobs is not None:
            kl = kl_estimate(self.rollout_logprobs(batch), ref_logprobs, self.kl_kind)  # (B, T)
            token_rewards = token_rewards - self.kl_controller.value * torch.where(
                mask.bool(), kl, torch.zeros_like(kl)
            )
        return whiten(
            discounted_returns(token_rewards, mask, gamma=self.config.gamma), mask, ranks=self.ranks
        )
