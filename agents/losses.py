"""Policy-gradient losses over (B, T) response tokens, with the masking and aggregation in one place.

Every loss takes a (B, T) mask (1 on generated tokens). Masked positions go through ``torch.where``,
never a multiply, so a NaN or inf in padding (e.g. a -inf logprob of a pad token) cannot leak in.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

LossAggregation = Literal["token-mean", "sequence-mean", "sequence-sum"]


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    zero = torch.zeros_like(x)
    x = torch.where(mask.bool(), x, zero)
    return x.sum() if dim is None else x.sum(dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of x over entries where mask is 1 (over all of them, or along ``dim``); 0 if none."""
    count = mask.to(x.dtype).sum() if dim is None else mask.to(x.dtype).sum(dim)
    return masked_sum(x, mask, dim) / count.clamp_min(1)


def aggregate(per_token: Tensor, mask: Tensor, mode: LossAggregation = "token-mean") -> Tensor:
    """Reduce a (B, T) per-token loss to a scalar.

    - ``token-mean``: mean over every valid token of the batch (long answers weigh more; PPO, DAPO).
    - ``sequence-mean``: mean over tokens within each sequence, then over sequences (GRPO paper).
    - ``sequence-sum``: sum over each sequence's tokens, then mean over sequences (REINFORCE's
      log-likelihood of the whole completion).
    """
    if mode == "token-mean":
        return masked_mean(per_token, mask)
    if mode == "sequence-mean":
        return masked_mean(per_token, mask, dim=1).mean()
    if mode == "sequence-sum":
        return masked_sum(per_token, mask, dim=1).mean()
    raise ValueError(f"unknown aggregation {mode!r}; use 'token-mean', 'sequence-mean' or 'sequence-sum'")


def _per_token(advantages: Tensor, like: Tensor) -> Tensor:
    """Sequence-level advantages (B,) broadcast over tokens; (B, T) pass through."""
    return advantages.unsqueeze(1).expand_as(like) if advantages.dim() == 1 else advantages


def policy_gradient_loss(
    logprobs: Tensor, advantages: Tensor, mask: Tensor, mode: LossAggregation = "sequence-sum"
) -> Tensor:
    """REINFORCE: -A * log pi(a|s), aggregated. ``advantages`` is (B,) or (B, T) and held constant."""
    return aggregate(-_per_token(advantages.detach(), logprobs) * logprobs, mask, mode)


def clipped_surrogate_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_range: float,
    mode: LossAggregation = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped objective as a loss: max(-A r, -A clip(r, 1-eps, 1+eps)), r = pi / pi_old.

    ``logprobs`` (B, T) carry gradients; ``old_logprobs`` (B, T) and ``advantages`` (B,) or (B, T)
    are constants. Stats (detached 0-dim tensors): ``clipfrac`` — share of valid tokens whose ratio
    left [1 - eps, 1 + eps], whatever the advantage's sign (OpenAI baselines' and TRL's definition, so
    the numbers compare across libraries); ``approx_kl`` — k3 estimate of KL(pi_old || pi) over valid
    tokens; ``ratio_mean``.
    """
    advantages = _per_token(advantages.detach(), logprobs)
    log_ratio = logprobs - old_logprobs.detach()
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = aggregate(torch.maximum(unclipped, clipped), mask, mode)
    with torch.no_grad():
        stats = {
            "clipfrac": masked_mean(((ratio - 1.0).abs() > clip_range).float(), mask),
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask),
            "ratio_mean": masked_mean(ratio, mask),
        }
    return loss, stats


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, *, clip_range: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's value loss: 0.5 * max((V - R)^2, (V_clipped - R)^2), token mean.

    V_clipped keeps the new value within ``clip_range`` of the rollout's value, so one update
    cannot move the critic far. Stats: ``vf_clipfrac`` (share where the clipped term is larger),
    ``value_mean``.
    """
    old_values, returns = old_values.detach(), returns.detach()
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    err = (values - returns) ** 2
    err_clipped = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(err, err_clipped), mask)
    with torch.no_grad():
        stats = {
            "vf_clipfrac": masked_mean((err_clipped > err).float(), mask),
            "value_mean": masked_mean(values, mask),
        }
    return loss, stats


def entropy_from_logprobs(logprobs: Tensor) -> Tensor:
    """Entropy (…,) of a categorical given as log-probabilities (…, V); -inf entries contribute 0."""
    p = logprobs.exp()
    return -torch.where(p > 0, p * logprobs, torch.zeros_like(p)).sum(-1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy (…,) of softmax(logits (…, V)); -inf logits (filtered tokens) contribute 0."""
    return entropy_from_logprobs(torch.log_softmax(logits.float(), dim=-1))
