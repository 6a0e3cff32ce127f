"""DAPO's two rollout-side pieces (Yu et al., 2025): dynamic sampling and the soft overlong penalty.

Dynamic sampling: a group whose G completions all earn the same reward has zero group-relative
advantage, so it only dilutes the batch. Such groups are dropped and fresh prompts rolled out until
the batch holds ``B / G`` groups with signal, up to ``max_extra`` extra rollout batches; groups still
missing then are filled with dropped ones, placed last, which the algorithm masks out of the loss
(the batch keeps its shape, so every rank and minibatch split stays the same): never learned from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from agents.training.rollout import RolloutBatch


def overlong_penalty(batch: RolloutBatch, buffer: float) -> Tensor:
    """(B,) DAPO's soft overlong punishment: 0 while an episode uses at most (1 - buffer) of the token
    budget T, then falling linearly to -1 at the whole budget:

        R_len = clamp(((T - L) - used) / L, max=0),   L = buffer * T,   used = last policy column + 1
    """
    T = batch.response_mask.shape[1]
    used = (batch.last_policy_column + 1).float()  # (B,) columns of the budget an episode used
    cache = buffer * T
    return torch.clamp((T - cache - used) / cache, max=0.0)


def informative_groups(rewards: Tensor, group_size: int) -> Tensor:
    """(B/G,) bool: the groups whose rewards are not all equal."""
    groups = rewards.view(-1, group_size)
    return (groups.max(dim=1).values - groups.min(dim=1).values) > 1e-6


def refill_informative_groups(
    rollout: Callable[[int], RolloutBatch],
    rewards_of: Callable[[RolloutBatch], Tensor],
    group_size: int,
    max_extra: int,
) -> tuple[RolloutBatch, int, int]:
    """Roll out ``rollout(0)``, then ``rollout(1)``, ... until B/G groups have signal or ``max_extra``
    extra batches are spent. Returns the batch to learn from (the first B/G informative groups in
    rollout order, then, if short, uninformative ones: the last groups), the number of extra batches
    drawn and the number of those uninformative groups at its end (for the caller to mask out)."""
    batches: list[RolloutBatch] = []
    kept: list[int] = []  # row offsets (in the concatenation) of the informative groups' first rows
    dropped: list[int] = []
    for attempt in range(max_extra + 1):
        batch = rollout(attempt)
        offset = sum(b.batch_size for b in batches)
        batches.append(batch)
        n_groups = batch.batch_size // group_size
        for g, ok in enumerate(informative_groups(rewards_of(batch), group_size).tolist()):
            (kept if ok else dropped).append(offset + g * group_size)
        if len(kept) >= n_groups:
            break
    unfilled = max(0, n_groups - len(kept))
    firsts = kept[:n_groups] + dropped[:unfilled]
    rows = torch.tensor([f + j for f in firsts for j in range(group_size)])
    return select_rows(concat_batches(batches), rows), attempt, unfilled


def concat_batches(batches: list[RolloutBatch]) -> RolloutBatch:
    """The episodes of several rollout batches of the same env (same prompt and token budgets) as one."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(b, name) for b in batches], dim=0)

    def cat_optional(name: str) -> Tensor | None:
        parts = [getattr(b, name) for b in batches]
        return None if parts[0] is None else torch.cat(parts, dim=0)

    return RolloutBatch(
        input_ids=cat("input_ids"),
        attention_mask=cat("attention_mask"),
        response_mask=cat("response_mask"),
        actions=cat("actions"),
        logprobs=cat("logprobs"),
        values=cat_optional("values"),
        rewards=cat("rewards"),
        terminated=cat("terminated"),
        truncated=cat("truncated"),
        prompts=[p for b in batches for p in b.prompts],
        completions=[c for b in batches for c in b.completions],
        reward_components={
            k: np.concatenate([b.reward_components[k] for b in batches]) for k in first.reward_components
        },
        prompt_length=first.prompt_length,
        token_rewards=cat_optional("token_rewards"),
        low_precision=first.low_precision,
    )


def select_rows(batch: RolloutBatch, rows: Tensor) -> RolloutBatch:
    """The episodes ``rows`` (a long tensor) of ``batch``, in that order (tensors copied)."""
    picked = rows.tolist()
    on = rows.to(batch.input_ids.device)

    def take(x: Tensor) -> Tensor:
        return x[on].clone()

    def take_optional(x: Tensor | None) -> Tensor | None:
        return None if x is None else take(x)

    return RolloutBatch(
        input_ids=take(batch.input_ids),
        attention_mask=take(batch.attention_mask),
        response_mask=take(batch.response_mask),
        actions=take(batch.actions),
        logprobs=take(batch.logprobs),
        values=take_optional(batch.values),
        rewards=take(batch.rewards),
        terminated=take(batch.terminated),
        truncated=take(batch.truncated),
        prompts=[batch.prompts[i] for i in picked],
        completions=[batch.completions[i] for i in picked],
        reward_components={k: np.asarray(v)[picked] for k, v in batch.reward_components.items()},
        prompt_length=batch.prompt_length,
        token_rewards=take_optional(batch.token_rewards),
        low_precision=batch.low_precision,
    )
