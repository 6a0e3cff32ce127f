"""Policy-gradient losses over (B, T) response tokens, with the masking and aggregation in one place.

Every loss takes a (B, T) mask (1 on generated tokens). Masked positions go through ``torch.where``,
never a multiply, so a NaN or inf in padding (e.g. a -inf logprob of a pad token) cannot leak in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from agents.training.choices import LossAggregation

if TYPE_CHECKING:
    from agents.training.distributed import Ranks


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
    """Sequence-level advantages (B,) broadcast over tokens of ``like`` (B, T); the same shape passes through."""
    return advantages.unsqueeze(1).expand_as(like) if advantages.dim() < like.dim() else advantages


def policy_gradient_loss(
    logprobs: Tensor, advantages: Tensor, mask: Tensor, mode: LossAggregation = "sequence-sum"
) -> Tensor:
    """REINFORCE: -A * log pi(a|s), aggregated. ``advantages`` is (B,) or (B, T) and held constant."""
    return aggregate(-_per_token(advantages.detach(), logprobs) * logprobs, mask, mode)


def clipped_surrogate(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, *, clip_low: float, clip_high: float
) -> tuple[Tensor, Tensor]:
    """PPO's clipped objective per token: max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high)), r = pi / pi_old.

    ``logprobs`` (B, T) carry gradients; ``old_logprobs`` (B, T) and ``advantages`` (B,) or (B, T) are
    constants. ``clip_high > clip_low`` is DAPO's clip-higher. Returns the (B, T) loss and the ratio.
    """
    advantages = _per_token(advantages.detach(), logprobs)
    ratio = torch.exp(logprobs - old_logprobs.detach())
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(-advantages * ratio, -advantages * clipped), ratio


def sequence_clipped_surrogate(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float,
    clip_high: float,
) -> tuple[Tensor, Tensor]:
    """GSPO's sequence-level clip: s = exp(mean_t log(pi / pi_old)) over each row's valid tokens, and
    max(-A s, -A clip(s, 1 - eps_low, 1 + eps_high)) per sequence, broadcast to its tokens.

    ``advantages`` (B,). Returns the (B, T) loss (constant along each row) and the (B, T) broadcast s.
    """
    log_ratio = torch.where(mask.bool(), logprobs - old_logprobs.detach(), torch.zeros_like(logprobs))
    seq_log_ratio = log_ratio.sum(1) / mask.sum(1).clamp_min(1)  # (B,)
    loss, seq_ratio = clipped_surrogate(
        seq_log_ratio, torch.zeros_like(seq_log_ratio), advantages, clip_low=clip_low, clip_high=clip_high
    )  # (B,), (B,)
    return loss.unsqueeze(1).expand_as(logprobs), seq_ratio.unsqueeze(1).expand_as(logprobs)


def capped_weight_policy_gradient(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, *, cap: float
) -> tuple[Tensor, Tensor]:
    """CISPO: -sg(min(r, cap)) * A * log pi on every token — the ratio is a capped, constant weight, so
    no token's gradient is dropped by a clip. Returns the (B, T) loss and the ratio."""
    advantages = _per_token(advantages.detach(), logprobs)
    ratio = torch.exp(logprobs - old_logprobs.detach())
    return -torch.clamp(ratio, max=cap).detach() * advantages * logprobs, ratio


def soft_gated_surrogate(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, *, tau_pos: float, tau_neg: float
) -> tuple[Tensor, Tensor]:
    """SAPO: -f(r) * A with the soft gate f(r) = sigmoid(tau (r - 1)) * 4 / tau in place of the hard
    clip (gradient exactly that of r at r = 1, fading smoothly as r moves away); tau = tau_pos where
    A > 0, else tau_neg. Returns the (B, T) loss and the ratio."""
    advantages = _per_token(advantages.detach(), logprobs)
    ratio = torch.exp(logprobs - old_logprobs.detach())
    tau = torch.where(advantages > 0, torch.full_like(ratio, tau_pos), torch.full_like(ratio, tau_neg))
    return -torch.sigmoid(tau * (ratio - 1.0)) * 4.0 / tau * advantages, ratio


def clipped_surrogate_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_range: float,
    mode: LossAggregation = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped objective (:func:`clipped_surrogate`, symmetric) as an aggregated loss.

    Stats (detached 0-dim tensors): ``clipfrac`` — share of valid tokens whose ratio
    left [1 - eps, 1 + eps], whatever the advantage's sign (OpenAI baselines' and TRL's definition, so
    the numbers compare across libraries); ``approx_kl`` — k3 estimate of KL(pi_old || pi) over valid
    tokens; ``ratio_mean``.
    """
    per_token, ratio = clipped_surrogate(
        logprobs, old_logprobs, advantages, clip_low=clip_range, clip_high=clip_range
    )
    loss = aggregate(per_token, mask, mode)
    return loss, ratio_stats(ratio.detach(), mask, clip_range, clip_range)


def ratio_stats(ratio: Tensor, mask: Tensor, clip_low: float, clip_high: float) -> dict[str, Tensor]:
    """``clipfrac`` (share of valid tokens whose ratio left [1 - eps_low, 1 + eps_high]), ``approx_kl``
    (k3 estimate of KL(pi_old || pi)) and ``ratio_mean`` over the valid tokens of a (B, T) ratio."""
    with torch.no_grad():
        outside = (ratio < 1.0 - clip_low) | (ratio > 1.0 + clip_high)
        return {
            "clipfrac": masked_mean(outside.float(), mask),
            "approx_kl": masked_mean((ratio - 1) - torch.log(ratio), mask),
            "ratio_mean": masked_mean(ratio, mask),
        }


def rollout_importance_weights(
    log_ratio: Tensor,
    mask: Tensor,
    *,
    mode: Literal["tis", "mis"],
    level: Literal["token", "sequence"],
    cap: float,
) -> Tensor:
    """Weights (B, T) correcting a rollout sampled by a numerically different policy:
    w = pi_train / pi_sample from ``log_ratio`` (B, T) = log pi_train - log pi_sample, per token or one
    per sequence (the product over its valid tokens), then truncated at ``cap`` (``tis``) or set to 0
    above it (``mis``, dropping that token or sequence). Constant (no gradient); 0 off the mask."""
    log_ratio = torch.where(mask.bool(), log_ratio.detach(), torch.zeros_like(log_ratio))
    if level == "sequence":
        log_ratio = log_ratio.sum(1, keepdim=True).expand_as(mask)
    weights = torch.exp(log_ratio)
    if mode == "tis":
        weights = torch.clamp(weights, max=cap)
    elif mode == "mis":
        weights = torch.where(weights > cap, torch.zeros_like(weights), weights)
    else:
        raise ValueError(f"unknown rollout correction {mode!r}; use 'tis' or 'mis'")
    return torch.where(mask.bool(), weights, torch.zeros_like(weights))


def high_entropy_mask(entropy: Tensor, mask: Tensor, quantile: float, ranks: Ranks | None = None) -> Tensor:
    """(B, T) bool: the valid tokens whose entropy is at least the (1 - quantile) quantile of the valid
    tokens' entropies — "the top ``quantile`` share by entropy" (Wang et al., 2025, "Beyond the 80/20
    rule"); every valid token when ``quantile`` is 1. With ``ranks`` of a data-parallel run (this
    rank's share of the minibatch) the quantile is that of every rank's tokens together, as on one
    process; every rank must call it (it gathers)."""
    valid = mask.bool()
    if quantile >= 1.0:
        return valid
    values = entropy[valid].float()
    if ranks is not None and ranks.distributed:
        values = torch.cat([v.to(values.device) for v in ranks.gather(values.cpu())])
    if values.numel() == 0:
        return valid
    threshold = torch.quantile(values, 1.0 - quantile)
    return valid & (entropy >= threshold)


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
    # p = 0 where logprobs = -inf, and 0 * (the lowest finite float) = 0: the same sum as masking those
    # terms, in a third of the passes over (…, V)
    return -(p * logprobs.clamp_min(torch.finfo(logprobs.dtype).min)).sum(-1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy (…,) of softmax(logits (…, V)); -inf logits (filtered tokens) contribute 0."""
    return entropy_from_logprobs(torch.log_softmax(logits.float(), dim=-1))
