"""The held-out evaluation protocol: what a benchmark score is.

A policy is scored on a fixed set of episodes of the task's ``heldout`` prompt split: batch ``i``
resets the vector env with seed ``protocol.seed + i * num_envs`` and samples with a generator seeded
the same way, so every run, algorithm and seed is evaluated on exactly the same prompts (and, when
sampling, the same random numbers). ``greedy=True`` decodes the arg-max token instead.

Alongside the reward it reports the KL of the policy to the reference *on the same episodes*:
at every generated position the exact KL between the two next-token distributions,

    KL_t = sum_v pi(v | s_t) (log pi(v | s_t) - log pi_ref(v | s_t)),

summed over the episode's tokens and averaged over episodes. Being exact at each visited state, it
is well defined for greedy episodes too (a sampled-token estimate is not) and it is never negative.
Both distributions are the models' own softmax at the protocol's temperature, without top-k/top-p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor

from agents.training.config import EVAL_SEED, ConfigError, TrainConfig
from agents.training.policy import LMPolicy, SamplingConfig, position_ids_from_mask
from agents.training.rollout import RolloutBatch, collect_rollouts
from agents.training.transcripts import episode_transcript
from rlenv.registration import has_splits


@dataclass(frozen=True)
class EvalProtocol:
    """Which episodes a held-out score is computed on."""

    episodes: int = 64
    """episodes, rounded up to whole batches"""
    batch_size: int = 32
    """sub-envs of the evaluation vector env"""
    seed: int = EVAL_SEED
    greedy: bool = False
    """arg-max decoding instead of sampling"""
    temperature: float = 1.0
    """sampling temperature (and the temperature of both distributions in the KL)"""
    split: str | None = "heldout"
    """prompt split; None = the env's own default (for envs without splits)"""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.batch_size < 1:
            raise ConfigError(
                f"evaluation needs episodes >= 1 and batch_size >= 1, got {self.episodes}, {self.batch_size}"
            )
        if not self.temperature > 0:
            raise ConfigError(f"evaluation temperature must be > 0, got {self.temperature}")

    @property
    def num_batches(self) -> int:
        return math.ceil(self.episodes / self.batch_size)


def make_eval_envs(
    env_id: str,
    tokenizer_path: str,
    protocol: EvalProtocol,
    env_kwargs: dict[str, Any] | None = None,
    max_new_tokens: int | None = None,
) -> Any:
    """The evaluation vector env: ``protocol.batch_size`` sub-envs on the protocol's split."""
    kwargs = dict(env_kwargs or {})
    if protocol.split is not None:
        if not has_splits(env_id):
            raise ConfigError(
                f"{env_id} has no train/held-out prompt split; evaluate it with split=None (--split none) "
                "or use a named task (`rlenv envs` lists their splits)"
            )
        kwargs["split"] = protocol.split
    if max_new_tokens is not None:
        kwargs["max_new_tokens"] = max_new_tokens
    return gym.make_vec(
        env_id,
        num_envs=protocol.batch_size,
        vectorization_mode="vector_entry_point",
        autoreset_mode="Disabled",
        tokenizer=tokenizer_path,
        **kwargs,
    )


@torch.no_grad()
def episode_kl(
    policy: LMPolicy, reference: LMPolicy, batch: RolloutBatch, vocab_size: int, temperature: float = 1.0
) -> Tensor:
    """(B,) exact KL(pi || pi_ref) summed over each episode's generated tokens (see the module doc)."""
    P = batch.prompt_length
    T = batch.input_ids.shape[1] - P
    ids, mask = batch.input_ids, batch.attention_mask
    positions = position_ids_from_mask(mask)

    def logprobs(model: LMPolicy) -> Tensor:
        logits, _, _ = model.forward_tokens(ids, mask, positions, logits_to_keep=T + 1)
        # column P-1+t predicts token t; the env's action space may be narrower than the head
        return torch.log_softmax(logits[:, :-1, :vocab_size].float() / temperature, dim=-1)  # (B, T, V)

    log_p, log_q = logprobs(policy), logprobs(reference)
    per_token = (log_p.exp() * (log_p - log_q)).sum(-1)  # (B, T)
    # padding columns hold arbitrary logits; where() keeps a NaN there out of the sum
    return torch.where(batch.response_mask.bool(), per_token, torch.zeros_like(per_token)).sum(-1)


@torch.no_grad()
def score_rollouts(
    policy: LMPolicy,
    envs: Any,
    seeds: Sequence[int],
    *,
    options: dict[str, Any] | None = None,
    reference: LMPolicy | None = None,
    temperature: float = 1.0,
    num_samples: int = 2,
    transcripts: int = 0,
) -> dict[str, Any]:
    """One rollout batch per seed on ``envs`` and their summary: ``episodes``, ``reward_mean``,
    ``reward_std``, ``reward_se`` (standard error), ``kl`` (mean episode KL to ``reference``, None
    without one), ``length_mean``, ``eos_rate``, the first ``num_samples`` episodes' texts and, when
    ``transcripts`` > 0, the first that many episodes' role-marked transcripts
    (:func:`agents.training.transcripts.episode_transcript`)."""
    vocab = int(envs.single_action_space.n)
    rewards, lengths, eos, kls = [], [], [], []
    samples: list[dict[str, Any]] = []
    kept_transcripts: list[dict[str, Any]] = []
    for seed in seeds:
        batch = collect_rollouts(policy, envs, seed=seed, options=options)
        rewards.append(batch.rewards.float().cpu())
        lengths.append(batch.response_lengths.float().cpu())
        eos.append(batch.terminated.float().cpu())
        if reference is not None:
            kls.append(episode_kl(policy, reference, batch, vocab, temperature).cpu())
        for j in range(min(num_samples - len(samples), batch.batch_size)):
            samples.append(
                {
                    "prompt": batch.prompts[j],
                    "completion": batch.completions[j],
                    "reward": round(float(batch.rewards[j]), 4),
                }
            )
        for j in range(min(transcripts - len(kept_transcripts), batch.batch_size)):
            kept_transcripts.append(episode_transcript(batch, j))
    r = torch.cat(rewards)
    std = r.std().item() if r.numel() > 1 else 0.0
    return {
        "episodes": int(r.numel()),
        "reward_mean": r.mean().item(),
        "reward_std": std,
        "reward_se": std / math.sqrt(r.numel()),
        "kl": torch.cat(kls).mean().item() if kls else None,
        "length_mean": torch.cat(lengths).mean().item(),
        "eos_rate": torch.cat(eos).mean().item(),
        "samples": samples,
        **({"transcripts": kept_transcripts} if transcripts else {}),
    }


@torch.no_grad()
def evaluate_policy(
    policy: LMPolicy,
    envs: Any,
    protocol: EvalProtocol,
    reference: LMPolicy | None = None,
    num_samples: int = 2,
    transcripts: int = 0,
) -> dict[str, Any]:
    """Score ``policy`` under ``protocol`` on ``envs`` (from :func:`make_eval_envs`).

    Returns :func:`score_rollouts`'s summary plus ``greedy``. The policy's sampling config and
    train/eval mode are restored afterwards.
    """
    if envs.num_envs != protocol.batch_size:
        raise ConfigError(
            f"the eval env has {envs.num_envs} sub-envs but the protocol's batch_size is {protocol.batch_size}"
        )
    saved_sampling, was_training = policy.sampling, policy.training
    policy.sampling = SamplingConfig(temperature=protocol.temperature, top_k=1 if protocol.greedy else 0)
    policy.train(False)
    seeds = [protocol.seed + i * protocol.batch_size for i in range(protocol.num_batches)]
    try:
        summary = score_rollouts(
            policy,
            envs,
            seeds,
            reference=reference,
            temperature=protocol.temperature,
            num_samples=num_samples,
            transcripts=transcripts,
        )
    finally:
        policy.sampling = saved_sampling
        policy.train(was_training)
    return {"episodes": summary.pop("episodes"), "greedy": protocol.greedy, **summary}


def eval_record(summary: dict[str, Any], prefix: str = "eval/") -> dict[str, Any]:
    """The numeric entries of an :func:`evaluate_policy` summary as metrics.jsonl keys (``eval/reward_mean`` ...)."""
    keys = ("reward_mean", "reward_std", "reward_se", "kl", "length_mean", "eos_rate")
    return {prefix + k: summary[k] for k in keys}


class HeldoutEvaluator:
    """The trainer's periodic evaluation (``TrainConfig.eval_every``): held-out env + frozen reference.

    ``reference`` is the run's frozen reference when the algorithm keeps one; otherwise a frozen copy
    of the initial model is made here (one extra model in memory, only when evaluation is on).
    """

    def __init__(
        self, config: TrainConfig, policy: LMPolicy, reference: LMPolicy | None, model_path: str
    ) -> None:
        assert isinstance(config.env, str)  # TrainConfig refuses eval_every with an env factory
        self.protocol = protocol_for(config)
        kwargs = {k: v for k, v in config.env_kwargs().items() if k != "split"}
        self.envs = make_eval_envs(config.env, model_path, self.protocol, kwargs, config.max_new_tokens)
        self.policy = policy
        if reference is None:
            reference = LMPolicy.from_pretrained(model_path, device=policy.device).reference()
        self.reference = reference

    def __call__(self) -> dict[str, Any]:
        return eval_record(evaluate_policy(self.policy, self.envs, self.protocol, self.reference))

    def close(self) -> None:
        self.envs.close()


def protocol_for(config: TrainConfig, **changes: Any) -> EvalProtocol:
    """The protocol the trainer uses for ``config`` (so a bench can reproduce its evaluation)."""
    assert config.temperature is not None  # resolved when the config was built
    base = EvalProtocol(
        episodes=config.eval_episodes,
        batch_size=min(config.eval_episodes, 32),
        greedy=config.eval_greedy,
        temperature=config.temperature,
    )
    return replace(base, **changes)
