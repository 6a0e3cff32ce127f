"""``collect_rollouts``: the vector env drives generation, one KV-cached forward per step.

The loop is the RL loop: reset the env, prefill the prompts once, then per step sample a token for
every sub-env from the last logits, ``envs.step(actions)``, and feed the new tokens (one incremental
forward for the whole batch) until every sub-env is done. The env decides when an episode ends and
what it earns; the policy only ever sees the tokens. Finished sub-envs ride along with a pad token
whose attention-mask column is 0 until at most half of the carried rows are still live; then the
batch and its KV cache shrink to the live rows (at most log2(B) cache copies per rollout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import Tensor

from agents.policy import LMPolicy, position_ids_from_mask


@dataclass
class RolloutBatch:
    """B finished episodes. Column P + t of the (B, P+T) tensors is response token t.

    ``response_mask`` is 1 on generated tokens (EOS included) and 0 after the episode ended;
    ``actions``, ``logprobs`` and ``values`` hold pad / 0 there. ``values[:, t]`` is the value of the
    state before action t. ``rewards`` is the env's terminal reward per episode.
    """

    input_ids: Tensor  # (B, P+T) long, prompt left-padded into [0, P)
    attention_mask: Tensor  # (B, P+T) long
    response_mask: Tensor  # (B, T) float
    actions: Tensor  # (B, T) long
    logprobs: Tensor  # (B, T) float, under the sampling distribution at rollout time
    values: Tensor | None  # (B, T) float
    rewards: Tensor  # (B,) float
    terminated: Tensor  # (B,) bool
    truncated: Tensor  # (B,) bool
    prompts: list[str]
    completions: list[str]
    reward_components: dict[str, np.ndarray] = field(default_factory=dict)
    prompt_length: int = 0

    @property
    def batch_size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def response_lengths(self) -> Tensor:
        """(B,) number of generated tokens per episode."""
        return self.response_mask.sum(-1).long()


@torch.no_grad()
def collect_rollouts(
    policy: LMPolicy,
    envs: Any,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    with_values: bool = False,
) -> RolloutBatch:
    """Run one synchronous batch of episodes (one per sub-env) and return it as a :class:`RolloutBatch`.

    ``envs`` is an rlenv vector env made with ``autoreset_mode="Disabled"``. ``seed`` seeds both the
    env reset and the sampling generator, so the same seed gives the same batch. ``options`` go to
    ``envs.reset`` (e.g. ``{"group_size": G}``). Runs under ``torch.no_grad`` (not inference mode:
    the returned tensors feed autograd-tracked losses later).
    """
    _check_envs(policy, envs)
    device = policy.device
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    obs, info = envs.reset(seed=seed, options=options)
    P, T, B = int(envs.max_prompt_tokens), int(envs.max_new_tokens), int(envs.num_envs)
    prompts = [str(p) for p in info["prompt"]]

    input_ids = torch.from_numpy(obs["input_ids"]).to(device)  # (B, P+T)
    prompt_mask = torch.from_numpy(obs["attention_mask"][:, :P]).to(device).long()  # (B, P)
    # one mask buffer for the carried rows: column P+t switches on when token t is fed
    attention_mask = torch.zeros(B, P + T, dtype=torch.long, device=device)
    attention_mask[:, :P] = prompt_mask
    position_ids = position_ids_from_mask(prompt_mask)  # (B, P)

    logits, values, cache = policy.forward_tokens(
        input_ids[:, :P], attention_mask[:, :P], position_ids, cache=_new_cache(policy),
        logits_to_keep=1, with_values=with_values,
    )
    next_position = position_ids[:, -1:] + 1  # (R, 1)
    pad = torch.full((B,), policy.pad_token_id, dtype=torch.long, device=device)
    zeros = torch.zeros(B, device=device)
    active = torch.ones(B, dtype=torch.bool, device=device)  # device copy of ~done, for masking
    # The model carries R <= B rows: finished rows ride along (pad, mask 0) until at most half of the
    # carried rows are live, then the batch and its cache shrink to the live rows. Halving bounds
    # the cache copies to log2(B) while late steps no longer pay for long-finished episodes.
    rows = np.arange(B)  # (R,) sub-env index of each carried row
    rows_t = torch.arange(B, device=device)

    mask_per_step: list[Tensor] = []  # (B,) float: 1 where the sub-env acted on that step
    actions_per_step: list[Tensor] = []
    logprobs_per_step: list[Tensor] = []
    values_per_step: list[Tensor] = []
    rewards = np.zeros(B, dtype=np.float64)
    terminated = np.zeros(B, dtype=bool)
    truncated = np.zeros(B, dtype=bool)
    completions: list[str] = [""] * B
    components: dict[str, np.ndarray] = {}

    for t in range(T):
        sampled, sampled_logprobs = policy.sample(logits[:, -1], generator)  # (R,), (R,)
        step_mask = active.float()  # (B,)
        actions = torch.where(active, pad.index_copy(0, rows_t, sampled), pad)  # (B,)
        mask_per_step.append(step_mask)
        actions_per_step.append(actions)
        logprobs_per_step.append(zeros.index_copy(0, rows_t, sampled_logprobs) * step_mask)
        if values is not None:
            values_per_step.append(zeros.index_copy(0, rows_t, values[:, -1]) * step_mask)
        # the one host sync per step: the env is numpy
        _, reward, term, trunc, step_info = envs.step(actions.cpu().numpy())
        rewards += reward
        terminated |= term
        truncated |= trunc
        if "_completion" in step_info:
            _record_endings(step_info, completions, components, B)
        done = terminated | truncated
        if done.all():
            break
        if (term | trunc).any():
            active &= ~torch.from_numpy(term | trunc).to(device)
            live = np.flatnonzero(~done[rows])  # positions among the carried rows
            if 2 * live.size <= rows.size:
                keep = torch.from_numpy(live).to(device)
                cache.batch_select_indices(keep)
                rows, rows_t = rows[live], rows_t[keep]
                attention_mask, next_position = attention_mask[keep], next_position[keep]
        attention_mask[:, P + t] = active[rows_t]
        logits, values, cache = policy.forward_tokens(
            actions[rows_t].unsqueeze(1), attention_mask[:, : P + t + 1], next_position,
            cache=cache, with_values=with_values,
        )
        next_position = next_position + 1

    response_mask = _pad_columns(torch.stack(mask_per_step, 1), T, 0.0)  # (B, T)
    response_actions = _pad_columns(torch.stack(actions_per_step, 1), T, policy.pad_token_id)  # (B, T)
    final_ids = torch.cat([input_ids[:, :P], response_actions], dim=1)
    return RolloutBatch(
        input_ids=final_ids,
        attention_mask=torch.cat([prompt_mask, response_mask.long()], dim=1),
        response_mask=response_mask,
        actions=response_actions,
        logprobs=_pad_columns(torch.stack(logprobs_per_step, 1), T, 0.0),
        values=_pad_columns(torch.stack(values_per_step, 1), T, 0.0) if with_values else None,
        rewards=torch.from_numpy(rewards).float().to(device),
        terminated=torch.from_numpy(terminated).to(device),
        truncated=torch.from_numpy(truncated).to(device),
        prompts=prompts,
        completions=completions,
        reward_components=components,
        prompt_length=P,
    )


def _check_envs(policy: LMPolicy, envs: Any) -> None:
    mode = getattr(envs, "autoreset_mode", None)
    if mode != AutoresetMode.DISABLED:
        raise ValueError(
            f"collect_rollouts needs a vector env with autoreset_mode='Disabled' (got {mode!r}); make it "
            "with gym.make_vec(id, num_envs=N, vectorization_mode='vector_entry_point', autoreset_mode='Disabled')"
        )
    vocab = int(envs.single_action_space.n)
    if vocab != policy.num_actions:
        raise ValueError(
            f"the env's action space has {vocab} tokens but the policy acts over {policy.num_actions} (its "
            "tokenizer's size); build the env with the policy's tokenizer (tokenizer=policy.tokenizer)"
        )


def _new_cache(policy: LMPolicy) -> Any:
    from transformers import DynamicCache

    return DynamicCache(config=policy.model.config)


def _pad_columns(x: Tensor, width: int, value: float) -> Tensor:
    """Right-pad (B, S) to (B, width): episodes that all ended early leave the last columns unused."""
    if x.shape[1] == width:
        return x
    return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)


def _record_endings(info: dict[str, Any], completions: list[str], components: dict[str, np.ndarray], B: int) -> None:
    """Copy the texts and reward components of the episodes that ended on this step."""
    ended = np.flatnonzero(info["_completion"])
    for i in ended:
        completions[i] = str(info["completion"][i])
    parts = info.get("reward_components")
    if isinstance(parts, dict):
        for name, values in parts.items():
            if name.startswith("_"):
                continue
            store = components.setdefault(name, np.zeros(B, dtype=np.float64))
            mask = parts.get(f"_{name}", info["_completion"])
            store[mask] = np.asarray(values)[mask]
