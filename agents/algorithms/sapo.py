"""SAPO (Gao et al., 2025, "Soft Adaptive Policy Optimization"): a smooth, temperature-controlled gate in
place of the hard clip:

    J = E[ 1/G sum_i 1/|y_i| sum_t f_it(r_it) A_i ],   f(r) = sigmoid(tau (r - 1)) * 4 / tau

f'(1) = 1, so on-policy SAPO is the plain policy gradient; as r leaves 1 the gate's slope
sigmoid(z)(1 - sigmoid(z)) * 4 fades smoothly instead of dropping to 0 at 1 ± eps. tau = tau_pos
(1.0) for tokens with A > 0 and tau_neg (1.05) otherwise: negative advantages, which spread
probability over the whole vocabulary, are damped faster (TRL's ``sapo_temperature_pos/neg``).
Group advantages, the loss a mean over sequences of per-token means (TRL's), no KL by default.
"""

from __future__ import annotations

from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.grpo import GRPO
from agents.training.losses import soft_gated_surrogate


class SAPO(GRPO):
    spec = specs.SAPO

    def surrogate(
        self, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        return soft_gated_surrogate(
            logprobs,
            old_logprobs,
            advantages,
            tau_pos=self.config.sapo_tau_pos,
            tau_neg=self.config.sapo_tau_neg,
        )
