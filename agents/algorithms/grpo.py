"""GRPO (Shao et al., 2024, DeepSeekMath): group-relative advantages, no value network.

Each prompt is answered G times; completion i of a group gets the sequence-level advantage

    A_i = (R_i - mean(R_group)) / (std(R_group) + eps)      (--no-scale-advantages drops the division)

broadcast to its tokens. The loss is PPO's clipped surrogate with A_i plus the KL to the frozen
reference *in the loss*, via the k3 estimator by default, weighted by beta = kl_coef:

    loss = agg_t( max(-A r_t, -A clip(r_t, 1±eps)) + beta * k3_t ),   r_t = π(x_t) / π_old(x_t)

π_old is the policy that sampled the batch. With one optimizer step per batch (one epoch, no
minibatches) π_old = π, r = 1 and this is a plain policy gradient; whenever the batch gets more
steps (``--ppo-epochs > 1`` or ``--minibatch-size < --batch-size``) the later steps are off-policy,
so π_old's logprobs are computed once before the first step and the ratio and clip do their work.
k1 is refused: in the loss its gradient is zero in expectation (agents/kl.py).

Dr. GRPO (Liu et al., 2025) removes both of GRPO's normalisations: the std division
(``--no-scale-advantages``) and the per-sequence length mean (``--loss-aggregation sequence-sum``,
a constant normaliser); the default here is token-mean, as in DAPO and TRL.
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.advantages import group_advantages
from agents.algorithms.base import Algorithm, batch_stats, mean
from agents.kl import kl_estimate
from agents.losses import aggregate, clipped_surrogate_loss, masked_mean
from agents.rollout import RolloutBatch


class GRPO(Algorithm):
    name = "grpo"
    uses_groups = True
    default_kl_estimator = "k3"
    kl_in_loss = True

    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        config, mask = self.config, batch.response_mask  # (B, T)
        advantages = group_advantages(rewards, config.group_size, scale_by_std=config.scale_advantages)  # (B,)
        ref_logprobs = self.reference_logprobs(batch)  # (B, T) | None
        old_logprobs = self.current_logprobs(batch) if self.steps_per_batch > 1 else None
        # after a bf16 rollout the logged KL takes fp32 logprobs of the sampling policy: pi_old's, or
        # with a single step the update's own (taken before that step), so no forward is added
        sampled = None
        if batch.low_precision:
            sampled = old_logprobs if old_logprobs is not None else torch.zeros_like(mask)  # (B, T)
        beta = self.kl_controller.value

        losses, kls, clipfracs, entropies, grad_norms = [], [], [], [], []
        for _ in range(self.epochs):
            for idx in self.minibatches(batch.batch_size):
                scores = self.policy.score_sequences(batch.input_ids[idx], batch.attention_mask[idx],
                                                     batch.prompt_length, with_entropy=True)
                assert scores.entropy is not None  # with_entropy=True
                old = scores.logprobs.detach() if old_logprobs is None else old_logprobs[idx]
                if sampled is not None and old_logprobs is None:
                    sampled[idx] = old
                loss, stats = clipped_surrogate_loss(scores.logprobs, old, advantages[idx], mask[idx],
                                                     clip_range=config.clip_range, mode=self.aggregation)
                if ref_logprobs is not None:
                    kl = kl_estimate(scores.logprobs, ref_logprobs[idx], self.kl_kind)  # (b, T)
                    kl_term = aggregate(kl, mask[idx], self.aggregation)
                    loss = loss + beta * kl_term
                    kls.append(kl_term.item())
                grad_norms.append(self.optimizer_step(loss))
                losses.append(loss.item())
                clipfracs.append(stats["clipfrac"].item())
                entropies.append(masked_mean(scores.entropy, mask[idx]).item())
        return {
            **batch_stats(batch, ref_logprobs, self.kl_kind, sampled),
            "loss": mean(losses),
            "kl_loss": mean(kls) if kls else None,
            "entropy": mean(entropies),
            "clipfrac": mean(clipfracs),
            "grad_norm": mean(grad_norms),
            "zero_std_groups": _zero_std_fraction(rewards, config.group_size),
        }


def _zero_std_fraction(rewards: Tensor, group_size: int) -> float:
    """Share of groups whose completions all scored the same (they carry no learning signal)."""
    return (rewards.view(-1, group_size).std(dim=1) < 1e-6).float().mean().item()
