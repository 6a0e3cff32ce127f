"""ReBN (Liu et al., 2025, "GEM: A Gym for Agentic LLMs"): REINFORCE with Return Batch Normalisation — the
natural algorithm for multi-turn episodes with per-turn rewards.

Each turn k of an episode (a run of the policy's tokens between the env's replies) gets the
discounted return of the rewards from that turn on, normalised over every turn of the batch:

    G_k   = sum_{j >= k} gamma^(j - k) R_j                   (gamma = --gamma, 1 by default)
    A_k   = (G_k - mean(G)) / (std(G) + 1e-8)                 over all turns of the (global) batch
    loss  = - mean over episodes of  sum_k A_k sum_{t in turn k} log π(y_t)

On a single-turn task every episode is one turn and ReBN is REINFORCE with the rewards standardised
over the batch. No KL by default (GEM uses none); with ``--kl-coef`` the episode's summed KL
penalty is part of its last turn's reward. One on-policy step per batch, as REINFORCE.
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.base import per_token_rewards
from agents.algorithms.reinforce import Reinforce
from agents.training.advantages import turn_returns
from agents.training.rollout import RolloutBatch


class ReBN(Reinforce):
    spec = specs.REBN

    def token_advantages(self, batch: RolloutBatch, shaped_rewards: Tensor) -> Tensor:
        """(B, T) each token's turn's batch-normalised return."""
        mask = self.loss_mask(batch)
        returns, turn_of_token = turn_returns(
            per_token_rewards(batch, shaped_rewards), mask, gamma=self.config.gamma
        )
        if returns.numel() > 1 or self.ranks.distributed:  # over every turn of the global batch
            mean, std = self.ranks.mean_and_std(returns)
            returns = (returns - mean) / (std + 1e-8)
        advantages = returns[turn_of_token.clamp_min(0)]  # (B, T)
        return torch.where(turn_of_token >= 0, advantages, torch.zeros_like(advantages))
