"""The :class:`Algorithm` base every policy-gradient algorithm overrides, and the pieces they share.

An algorithm is one class: :meth:`Algorithm.update` (one learning step on a rollout batch) plus its
declarations, an :class:`~agents.algorithms.specs.AlgorithmSpec` named by the class's ``spec``
(defaults, options, constraints; torch-free, so the config reads them without this module). The
spec's fields are copied onto the class when it is defined (``cls.uses_groups``, ``self.options``
...), so there is one source of each and the update code reads them as plain attributes. The base
owns the optimizer, the KL coefficient, the frozen reference (if any), minibatching and a guarded
optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from agents.algorithms.specs import AlgorithmSpec
from agents.errors import TrainingDivergedError
from agents.training.choices import KLEstimator, LossAggregation
from agents.training.distributed import Ranks
from agents.training.kl import FixedKLController, kl_estimate
from agents.training.losses import masked_sum, rollout_importance_weights
from agents.training.policy import LMPolicy
from agents.training.rollout import RolloutBatch

if TYPE_CHECKING:
    from agents.training.config import TrainConfig


REGISTRY: dict[str, type[Algorithm]] = {}
"""``--algo`` name -> algorithm class; :mod:`agents.algorithms.registry` fills it with every algorithm
file's class (one line each). Their declarations alone are :data:`agents.algorithms.specs.SPECS`."""


class Algorithm:
    """What differs between REINFORCE, PPO, RLOO and GRPO: :meth:`update` and the ``spec`` it declares."""

    spec: ClassVar[AlgorithmSpec]
    # copies of the spec's fields, set by __init_subclass__ (declared for type checkers)
    name: ClassVar[str]
    value_head: ClassVar[bool]
    uses_groups: ClassVar[bool]
    default_epochs: ClassVar[int]
    max_epochs: ClassVar[int | None]
    default_kl_estimator: ClassVar[KLEstimator]
    kl_in_loss: ClassVar[bool]
    supports_kl_target: ClassVar[bool]
    default_aggregation: ClassVar[LossAggregation]
    setting_defaults: ClassVar[dict[str, Any]]
    options: ClassVar[frozenset[str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in vars(cls):  # a subclass without its own spec keeps its parent's
            for f in fields(cls.spec):
                setattr(cls, f.name, getattr(cls.spec, f.name))

    def __init__(
        self,
        policy: LMPolicy,
        config: TrainConfig,
        reference: LMPolicy | None = None,
        *,
        ranks: Ranks | None = None,
    ) -> None:
        self.policy = policy
        self.config = config  # this process's share: batch_size and minibatch_size are per rank
        self.reference = reference
        self.ranks = ranks or Ranks()
        params = [p for p in policy.parameters() if p.requires_grad]
        # Adam without weight decay (AdamW with weight_decay=0 is the same update; TRL's default), as
        # one fused kernel over all parameters where torch has one (3.5x faster than the per-tensor
        # loop at 27M parameters on a CPU; the same update to float rounding)
        fused = True if params and params[0].device.type in ("cpu", "cuda") else None
        assert config.lr is not None and config.kl_coef is not None  # resolved when the config was built
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=fused)
        self.kl_controller: Any = FixedKLController(config.kl_coef)
        self.generator = torch.Generator().manual_seed(config.seed)  # minibatch order only

    # ---- declarations (the spec's) -----------------------------------------------------------
    @classmethod
    def check_config(cls, config: TrainConfig) -> None:
        """Raise :class:`ConfigError` for settings this algorithm cannot honour (the message names the fix)."""
        cls.spec.check_config(config)

    @classmethod
    def epochs_for(cls, config: TrainConfig) -> int:
        return cls.spec.epochs_for(config)

    @classmethod
    def kl_estimator_for(cls, config: TrainConfig) -> KLEstimator:
        return cls.spec.kl_estimator_for(config)

    @classmethod
    def needs_reference(cls, config: TrainConfig) -> bool:
        """A frozen reference is loaded only when some KL term uses it."""
        return cls.spec.needs_reference(config)

    # ---- per-run derived values --------------------------------------------------------------
    @property
    def clip_range(self) -> float:
        """The ratio's clip epsilon (``--clip-range``, else the task card's or the algorithm's default)."""
        assert self.config.clip_range is not None  # resolved when the config was built
        return self.config.clip_range

    @property
    def aggregation(self) -> LossAggregation:
        return self.config.loss_aggregation or self.default_aggregation

    @property
    def epochs(self) -> int:
        return self.epochs_for(self.config)

    @property
    def kl_kind(self) -> KLEstimator:
        return self.kl_estimator_for(self.config)

    @property
    def steps_per_batch(self) -> int:
        """Optimizer steps one batch gets when each minibatch is a step (epochs x minibatches)."""
        return self.epochs * math.ceil(self.config.batch_size / self.config.minibatch)

    def reset_options(self) -> dict[str, Any] | None:
        """Options for ``envs.reset``: groups of completions per prompt for the algorithms that use them."""
        return {"group_size": self.config.group_size} if self.uses_groups else None

    def collect(self, rollout: Callable[[int], RolloutBatch]) -> RolloutBatch:
        """The batch to learn from; ``rollout(attempt)`` rolls out a fresh batch (attempt 0, 1, ... draw
        different prompts). One rollout here; DAPO's dynamic sampling draws more."""
        return rollout(0)

    def episode_rewards(self, batch: RolloutBatch) -> Tensor:
        """(B,) the rewards the update learns from: the env's, less ``--missing-eos-penalty`` for the
        episodes cut at the token budget."""
        return batch.rewards.float() - self.config.missing_eos_penalty * batch.truncated.float()

    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        """One learning step on a rollout batch; ``rewards`` (B,) from :meth:`episode_rewards`."""
        raise NotImplementedError

    # ---- shared pieces -----------------------------------------------------------------------
    @torch.no_grad()
    def reference_logprobs(self, batch: RolloutBatch) -> Tensor | None:
        """(B, T) logprobs of the batch's tokens under the frozen reference, or None without one."""
        if self.reference is None:
            return None
        return self.reference.score_sequences(
            batch.input_ids, batch.attention_mask, batch.prompt_length
        ).logprobs

    def rollout_logprobs(self, batch: RolloutBatch) -> Tensor:
        """(B, T) logprobs of the policy that sampled the batch, fit to learn from: the rollout's own,
        or, after a reduced-precision (bf16) rollout, recomputed at the update's precision. Only for
        on-policy use (before the batch's first optimizer step)."""
        return self.current_logprobs(batch) if batch.low_precision else batch.logprobs

    @torch.no_grad()
    def current_logprobs(self, batch: RolloutBatch) -> Tensor:
        """(B, T) logprobs of the batch under the policy's weights now, from one full forward: the
        pi_old of importance ratios (the rollout's own logprobs come from the KV-cached forward and
        may differ by float noise, so the first ratio would not be exactly 1)."""
        return self.policy.score_sequences(
            batch.input_ids, batch.attention_mask, batch.prompt_length
        ).logprobs

    def loss_mask(self, batch: RolloutBatch) -> Tensor:
        """(B, T) the tokens the loss learns from: the policy's, less the episodes cut at the token budget
        with ``--mask-truncated-completions``."""
        if not self.config.mask_truncated_completions:
            return batch.response_mask
        return batch.response_mask * (~batch.truncated).to(batch.response_mask.dtype).unsqueeze(1)

    def rollout_correction(
        self, train_logprobs: Tensor, sample_logprobs: Tensor, mask: Tensor
    ) -> tuple[Tensor | None, float]:
        """Importance weights (B, T) pi_train / pi_sample for a reduced-precision rollout, truncated or
        masked at the cap (``--rollout-correction``; None when off), and the mismatch KL(pi_sample ||
        pi_train) summed per episode, averaged. ``train_logprobs`` are the update's precision, taken at
        the rollout's weights; ``sample_logprobs`` the rollout's own."""
        config = self.config
        per_token = kl_estimate(sample_logprobs, train_logprobs.detach(), "k3")  # (B, T)
        mismatch = masked_sum(per_token, mask, dim=1).mean().item()
        if config.rollout_correction == "none":
            return None, mismatch
        weights = rollout_importance_weights(
            train_logprobs.detach() - sample_logprobs,
            mask,
            mode=config.rollout_correction,
            level=config.rollout_correction_level,
            cap=config.rollout_correction_cap,
        )
        return weights, mismatch

    def sequence_kl(self, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor) -> Tensor:
        """(B,) summed per-token KL estimate of each episode, detached (a reward term, not a loss)."""
        per_token = kl_estimate(logprobs.detach(), ref_logprobs, self.kl_kind)  # (B, T)
        return masked_sum(per_token, mask, dim=1)

    def minibatches(self, size: int) -> Iterator[Tensor]:
        """Shuffled index tensors of ``minibatch_size`` episodes covering the batch once."""
        order = torch.randperm(size, generator=self.generator)
        step = self.config.minibatch
        for start in range(0, size, step):
            yield order[start : start + step].to(self.policy.device)

    def minibatch_weight(self, idx: Tensor, mask: Tensor) -> float:
        """The share of the full batch's loss that minibatch ``idx`` carries under this aggregation, so
        that summing weighted minibatch losses gives the full-batch loss (gradient accumulation)."""
        if self.aggregation == "token-mean":
            return float(mask[idx].sum() / mask.sum().clamp_min(1))
        return idx.numel() / mask.shape[0]

    def backward(self, loss: Tensor) -> None:
        """Accumulate the gradient of ``loss``; refuse a non-finite one."""
        if not torch.isfinite(loss):
            raise TrainingDivergedError(f"non-finite loss ({loss.item()})")
        loss.backward()

    def step(self) -> float:
        """Clip the accumulated gradient, step, clear it; returns the pre-clip grad norm."""
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.ranks.average_gradients(params)  # data-parallel: every rank steps on the global gradient
        max_norm = self.config.max_grad_norm or float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):
            raise TrainingDivergedError(f"non-finite gradient norm ({grad_norm})")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        # A finite gradient can still step a weight to inf; that is not checked here (a pass over
        # every weight costs ~10% of a small model's update): the next forward's loss or logits
        # would be non-finite and stop the run, and the trainer checks the weights before it saves.
        return grad_norm

    def optimizer_step(self, loss: Tensor) -> float:
        """Backward and step on one loss; returns the grad norm."""
        self.optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        return self.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "kl_controller": self.kl_controller.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_controller.load_state_dict(state["kl_controller"])
        self.generator.set_state(state["generator"])


def batch_stats(
    batch: RolloutBatch,
    ref_logprobs: Tensor | None = None,
    kind: KLEstimator = "k1",
    logprobs: Tensor | None = None,
) -> dict[str, Any]:
    """Rollout statistics every algorithm logs: reward, length, EOS rate, and the summed per-token
    KL of the sampling policy to the reference (``kind`` estimator), averaged over episodes.
    ``logprobs`` (B, T) replaces the rollout's own in the KL (after a bf16 rollout, the fp32 ones)."""
    rewards = batch.rewards.float()
    stats: dict[str, Any] = {
        "reward_mean": rewards.mean().item(),
        "reward_std": rewards.std().item() if rewards.numel() > 1 else 0.0,
        "completion_length": batch.response_mask.sum(-1).float().mean().item(),
        "eos_rate": batch.terminated.float().mean().item(),
        "kl": None,
    }
    if ref_logprobs is not None:
        sampled = batch.logprobs if logprobs is None else logprobs
        per_token = kl_estimate(sampled, ref_logprobs, kind)  # (B, T)
        stats["kl"] = masked_sum(per_token, batch.response_mask, dim=1).mean().item()
    return stats


def corrected(advantages: Tensor, weights: Tensor | None) -> Tensor:
    """Advantages (B,) or (B, T) times the rollout correction's (B, T) weights (None: unchanged). Every
    surrogate here is linear in A at fixed ratio and the weights are >= 0, so weighting A weights the loss."""
    if weights is None:
        return advantages
    return (advantages.unsqueeze(1) if advantages.dim() == 1 else advantages) * weights


def per_token_rewards(batch: RolloutBatch, rewards: Tensor) -> Tensor:
    """(B, T) the env's rewards on the columns of the actions that earned them (the last token for a
    terminal reward, each turn's end for per-turn ones), plus the trainer's adjustment of the episode's
    reward (``rewards - batch.rewards``: the missing-EOS penalty) on its last policy token."""
    mask = batch.response_mask
    rows = torch.arange(mask.shape[0], device=mask.device)
    last = batch.last_policy_column  # (B,)
    token_rewards = torch.zeros_like(mask)  # (B, T)
    token_rewards[rows, last] = rewards - batch.rewards.float()
    if batch.token_rewards is not None:
        return token_rewards + batch.token_rewards * mask
    token_rewards[rows, last] += batch.rewards.float()
    return token_rewards


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
