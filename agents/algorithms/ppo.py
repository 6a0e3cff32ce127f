"""PPO with the RLHF implementation details (Ziegler et al., 2019; Huang et al., "The N+ implementation
details of RLHF with PPO", 2024).

- Value head on the policy's own trunk (one model, one extra ``Linear(hidden, 1)``); ONE frozen
  reference besides it (none at all with kl_coef = 0 and no KL target).
- Per-token reward: ``-beta * KL_t`` on every generated token (k1 estimator by default) plus the env's
  reward on the last one; beta is fixed or follows the adaptive controller (``--kl-target``).
- Optional whitening of those rewards (sign kept); advantages from GAE, always whitened.
- No bootstrap at the end of any episode: whether it ended on EOS or was cut at ``max_new_tokens``,
  the env's reward model scored the text it has, so the return is complete and V after the last
  token is 0 (bootstrapping at truncation would count the reward twice). ``--missing-eos-penalty``
  lowers the reward of truncated episodes instead (trainer).
- Several epochs over shuffled minibatches of the batch; clipped policy and value losses;
  approx-KL (old || new), clip fractions and the value head's explained variance logged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from agents.algorithms import specs
from agents.algorithms.base import Algorithm, batch_stats, per_token_rewards
from agents.training.advantages import gae_advantages, whiten
from agents.training.kl import AdaptiveKLController, kl_estimate
from agents.training.losses import clipped_surrogate_loss, clipped_value_loss, masked_mean
from agents.training.policy import SequenceScores
from agents.training.rollout import RolloutBatch


class PPO(Algorithm):
    spec = specs.PPO

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.kl_target is not None:
            assert self.config.kl_coef is not None  # resolved when the config was built
            self.kl_controller = AdaptiveKLController(
                self.config.kl_coef, self.config.kl_target, self.config.kl_horizon
            )

    @torch.no_grad()
    def targets(
        self, batch: RolloutBatch, rewards: Tensor, old: SequenceScores | None = None
    ) -> dict[str, Any]:
        """Old logprobs and values, per-token rewards, advantages (rollout-corrected) and returns; all (B, T)
        (the KL entries None without a reference). ``old``: the batch's scores under the weights that
        sampled it, if the caller already has them (else one forward here)."""
        config, mask = self.config, batch.response_mask
        if old is None:
            old = self.policy.score_sequences(
                batch.input_ids, batch.attention_mask, batch.prompt_length, with_values=True
            )
        old_logprobs = old.logprobs.detach()  # (B, T)
        assert old.values is not None  # with_values=True
        values = torch.where(mask.bool(), old.values.detach(), torch.zeros_like(mask))  # (B, T) V(s_t)
        token_rewards = per_token_rewards(batch, rewards)  # (B, T)
        ref_logprobs = self.reference_logprobs(batch)
        kl = None
        if ref_logprobs is not None:
            kl = torch.where(
                mask.bool(), kl_estimate(old_logprobs, ref_logprobs, self.kl_kind), torch.zeros_like(mask)
            )
            token_rewards = token_rewards - self.kl_controller.value * kl
        if config.whiten_rewards:
            token_rewards = whiten(token_rewards, mask, shift_mean=False, ranks=self.ranks)
        # every episode's return is complete (module docstring): no bootstrap after the last token
        advantages, returns = gae_advantages(token_rewards, values, mask, gamma=config.gamma, lam=config.lam)
        advantages = whiten(advantages, mask, ranks=self.ranks)  # over every rank's tokens
        weights, mismatch = (
            self.rollout_correction(old_logprobs, batch.logprobs, mask)
            if batch.low_precision
            else (None, None)
        )
        return {
            "old_logprobs": old_logprobs,
            "values": values,
            "advantages": advantages if weights is None else advantages * weights,
            "rollout_mismatch_kl": mismatch,
            "returns": returns,
            "kl_per_episode": kl.sum(-1) if kl is not None else None,
            "ref_logprobs": ref_logprobs,
        }

    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        config, mask = self.config, batch.response_mask
        # With one minibatch (the default) the first step's forward runs at the sampling weights, so
        # it is also pi_old's: the targets take it and no separate forward runs for them.
        every_row = torch.arange(batch.batch_size, device=mask.device)
        first = self.score(batch, every_row) if config.minibatch >= batch.batch_size else None
        t = self.targets(batch, rewards, first)
        history: dict[str, list[float]] = {}
        for _ in range(self.epochs):
            for idx in self.minibatches(batch.batch_size):
                if first is not None:  # the whole batch, in the order it was scored
                    new, first, idx = first, None, every_row
                else:
                    new = self.score(batch, idx)
                assert new.values is not None and new.entropy is not None  # asked for both
                pg_loss, pg_stats = clipped_surrogate_loss(
                    new.logprobs,
                    t["old_logprobs"][idx],
                    t["advantages"][idx],
                    mask[idx],
                    clip_range=self.clip_range,
                    mode=self.aggregation,
                )
                vf_loss, vf_stats = clipped_value_loss(
                    new.values,
                    t["values"][idx],
                    t["returns"][idx],
                    mask[idx],
                    clip_range=config.value_clip_range,
                )
                loss = pg_loss + config.vf_coef * vf_loss
                grad_norm = self.optimizer_step(loss)
                step_stats = {
                    "loss": loss.item(),
                    "pg_loss": pg_loss.item(),
                    "vf_loss": vf_loss.item(),
                    "entropy": masked_mean(new.entropy, mask[idx]).item(),
                    "grad_norm": grad_norm,
                    **{k: v.item() for k, v in {**pg_stats, **vf_stats}.items()},
                }
                for key, value in step_stats.items():
                    history.setdefault(key, []).append(value)
        if t["kl_per_episode"] is not None:
            # the global batch's KL and size, so every rank's coefficient stays the same
            kl_mean = self.ranks.mean(t["kl_per_episode"].mean().item())
            self.kl_controller.update(kl_mean, batch.batch_size * self.ranks.world_size)
        return {
            **batch_stats(
                batch, t["ref_logprobs"], self.kl_kind, t["old_logprobs"] if batch.low_precision else None
            ),
            **{key: sum(values) / len(values) for key, values in history.items()},
            "return_mean": masked_mean(t["returns"], mask).item(),
            "rollout_mismatch_kl": t["rollout_mismatch_kl"],
            "explained_variance": explained_variance(t["values"], t["returns"], mask),
        }

    def score(self, batch: RolloutBatch, idx: Tensor) -> SequenceScores:
        """Logprobs, values and entropy of rows ``idx`` under the current weights, with gradients."""
        return self.policy.score_sequences(
            batch.input_ids[idx],
            batch.attention_mask[idx],
            batch.prompt_length,
            with_values=True,
            with_entropy=True,
        )


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over the valid tokens, for the values the batch was
    collected with: 1 is a perfect critic, 0 no better than a constant, < 0 worse."""
    m = mask.bool()
    target = returns[m]
    var = target.var() if target.numel() > 1 else target.new_tensor(0.0)
    if var <= 0:
        return float("nan")
    return (1 - (target - values[m]).var() / var).item()
