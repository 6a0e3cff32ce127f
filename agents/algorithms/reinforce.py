"""REINFORCE with a baseline: the seeds' ``r(x) · ∇ log π(x)``, with the reward centred to cut variance.

Per update, with x a completion of B sampled from the policy and R(x) its reward:

    R'(x)  = R(x) - kl_coef * Σ_t KL_t(x)          # optional penalty towards the frozen reference
    A(x)   = R'(x) - b                              # b: batch mean, or a running mean of past batches
    loss   = - A(x) · Σ_t log π(x_t | x_<t)         # "sequence-sum": the whole completion's log-likelihood

One optimizer step per batch, on-policy, so no importance ratio is needed. ``--minibatch-size``
only bounds memory: minibatch gradients are accumulated (each weighted by its share of the batch)
into that one step, which therefore equals the full-batch step.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.base import Algorithm, batch_stats, corrected, mean
from agents.training.losses import masked_mean, policy_gradient_loss
from agents.training.rollout import RolloutBatch


class Reinforce(Algorithm):
    spec = specs.REINFORCE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.running_baseline: float | None = None

    def advantages(self, shaped_rewards: Tensor) -> Tensor:
        """(B,) -> (B,): reward minus the batch-mean or the running-mean baseline."""
        batch_mean = self.ranks.mean(shaped_rewards.mean().item())  # of the global batch
        if self.config.baseline == "batch-mean":
            return shaped_rewards - batch_mean
        baseline = batch_mean if self.running_baseline is None else self.running_baseline
        m = self.config.baseline_momentum
        self.running_baseline = (
            batch_mean if self.running_baseline is None else m * baseline + (1 - m) * batch_mean
        )
        return shaped_rewards - baseline

    def token_advantages(self, batch: RolloutBatch, shaped_rewards: Tensor) -> Tensor:
        """The advantages the loss weighs each completion's tokens by: (B,) here, (B, T) for ReBN."""
        return self.advantages(shaped_rewards)

    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        mask = self.loss_mask(batch)  # (B, T)
        ref_logprobs = self.reference_logprobs(batch)  # (B, T) | None
        shaped, sampled = rewards, None
        if ref_logprobs is not None:  # on-policy: the rollout's logprobs are the current policy's
            sampled = self.rollout_logprobs(batch)  # (B, T)
            shaped = rewards - self.kl_controller.value * self.sequence_kl(sampled, ref_logprobs, mask)
        advantages = self.token_advantages(batch, shaped)  # (B,) or (B, T)

        loss_total, entropies, mismatches = 0.0, [], []
        self.optimizer.zero_grad(set_to_none=True)
        for idx in self.minibatches(batch.batch_size):
            scores = self.policy.score_sequences(
                batch.input_ids[idx], batch.attention_mask[idx], batch.prompt_length, with_entropy=True
            )
            assert scores.entropy is not None  # with_entropy=True
            weights = None
            if batch.low_precision:  # on-policy: this forward is pi_train at the rollout's weights
                weights, mismatch = self.rollout_correction(
                    scores.logprobs, batch.logprobs[idx], batch.response_mask[idx]
                )
                mismatches.append(mismatch)
            loss = policy_gradient_loss(
                scores.logprobs, corrected(advantages[idx], weights), mask[idx], self.aggregation
            )
            weighted = self.minibatch_weight(idx, mask) * loss
            self.backward(weighted)
            loss_total += weighted.item()
            entropies.append(masked_mean(scores.entropy, mask[idx]).item())
        grad_norm = self.step()
        return {
            **batch_stats(batch, ref_logprobs, self.kl_kind, sampled),
            "loss": loss_total,
            "entropy": mean(entropies),
            "advantage_std": advantages.std().item() if advantages.numel() > 1 else 0.0,
            "grad_norm": grad_norm,
            "rollout_mismatch_kl": mean(mismatches) if mismatches else None,
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "running_baseline": self.running_baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.running_baseline = state.get("running_baseline")
