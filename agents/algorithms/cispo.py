"""CISPO (MiniMax, 2025, "MiniMax-M1: Scaling Test-Time Compute Efficiently with Lightning Attention"):
clip the importance-sampling *weight*, not the update, so every token keeps its gradient:

    J = E[ 1 / sum_i |o_i|  sum_i sum_t sg(min(r_it, 1 + eps_high)) A_i log π_θ(o_it) ]

sg is stop-gradient: the capped ratio is a constant weight on REINFORCE's A log π. PPO's clip instead
zeroes the gradient of the tokens it clips (often the rare, high-ratio "fork" tokens of reasoning).
No lower bound (the paper sets eps_low large). The cap defaults to 5 (``--epsilon-high 4.0``; TRL's
``loss_type="cispo"`` with ``epsilon_high=5.0``, ScaleRL's recommendation). Group advantages, token
mean, no KL by default.
"""

from __future__ import annotations

from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.grpo import GRPO
from agents.training.losses import capped_weight_policy_gradient


class CISPO(GRPO):
    spec = specs.CISPO

    @property
    def clip_low(self) -> float:
        return 1.0  # no lower bound on the weight (for the logged clip fraction)

    def surrogate(
        self, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        return capped_weight_policy_gradient(logprobs, old_logprobs, advantages, cap=1.0 + self.clip_high)
