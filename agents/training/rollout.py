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
from typing import Any, Literal

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import Tensor

from agents.training.kv_cache import preallocated_cache
from agents.training.policy import LMPolicy, position_ids_from_mask


@dataclass
class RolloutBatch:
    """B finished episodes. Column P + t of the (B, P+T) tensors is generated position t.

    ``response_mask`` is 1 on the tokens the *policy* wrote (EOS included) and 0 after the episode
    ended and on tokens a multi-turn env appended between turns: those are in ``input_ids`` and
    ``attention_mask`` (the context) but out of every loss, KL and value target. ``actions``,
    ``logprobs`` and ``values`` hold pad / 0 where the mask is 0. ``values[:, t]`` is the value of
    the state before token t. ``rewards`` is each episode's total reward; ``token_rewards`` (B, T)
    puts each step's reward on the column of the action that earned it (the last token for a
    terminal reward; every turn's end for per-turn rewards).
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
    token_rewards: Tensor | None = None  # (B, T) float
    conversations: list[list[tuple[str, str]]] = field(default_factory=list)
    """each episode's turns as (role, text), from the env's last ``info``: a chat env's ``messages``,
    a multi-turn env's ``turns`` (roles ``policy`` / ``env``); empty for single-turn envs"""
    low_precision: bool = False
    """``logprobs``/``values`` came from reduced-precision (bf16) forwards: right for sampling, not for
    an update; algorithms that learn from them recompute them in the update's precision"""

    @property
    def batch_size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def response_lengths(self) -> Tensor:
        """(B,) number of tokens the policy generated per episode."""
        return self.response_mask.sum(-1).long()

    @property
    def last_policy_column(self) -> Tensor:
        """(B,) column of each episode's last policy token (where a terminal reward lands)."""
        T = self.response_mask.shape[1]
        return T - 1 - self.response_mask.flip(1).argmax(1)


@torch.no_grad()
def collect_rollouts(
    policy: LMPolicy,
    envs: Any,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    with_values: bool = False,
    cache: Literal["dynamic", "preallocated"] = "preallocated",
    share_prompt_prefill: bool = True,
    autocast_dtype: torch.dtype | None | Literal["policy"] = "policy",
) -> RolloutBatch:
    """Run one synchronous batch of episodes (one per sub-env) and return it as a :class:`RolloutBatch`.

    ``envs`` is an rlenv vector env made with ``autoreset_mode="Disabled"``. ``seed`` seeds both the
    env reset and the sampling generator, so the same seed gives the same batch. ``options`` go to
    ``envs.reset`` (e.g. ``{"group_size": G}``). Runs under ``torch.no_grad`` (not inference mode:
    the returned tensors feed autograd-tracked losses later).

    Multi-turn envs (``policy_mask`` in the observation) append their reply's ids after the action
    that ended a turn (``info["env_ids"]``); those rows then feed ``[action] + reply`` through the KV
    cache in the same forward as the other rows' single token (a ragged block, right-padded with
    masked pad tokens), and the next token is sampled from the logits at each row's last real token.

    Work savers, on by default: each gives the same tokens and logprobs as the plain path
    (``cache="dynamic", share_prompt_prefill=False``) to float tolerance (tests/agents/test_rollout_work_savers.py):

    - ``cache="preallocated"``: keys and values are written in place into buffers sized for the
      whole rollout (:mod:`agents.training.kv_cache`) instead of being concatenated on every step
      (``"dynamic"``: transformers' ``DynamicCache``).
    - ``share_prompt_prefill``: rows with the same (padded) prompt — GRPO/RLOO's groups — prefill it
      once; the prompt's cache and first logits are then repeated to every row of the group. Left
      padding common to every row is dropped from the prefill and the cache. Without groups it
      only drops that padding.
    - ``autocast_dtype``: the rollout's forwards under this autocast dtype (e.g. ``torch.bfloat16``;
      None = fp32; ``"policy"`` = the policy's own :attr:`LMPolicy.autocast_dtype`). A lower one than
      the policy's marks the batch ``low_precision``, so the update recomputes what it learns from.
    """
    if autocast_dtype == "policy":
        autocast_dtype = policy.autocast_dtype
    with policy.autocast(autocast_dtype), policy.casts_held():
        batch = _collect(policy, envs, seed, options, with_values, cache, share_prompt_prefill)
    batch.low_precision = autocast_dtype is not None and policy.autocast_dtype is None  # the update runs in fp32
    return batch


def _collect(policy: LMPolicy, envs: Any, seed: int | None, options: dict[str, Any] | None, with_values: bool,
             cache_kind: str, share_prompt_prefill: bool) -> RolloutBatch:
    _check_envs(policy, envs)
    if cache_kind not in ("dynamic", "preallocated"):
        raise ValueError(f"cache must be 'dynamic' or 'preallocated', got {cache_kind!r}")
    device = policy.device
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    with policy.outside_autocast():
        obs, info = envs.reset(seed=seed, options=options)
    P, T, B = int(envs.max_prompt_tokens), int(envs.max_new_tokens), int(envs.num_envs)
    multi_turn = "policy_mask" in obs
    prompts = [str(p) for p in info["prompt"]]

    input_ids = torch.from_numpy(obs["input_ids"]).to(device)  # (B, P+T)
    prompt_mask = torch.from_numpy(obs["attention_mask"][:, :P]).to(device).long()  # (B, P)
    # The prompt columns the cache holds: all P, or (share_prompt_prefill) from the first one that
    # some row uses: left padding common to every row is never attended, so it need not be cached.
    first = int(prompt_mask.any(0).long().argmax()) if share_prompt_prefill else 0
    Pc = P - first
    # the attention mask of the KV cache's columns (the carried rows'); column Pc + t switches on
    # when token t is fed. Ragged env replies pad the cache, so it can outgrow Pc + T.
    cache_mask = torch.zeros(B, Pc + T, dtype=torch.long, device=device)
    cache_mask[:, :Pc] = prompt_mask[:, first:]
    cache_len = Pc
    position_ids = position_ids_from_mask(cache_mask[:, :Pc])  # (B, Pc)

    cache = _new_cache(policy, cache_kind, capacity=Pc + T)
    logits, values, cache = _prefill(policy, input_ids[:, first:P], cache_mask[:, :Pc], position_ids, cache,
                                     with_values, share_prompt_prefill)
    last_logits = logits[:, -1]  # (R, V) next-token logits of each carried row
    last_values = values[:, -1] if values is not None else None  # (R,)
    next_position = position_ids[:, -1:] + 1  # (R, 1)
    pad = torch.full((B,), policy.pad_token_id, dtype=torch.long, device=device)
    zeros = torch.zeros(B, device=device)
    active = torch.ones(B, dtype=torch.bool, device=device)  # device copy of ~done, for masking
    # The model carries R <= B rows: finished rows ride along (pad, mask 0) until at most half of the
    # carried rows are live, then the batch and its cache shrink to the live rows. Halving bounds
    # the cache copies to log2(B) while late steps no longer pay for long-finished episodes.
    rows = np.arange(B)  # (R,) sub-env index of each carried row
    rows_t = torch.arange(B, device=device)
    column = np.zeros(B, dtype=np.int64)  # each sub-env's next response column (env replies advance it)
    row_index = torch.arange(B, device=device)

    logprobs_out = torch.zeros(B, T, device=device)
    values_out = torch.zeros(B, T, device=device) if with_values else None
    token_rewards = np.zeros((B, T), dtype=np.float64)
    rewards = np.zeros(B, dtype=np.float64)
    terminated = np.zeros(B, dtype=bool)
    truncated = np.zeros(B, dtype=bool)
    completions: list[str] = [""] * B
    conversations: list[list[tuple[str, str]]] = [[] for _ in range(B)]
    components: dict[str, np.ndarray] = {}

    for _ in range(T):  # each step writes at least one column, so T steps always suffice
        sampled, sampled_logprobs = policy.sample(last_logits, generator)  # (R,), (R,)
        actions = torch.where(active, pad.index_copy(0, rows_t, sampled), pad)  # (B,)
        live = np.flatnonzero(~(terminated | truncated))  # the sub-envs that act on this step
        at = (torch.from_numpy(live).to(device), torch.from_numpy(column[live]).to(device))
        logprobs_out[at] = zeros.index_copy(0, rows_t, sampled_logprobs)[at[0]]
        if values_out is not None and last_values is not None:  # both or neither: with_values
            values_out[at] = zeros.index_copy(0, rows_t, last_values)[at[0]]
        # the one host sync per step: the env is numpy
        with policy.outside_autocast():  # the env's reward model runs at its own precision
            obs, reward, term, trunc, step_info = envs.step(actions.cpu().numpy())
        rewards += reward
        token_rewards[live, column[live]] += reward[live]
        terminated |= term
        truncated |= trunc
        replies = _env_replies(step_info, B) if multi_turn else {}
        column[live] += 1
        for i, ids in replies.items():
            column[i] += len(ids)
        if "_completion" in step_info:
            _record_endings(step_info, completions, components, B, conversations)
        done = terminated | truncated
        if done.all():
            break
        if (term | trunc).any():
            active &= ~torch.from_numpy(term | trunc).to(device)
            keep_rows = np.flatnonzero(~done[rows])  # positions among the carried rows
            if 2 * keep_rows.size <= rows.size:
                keep = torch.from_numpy(keep_rows).to(device)
                cache.batch_select_indices(keep)
                rows, rows_t = rows[keep_rows], rows_t[keep]
                cache_mask, next_position = cache_mask[keep], next_position[keep]
        # the block each carried row feeds: its action, then the env's reply if its turn just ended
        width = 1 + max((len(replies.get(int(i), ())) for i in rows), default=0)
        block = actions[rows_t].unsqueeze(1)  # (R, 1)
        block_mask = active[rows_t].long().unsqueeze(1)  # (R, 1)
        reply_len = torch.zeros(rows.size, dtype=torch.long, device=device)
        if width > 1:
            block = torch.cat([block, torch.full((rows.size, width - 1), policy.pad_token_id, device=device)], 1)
            block_mask = torch.cat([block_mask, torch.zeros(rows.size, width - 1, dtype=torch.long, device=device)], 1)
            for r, sub_env in enumerate(rows):
                ids = replies.get(int(sub_env), ())
                if ids:
                    block[r, 1 : 1 + len(ids)] = torch.tensor(ids, device=device)
                    block_mask[r, 1 : 1 + len(ids)] = 1
                    reply_len[r] = len(ids)
        if cache_len + width > cache_mask.shape[1]:
            grow = torch.zeros(rows.size, max(T, width), dtype=torch.long, device=device)
            cache_mask = torch.cat([cache_mask, grow], 1)
        cache_mask[:, cache_len : cache_len + width] = block_mask
        positions = next_position + torch.arange(width, device=device)  # pads' positions are never attended
        logits, values, cache = policy.forward_tokens(
            block, cache_mask[:, : cache_len + width], positions, cache=cache, logits_to_keep=width,
            with_values=with_values,
        )
        cache_len += width
        last = row_index[: rows.size]
        last_logits = logits[last, reply_len]  # (R, V) at each row's last real token
        last_values = values[last, reply_len] if values is not None else None
        next_position = next_position + 1 + reply_len.unsqueeze(1)

    final = torch.from_numpy(obs["input_ids"]).to(device)  # (B, P+T): every row, frozen once done
    final_mask = torch.from_numpy(obs["attention_mask"]).to(device).long()
    written = obs["policy_mask"][:, P:] if multi_turn else obs["attention_mask"][:, P:]
    response_mask = torch.from_numpy(np.asarray(written)).to(device).float()  # (B, T)
    response_actions = torch.where(response_mask.bool(), final[:, P:], torch.full_like(final[:, P:], policy.pad_token_id))
    return RolloutBatch(
        input_ids=final,
        attention_mask=final_mask,
        response_mask=response_mask,
        actions=response_actions,
        logprobs=logprobs_out * response_mask,
        values=values_out * response_mask if values_out is not None else None,
        rewards=torch.from_numpy(rewards).float().to(device),
        terminated=torch.from_numpy(terminated).to(device),
        truncated=torch.from_numpy(truncated).to(device),
        prompts=prompts,
        completions=completions,
        conversations=conversations,
        reward_components=components,
        prompt_length=P,
        token_rewards=torch.from_numpy(token_rewards).float().to(device),
    )


def _env_replies(info: dict[str, Any], B: int) -> dict[int, tuple[int, ...]]:
    """Sub-env -> the token ids its env appended on this step (multi-turn envs; only non-empty ones)."""
    if "env_ids" not in info:
        return {}
    present = info.get("_env_ids", np.ones(B, dtype=bool))
    return {int(i): tuple(int(t) for t in info["env_ids"][i]) for i in np.flatnonzero(present)
            if len(info["env_ids"][i])}


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


def _new_cache(policy: LMPolicy, kind: str, capacity: int) -> Any:
    from transformers import DynamicCache

    if kind == "preallocated":
        return preallocated_cache(policy.model.config, capacity)
    return DynamicCache(config=policy.model.config)


def _prefill(policy: LMPolicy, ids: Tensor, mask: Tensor, position_ids: Tensor, cache: Any, with_values: bool,
             share: bool) -> tuple[Tensor, Tensor | None, Any]:
    """The prompts' forward: logits (B, 1, V), values (B, 1) | None and the cache of B rows.

    With ``share``, only the distinct prompt rows (ids and mask alike) run through the model; the
    cache and outputs are then indexed back to all B rows (one copy of the prompt's cache).
    """
    if share:
        distinct, inverse = torch.unique(torch.cat([ids, mask], 1), dim=0, return_inverse=True)  # (U, 2P), (B,)
        if distinct.shape[0] < ids.shape[0]:
            P = ids.shape[1]
            logits, values, cache = policy.forward_tokens(
                distinct[:, :P], distinct[:, P:], position_ids_from_mask(distinct[:, P:]), cache=cache,
                logits_to_keep=1, with_values=with_values,
            )
            cache.batch_select_indices(inverse)
            return logits[inverse], values[inverse] if values is not None else None, cache
    return policy.forward_tokens(ids, mask, position_ids, cache=cache, logits_to_keep=1, with_values=with_values)


def _record_endings(info: dict[str, Any], completions: list[str], components: dict[str, np.ndarray], B: int,
                    conversations: list[list[tuple[str, str]]]) -> None:
    """Copy the texts, turns and reward components of the episodes that ended on this step."""
    ended = np.flatnonzero(info["_completion"])
    for i in ended:
        completions[i] = str(info["completion"][i])
        if "messages" in info and info["_messages"][i]:
            conversations[i] = [(m["role"], m["content"]) for m in info["messages"][i]]
        elif "turns" in info and info["_turns"][i]:
            conversations[i] = [(role, text) for role, text in info["turns"][i]]
    parts = info.get("reward_components")
    if isinstance(parts, dict):
        for name, values in parts.items():
            if name.startswith("_"):
                continue
            store = components.setdefault(name, np.zeros(B, dtype=np.float64))
            mask = parts.get(f"_{name}", info["_completion"])
            store[mask] = np.asarray(values)[mask]
