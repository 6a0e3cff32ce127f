"""KL to the reference policy: per-token estimators and the coefficient controllers.

Estimators follow Schulman's note "Approximating KL Divergence": with tokens sampled from pi and
log r = log ref - log pi, KL(pi || ref) is estimated per token by k1 = -log r (unbiased, can be
negative), k2 = (log r)^2 / 2 (biased, low variance), k3 = (r - 1) - log r (unbiased, >= 0).

As a *value* (a reward penalty, PPO/REINFORCE/RLOO) all three estimate KL(pi || ref). As a *loss*
differentiated through pi (GRPO puts beta * KL in its loss) they differ, taking the expectation over
the sampled tokens and not differentiating the sampling itself:

- k1: grad = grad log pi, whose expectation under pi is 0 — no pull towards the reference at all,
  only noise; GRPO refuses it.
- k2: grad = (log pi - log ref) grad log pi, in expectation exactly grad KL(pi || ref).
- k3: grad = (1 - ref / pi) grad log pi, in expectation -E_ref[grad log pi] = grad KL(ref || pi):
  the *forward* KL's gradient, which also pulls towards the reference (GRPO's default, as in the
  DeepSeekMath paper).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from agents.training.choices import KLEstimator


def kl_estimate(logprobs: Tensor, ref_logprobs: Tensor, kind: KLEstimator = "k1") -> Tensor:
    """Per-token estimate (B, T) of KL(pi || ref) from the sampled tokens' logprobs (B, T)."""
    log_ratio = logprobs - ref_logprobs  # log pi - log ref
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        # expm1 keeps precision when the two policies are close (log_ratio near 0)
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; use 'k1', 'k2' or 'k3'")


class FixedKLController:
    """A constant KL coefficient; same interface as :class:`AdaptiveKLController`."""

    def __init__(self, coef: float) -> None:
        if coef < 0:
            raise ValueError(f"kl coefficient must be >= 0, got {coef}")
        self.value = float(coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op: the coefficient is fixed."""

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Ziegler et al. (2019): steer the KL coefficient so the measured KL tracks ``target``.

    After each batch of ``n_steps`` episodes: e = clip(KL / target - 1, -0.2, 0.2) and
    coef *= 1 + e * n_steps / horizon. The clip keeps one noisy KL reading from swinging the
    coefficient; ``horizon`` (in episodes) sets how fast it adapts.
    """

    def __init__(self, init_coef: float, target: float, horizon: int, max_error: float = 0.2) -> None:
        if init_coef <= 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                f"AdaptiveKLController needs init_coef, target and horizon > 0, got {init_coef}, {target}, {horizon}"
            )
        self.value = float(init_coef)
        self.target = float(target)
        self.horizon = int(horizon)
        self.max_error = float(max_error)

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(float(current_kl) / self.target - 1.0, -self.max_error), self.max_error)
        self.value *= 1.0 + error * n_steps / self.horizon

    def state_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "target": self.target,
            "horizon": self.horizon,
            "max_error": self.max_error,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])
        self.target = float(state.get("target", self.target))
        self.horizon = int(state.get("horizon", self.horizon))
        self.max_error = float(state.get("max_error", self.max_error))
