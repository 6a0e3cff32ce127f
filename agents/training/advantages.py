"""Advantage estimators shared by the algorithms: GAE, whitening, group and leave-one-out baselines.

Response tensors are (B, T) with a mask that is 1 on a prefix of each row (the generated tokens).
Group layouts follow the env's ``group_size`` reset option: each prompt's G completions sit in G
consecutive rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.training.choices import RewardScaling
from agents.training.distributed import Ranks


def gae_advantages(
    rewards: Tensor,
    values: Tensor,
    mask: Tensor,
    *,
    gamma: float,
    lam: float,
    bootstrap: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation over (B, T) per-token rewards and values.

    ``values[:, t]`` is V(s_t), the state before action t. After a row's last valid step the next
    value is ``bootstrap`` (B,) when given, else 0. rlenv's episodes never need one (the reward model
    scores truncated text too, so every return is complete); it is for envs where a time limit cuts
    off reward that would still have come.

    The mask may have holes (multi-turn episodes: the env's reply tokens sit between the policy's
    turns): the recursion then runs over each row's valid steps only, so the step after a turn's
    last token is the first token of the next turn.

    Returns ``(advantages, returns)``, both (B, T), 0 where ``mask`` is 0; returns = A + V.
    """
    valid = mask.bool()
    if (valid[:, 1:] & ~valid[:, :-1]).any():  # holes: move each row's valid steps to the front
        order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices  # (B, T)
        packed = [x.gather(1, order) for x in (rewards, values, mask)]
        adv_packed, ret_packed = gae_advantages(*packed, gamma=gamma, lam=lam, bootstrap=bootstrap)
        advantages = torch.zeros_like(adv_packed).scatter(1, order, adv_packed)
        returns = torch.zeros_like(ret_packed).scatter(1, order, ret_packed)
        return advantages, returns
    mask = mask.to(values.dtype)
    B, T = rewards.shape
    # V(s_{t+1}) inside the episode; the bootstrap value right after its last step
    next_mask = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)  # (B, T)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1) * next_mask
    if bootstrap is not None:
        is_last = mask * (1 - next_mask)  # (B, T) one-hot at each row's last step
        next_values = next_values + is_last * bootstrap.to(values.dtype).unsqueeze(1)
    deltas = rewards + gamma * next_values - values  # (B, T)
    advantages = torch.zeros_like(values)
    running = torch.zeros(B, dtype=values.dtype, device=values.device)
    for t in reversed(range(T)):  # T is short (tokens); the recursion is inherently sequential
        running = deltas[:, t] + gamma * lam * next_mask[:, t] * running
        advantages[:, t] = running
    advantages = torch.where(mask.bool(), advantages, torch.zeros_like(advantages))
    returns = torch.where(mask.bool(), advantages + values, torch.zeros_like(values))
    return advantages, returns


def whiten(
    x: Tensor,
    mask: Tensor | None = None,
    *,
    shift_mean: bool = True,
    eps: float = 1e-8,
    ranks: Ranks | None = None,
) -> Tensor:
    """Normalize x to unit variance (and zero mean if ``shift_mean``) over the entries where mask is 1.

    Uses the unbiased variance; masked entries come back as 0. ``shift_mean=False`` keeps the mean,
    which PPO uses for rewards so that their sign survives. With ``ranks`` of a data-parallel run (x
    is this rank's share of the batch) the mean and variance are those of every rank's entries
    together, weighted by count, so the result is what one process gets on the global batch.
    """
    if mask is None:
        mask = torch.ones_like(x)
    m = mask.to(x.dtype)
    if ranks is not None and ranks.distributed:
        mean, std = ranks.mean_and_std(x[m.bool()])
        var = std * std
    else:
        n = m.sum()
        mean = (x * m).sum() / n.clamp_min(1)
        var = (((x - mean) * m) ** 2).sum() / (n - 1).clamp_min(1)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(m.bool(), out, torch.zeros_like(out))


def _groups(rewards: Tensor, group_size: int) -> Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be (B,), got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"group_size={group_size} must divide the batch size {rewards.numel()}")
    return rewards.view(-1, group_size)  # (B/G, G)


def group_advantages(
    rewards: Tensor, group_size: int, *, scale_by_std: bool = True, eps: float = 1e-4
) -> Tensor:
    """GRPO's baseline: (r - mean of its group) / (std of its group + eps); (B,) -> (B,).

    ``scale_by_std=False`` drops the division (one of Dr. GRPO's two changes; the other is the loss
    aggregation), which avoids up-weighting groups whose rewards barely differ. The std is unbiased; a group of one has advantage 0.
    """
    groups = _groups(rewards, group_size)
    centered = groups - groups.mean(dim=1, keepdim=True)
    if scale_by_std and group_size > 1:
        centered = centered / (groups.std(dim=1, keepdim=True) + eps)
    return centered.reshape(-1)


def scaled_group_advantages(
    rewards: Tensor, group_size: int, scale: RewardScaling, *, eps: float = 1e-4, ranks: Ranks | None = None
) -> Tensor:
    """Group-centred rewards (B,) -> (B,), divided by the group's std (GRPO), the whole batch's reward
    std (``batch``: PPO-Lite, TRL's ``scale_rewards="batch"``; with ``ranks`` of a data-parallel run, the
    global batch's) or nothing (``none``: Dr. GRPO)."""
    if scale == "group":
        return group_advantages(rewards, group_size, eps=eps)
    centred = group_advantages(rewards, group_size, scale_by_std=False)
    if scale == "none":
        return centred
    if scale == "batch":
        ranks = ranks or Ranks()
        spread = ranks.std(rewards) if rewards.numel() * ranks.world_size > 1 else rewards.new_tensor(0.0)
        return centred / (spread + eps)
    raise ValueError(f"unknown reward scaling {scale!r}; use 'group', 'batch' or 'none'")


def discounted_returns(rewards: Tensor, mask: Tensor, *, gamma: float) -> Tensor:
    """(B, T) return-to-go sum_k gamma^k r_{t+k} of each valid token over the row's valid tokens
    (holes skipped, as in multi-turn episodes); 0 where ``mask`` is 0. GAE with V = 0 and lambda = 1."""
    return gae_advantages(rewards, torch.zeros_like(rewards), mask, gamma=gamma, lam=1.0)[0]


def turn_returns(rewards: Tensor, mask: Tensor, *, gamma: float) -> tuple[Tensor, Tensor]:
    """Per-turn discounted returns of multi-turn episodes, a turn being a maximal run of valid tokens.

    ``rewards`` (B, T) holds each turn's reward on its tokens (rlenv puts it on the turn's last one).
    Returns ``(returns, turn_of_token)``: (N,) the return G_k = sum_j gamma^j R_{k+j} of every turn of
    the batch, row by row, and (B, T) long, the index of each valid token's turn in ``returns`` (-1 off
    the mask). A single-turn episode is one turn whose return is its reward.
    """
    valid = mask.bool()
    starts = valid & ~torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)  # (B, T)
    turn_in_row = starts.long().cumsum(1) - 1  # (B, T) 0, 1, ... per row
    offsets = torch.cumsum(starts.sum(1), 0) - starts.sum(1)  # (B,) first turn index of each row
    turn_of_token = torch.where(valid, turn_in_row + offsets.unsqueeze(1), torch.full_like(turn_in_row, -1))
    n_turns = int(starts.sum())
    turn_rewards = torch.zeros(n_turns, dtype=rewards.dtype, device=rewards.device)
    turn_rewards.index_add_(0, turn_of_token[valid], rewards[valid])
    returns = torch.zeros_like(turn_rewards)
    for first, count in zip(offsets.tolist(), starts.sum(1).tolist(), strict=True):
        running: Tensor | float = 0.0  # the recursion over a row's few turns is inherently sequential
        for k in reversed(range(first, first + count)):
            running = turn_rewards[k] + gamma * running
            returns[k] = running
    return returns, turn_of_token


def leave_one_out_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """RLOO's baseline: r_i - mean of the other G-1 rewards of its group; (B,) -> (B,)."""
    if group_size < 2:
        raise ValueError(f"leave-one-out needs group_size >= 2 completions per prompt, got {group_size}")
    groups = _groups(rewards, group_size)
    others_mean = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others_mean).reshape(-1)
