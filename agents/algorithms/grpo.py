"""GRPO (Shao et al., 2024, DeepSeekMath): group-relative advantages, no value network.

Each prompt is answered G times; completion i of a group gets the sequence-level advantage

    A_i = (R_i - mean(R_group)) / (std(R_group) + eps)      (--no-scale-advantages drops the division)

broadcast to its tokens. The loss is PPO's clipped surrogate with A_i plus the KL to the frozen
reference *in the loss*, via the k3 estimator by default, weighted by beta = kl_coef:

    loss = agg_t( max(-A r_t, -A clip(r_t, 1±eps)) + beta * k3_t ),   r_t = π(x_t) / π_old(x_t)

π_old is the policy that sampled the batch. With one optimizer step per batch (one epoch, no
minibatches) π_old = π, r = 1 and this is a plain policy gradient; whenever the batch gets more
steps (``--ppo-epochs > 1`` or ``--minibatch-size < --batch-size``) the later steps are off-policy,
so π_old's logprobs are kept from before the first step (the first epoch's own forward when each
epoch is one step, else one forward up front) and the ratio and clip do their work.
k1 is refused: in the loss its gradient is zero in expectation (agents/training/kl.py).

Dr. GRPO (Liu et al., 2025) removes both of GRPO's normalisations: the std division
(``--no-scale-advantages``) and the per-sequence length mean (``--loss-aggregation sequence-sum``,
a constant normaliser); the default here is token-mean, as in DAPO and TRL.

This class is also the frame of the 2026 menu: DAPO, GSPO, CISPO, SAPO and REINFORCE++ are GRPO with
one piece replaced — the surrogate (:meth:`GRPO.surrogate`), the advantages (:meth:`GRPO.advantages`),
the rollout (dynamic sampling) or the reward (the overlong penalty) — each in its own file. Options
shared by the family: ``--scale-rewards``, ``--epsilon-high`` (clip-higher),
``--mask-truncated-completions``, ``--top-entropy-quantile``, ``--dynamic-sampling``,
``--overlong-buffer``, and the rollout correction of every algorithm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.base import Algorithm, batch_stats, mean
from agents.algorithms.dynamic_sampling import overlong_penalty, refill_informative_groups
from agents.training.advantages import scaled_group_advantages
from agents.training.choices import RewardScaling
from agents.training.kl import kl_estimate
from agents.training.losses import aggregate, clipped_surrogate, high_entropy_mask, masked_mean, ratio_stats
from agents.training.rollout import RolloutBatch


class GRPO(Algorithm):
    spec = specs.GRPO

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra_rollouts = 0  # dynamic sampling: extra rollout batches drawn for the last update
        self.unfilled_groups = 0  # ... and groups still without signal after them (left out of the loss)

    # ---- the pieces the menu replaces ----------------------------------------------------------
    @property
    def clip_low(self) -> float:
        return self.clip_range

    @property
    def clip_high(self) -> float:
        """--epsilon-high, else the symmetric clip."""
        high = self.config.epsilon_high
        return float(high) if high is not None else self.clip_low

    @property
    def reward_scaling(self) -> RewardScaling:
        """--scale-rewards, else group (none with --no-scale-advantages)."""
        return self.config.scale_rewards or ("group" if self.config.scale_advantages else "none")

    def advantages(self, batch: RolloutBatch, rewards: Tensor, ref_logprobs: Tensor | None) -> Tensor:
        """(B,) group-relative advantages of the episode rewards (B,) (the KL is in the loss)."""
        return scaled_group_advantages(rewards, self.config.group_size, self.reward_scaling, ranks=self.ranks)

    def surrogate(
        self, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(b, T) per-token policy loss and the (b, T) importance ratio it used."""
        return clipped_surrogate(
            logprobs, old_logprobs, advantages, clip_low=self.clip_low, clip_high=self.clip_high
        )

    def episode_rewards(self, batch: RolloutBatch) -> Tensor:
        """The env's rewards, less the missing-EOS penalty and DAPO's soft overlong penalty (--overlong-buffer)."""
        rewards = super().episode_rewards(batch)
        if self.config.overlong_buffer:
            rewards = rewards + overlong_penalty(batch, self.config.overlong_buffer)
        return rewards

    def loss_mask(self, batch: RolloutBatch) -> Tensor:
        """The policy's tokens (less truncated episodes if asked), less the filler groups that dynamic
        sampling could not replace (the batch's last ``unfilled_groups`` groups): never learned from."""
        mask = super().loss_mask(batch)
        if self.config.dynamic_sampling and self.unfilled_groups:
            mask = mask.clone()
            mask[-self.unfilled_groups * self.config.group_size :] = 0
        return mask

    def collect(self, rollout: Any) -> RolloutBatch:
        """With dynamic sampling: groups whose rewards are all equal are replaced by fresh ones."""
        if not self.config.dynamic_sampling:
            return rollout(0)
        batch, self.extra_rollouts, self.unfilled_groups = refill_informative_groups(
            rollout, self.episode_rewards, self.config.group_size, self.config.max_extra_rollouts
        )
        return batch

    # ---- the update ------------------------------------------------------------------------------
    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        config, mask = self.config, self.loss_mask(batch)  # (B, T)
        ref_logprobs = self.reference_logprobs(batch)  # (B, T) | None
        advantages = self.advantages(batch, rewards, ref_logprobs)  # (B,) or (B, T)
        # pi_old: the batch's logprobs under the weights that sampled it, at the update's precision.
        # With one minibatch per epoch the first epoch's forward runs before any step, so its detached
        # logprobs are pi_old; only minibatches need a forward up front (later ones follow a step).
        upfront = config.minibatch < batch.batch_size
        old_logprobs = self.current_logprobs(batch) if upfront else torch.zeros_like(mask)  # (B, T)
        beta = self.kl_controller.value

        history: dict[str, list[float]] = {}
        for epoch in range(self.epochs):
            for idx in self.minibatches(batch.batch_size):
                scores = self.policy.score_sequences(
                    batch.input_ids[idx], batch.attention_mask[idx], batch.prompt_length, with_entropy=True
                )
                assert scores.entropy is not None  # with_entropy=True
                if epoch == 0 and not upfront:
                    old_logprobs[idx] = scores.logprobs.detach()
                old = old_logprobs[idx]
                step: dict[str, Any] = {}
                weights = None
                # the rollout's bf16 sampler is not pi_old: weight by pi_old / pi_sample
                if batch.low_precision:
                    weights, step["rollout_mismatch_kl"] = self.rollout_correction(
                        old, batch.logprobs[idx], batch.response_mask[idx]
                    )
                per_token, ratio = self.surrogate(scores.logprobs, old, advantages[idx], mask[idx])
                if weights is not None:  # constant and >= 0, as TRL weights its per-token loss
                    per_token = per_token * weights
                if config.top_entropy_quantile < 1:  # learn from the high-entropy tokens only (TRL: the
                    # others' loss is zeroed; the normaliser still counts them)
                    keep = high_entropy_mask(
                        scores.entropy.detach(), mask[idx], config.top_entropy_quantile, self.ranks
                    )
                    per_token = torch.where(keep, per_token, torch.zeros_like(per_token))
                loss = aggregate(per_token, mask[idx], self.aggregation)
                if ref_logprobs is not None and self.kl_in_loss:
                    kl = kl_estimate(scores.logprobs, ref_logprobs[idx], self.kl_kind)  # (b, T)
                    kl_term = aggregate(kl, mask[idx], self.aggregation)
                    loss = loss + beta * kl_term
                    step["kl_loss"] = kl_term.item()
                step["grad_norm"] = self.optimizer_step(loss)
                step["loss"] = loss.item()
                step["entropy"] = masked_mean(scores.entropy, mask[idx]).item()
                step.update(
                    {
                        k: v.item()
                        for k, v in ratio_stats(
                            ratio.detach(), mask[idx], self.clip_low, self.clip_high
                        ).items()
                    }
                )
                for key, value in step.items():
                    history.setdefault(key, []).append(value)
        sampled = old_logprobs if batch.low_precision else None
        return {
            **batch_stats(batch, ref_logprobs, self.kl_kind, sampled),
            **{key: mean(values) for key, values in history.items()},
            "kl_loss": mean(history["kl_loss"]) if "kl_loss" in history else None,
            "rollout_mismatch_kl": mean(history["rollout_mismatch_kl"]) if batch.low_precision else None,
            "zero_std_groups": _zero_std_fraction(rewards, config.group_size) if self.uses_groups else None,
            "extra_rollouts": self.extra_rollouts if config.dynamic_sampling else None,
            "unfilled_groups": self.unfilled_groups if config.dynamic_sampling else None,
        }


def _zero_std_fraction(rewards: Tensor, group_size: int) -> float:
    """Share of groups whose completions all scored the same (they carry no learning signal)."""
    return (rewards.view(-1, group_size).std(dim=1) < 1e-6).float().mean().item()
