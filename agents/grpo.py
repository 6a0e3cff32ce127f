"""GRPO (Shao et al., 2024, DeepSeekMath): group-relative advantages, no value network.

Each prompt is answered G times; completion i of a group gets the sequence-level advantage

    A_i = (R_i - mean(R_group)) / (std(R_group) + eps)      (no division with --no-scale-advantages:
                                                               Dr. GRPO, unbiased towards easy groups)

broadcast to its tokens. The loss is PPO's clipped surrogate with A_i plus the KL to the frozen
reference *in the loss*, via the k3 estimator (>= 0, unbiased), weighted by beta = kl_coef:

    loss = agg_t( max(-A r_t, -A clip(r_t, 1±eps)) + beta * k3_t ),   r_t = π(x_t) / π_old(x_t)

With one pass per batch (``ppo_epochs=1``) π_old is π itself (detached), r = 1, and this is a plain
policy gradient; with more passes π_old is the sampling policy and the clip keeps updates close.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from agents.advantages import group_advantages
from agents.kl import kl_estimate
from agents.losses import aggregate, clipped_surrogate_loss, masked_mean
from agents.rollout import RolloutBatch
from agents.trainer import Algorithm, batch_stats


class GRPO(Algorithm):
    def reset_options(self) -> dict[str, Any] | None:
        return {"group_size": self.config.group_size}

    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        config, mask = self.config, batch.response_mask  # (B, T)
        advantages = group_advantages(rewards, config.group_size, scale_by_std=config.scale_advantages)  # (B,)
        ref_logprobs = self.reference_logprobs(batch)  # (B, T) | None
        old_logprobs = self._old_logprobs(batch) if config.epochs > 1 else None
        beta = self.kl_controller.value

        losses, kls, clipfracs, entropies, grad_norms = [], [], [], [], []
        for _ in range(config.epochs):
            for idx in self.minibatches(batch.batch_size):
                scores = self.policy.score_sequences(batch.input_ids[idx], batch.attention_mask[idx],
                                                     batch.prompt_length, with_entropy=True)
                old = scores.logprobs.detach() if old_logprobs is None else old_logprobs[idx]
                loss, stats = clipped_surrogate_loss(scores.logprobs, old, advantages[idx], mask[idx],
                                                     clip_range=config.clip_range, mode=self.aggregation)
                if ref_logprobs is not None:
                    kl = kl_estimate(scores.logprobs, ref_logprobs[idx], config.kl_kind)  # (b, T)
                    kl_term = aggregate(kl, mask[idx], self.aggregation)
                    loss = loss + beta * kl_term
                    kls.append(kl_term.item())
                grad_norms.append(self.optimizer_step(loss))
                losses.append(loss.item())
                clipfracs.append(stats["clipfrac"].item())
                entropies.append(masked_mean(scores.entropy, mask[idx]).item())
        return {
            **batch_stats(batch, ref_logprobs, config.kl_kind),
            "loss": _mean(losses),
            "kl_loss": _mean(kls) if kls else None,
            "entropy": _mean(entropies),
            "clipfrac": _mean(clipfracs),
            "grad_norm": _mean(grad_norms),
            "zero_std_groups": _zero_std_fraction(rewards, config.group_size),
        }

    @torch.no_grad()
    def _old_logprobs(self, batch: RolloutBatch) -> Tensor:
        """(B, T) logprobs of the sampling policy from a full forward, so pass one starts at r = 1 exactly."""
        return self.policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length).logprobs


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _zero_std_fraction(rewards: Tensor, group_size: int) -> float:
    """Share of groups whose completions all scored the same (they carry no learning signal)."""
    return (rewards.view(-1, group_size).std(dim=1) < 1e-6).float().mean().item()
