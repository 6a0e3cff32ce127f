"""GSPO (Zheng et al., 2025, "Group Sequence Policy Optimization"): the importance ratio, and its clip, per
sequence instead of per token:

    s_i(θ) = (π_θ(y_i | x) / π_old(y_i | x)) ^ (1 / |y_i|) = exp( mean_t log(π_θ(y_it) / π_old(y_it)) )
    J = E[ 1/G sum_i min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i) ]

with GRPO's group advantages A_i. The length normalisation keeps s_i near 1 whatever the length, so
the clip range is tiny: eps_low = 3e-4, eps_high = 4e-4 (the paper's; TRL's GSPO recipe). No KL term
by default. The loss is a mean over sequences (``sequence-mean`` of a per-sequence loss).
"""

from __future__ import annotations

from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.grpo import GRPO
from agents.training.losses import sequence_clipped_surrogate


class GSPO(GRPO):
    spec = specs.GSPO

    def surrogate(
        self, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        return sequence_clipped_surrogate(
            logprobs, old_logprobs, advantages, mask, clip_low=self.clip_low, clip_high=self.clip_high
        )
