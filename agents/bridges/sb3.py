"""Stable-Baselines3 bridge: an HF causal LM as the actor-critic of stock SB3 PPO / A2C.

``LMActorCriticPolicy`` plugs a causal LM into SB3's own policy skeleton instead of rewriting it:

- the *features extractor* is the LM: one forward over the observation gives, at the last real
  token of each row, the next-token logits (V,) and the last hidden state (H,);
- the *mlp extractor* only splits those features into ``latent_pi`` (the logits) and
  ``latent_vf`` (the hidden state);
- ``action_net`` is the identity, so SB3's ``CategoricalDistribution`` is the LM's next-token
  distribution; ``value_net`` is a ``Linear(H, 1)`` value head on the shared trunk.

Every inherited method (``forward``, ``evaluate_actions``, ``predict``, ``predict_values``) then
works unchanged, and so does sb3-contrib's maskable variant (:mod:`agents.bridges.nlpo`).

Usage (``import agents`` does not import this module, so SB3 costs nothing until asked for)::

    from stable_baselines3 import PPO
    from agents.bridges.sb3 import LMActorCriticPolicy

    env = gym.make("rlenv/PositiveReview-v0")
    model = PPO(LMActorCriticPolicy, env, policy_kwargs=dict(model=rlenv.DEFAULT_MODEL))
    model.learn(4096)

SB3 is per-transition, but an episode's observations are prefixes of each other, so the extractor
does an episode's work once (:mod:`agents.bridges.sb3_forward`): while acting it keeps a KV cache per
sub-env (each step feeds one token), and in the update it scores the transitions of one episode
with one forward. For the update to see whole episodes, give PPO the :class:`EpisodeRolloutBuffer`
(minibatches of shuffled whole episodes instead of shuffled transitions)::

    model = PPO(LMActorCriticPolicy, env, policy_kwargs=dict(model=rlenv.DEFAULT_MODEL),
                rollout_buffer_class=EpisodeRolloutBuffer)

Both give SB3 the log-probs, values and entropies of one forward per observation to float rounding;
``benchmarks/sb3_vs_native.py`` measures what is left against the native batched agents.

``SB3VectorEnv`` exposes rlenv's native batched :class:`rlenv.TextGenVectorEnv` as an SB3
``VecEnv`` (:func:`make_sb3_vec_env` builds one from an env id), so SB3 steps N episodes with one
numpy batch and one reward-model call per step instead of ``DummyVecEnv``'s N Python envs.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.buffers import DictRolloutBuffer
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples, Schedule
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from agents.bridges.sb3_forward import ActingCache, prefix_grouped_forward
from agents.training.policy import check_model_dir
from reward_models.hf_progress import transformers_bars_hidden

__all__ = [
    "EpisodeRolloutBuffer",
    "LMActorCriticPolicy",
    "LMFeaturesExtractor",
    "LMPolicyMixin",
    "SB3VectorEnv",
    "load_causal_lm",
    "make_sb3_vec_env",
]

# Arguments that would break the "LM is the whole network" layout; rejected with a fix.
_FIXED_KWARGS = (
    "net_arch",
    "features_extractor_class",
    "features_extractor_kwargs",
    "share_features_extractor",
)


def load_causal_lm(
    model: str | Path | PreTrainedModel, *, trust_remote_code: bool = False
) -> PreTrainedModel:
    """Return ``model`` itself, or load a causal LM from a local directory (never from a hub;
    safetensors weights only, checked as :meth:`agents.training.policy.LMPolicy.from_pretrained` does)."""
    if isinstance(model, PreTrainedModel):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        check_model_dir(path)
        with transformers_bars_hidden():
            return AutoModelForCausalLM.from_pretrained(
                str(path), use_safetensors=True, trust_remote_code=trust_remote_code
            )
    raise TypeError(
        f"policy_kwargs['model'] must be a local path or a transformers PreTrainedModel, got {type(model).__name__}"
    )


def check_observation_space(space: spaces.Space) -> None:
    """Raise unless ``space`` is rlenv's ``Dict`` observation with ``input_ids`` and ``attention_mask``."""
    if not (isinstance(space, spaces.Dict) and {"input_ids", "attention_mask"} <= set(space.spaces)):
        raise ValueError(
            f"the LM policies need rlenv's Dict observation with 'input_ids' and 'attention_mask', got {space}; "
            "use an rlenv env (gym.make('rlenv/...')) or one with the same observation layout"
        )


def last_token_forward(
    model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Next-token logits and last hidden state at each row's last real token.

    Args:
        input_ids: (B, L) token ids, any numeric dtype (SB3 hands them over as float32).
        attention_mask: (B, L), 1 on real tokens. Real tokens may sit anywhere (rlenv left-pads the
            prompt and right-pads the generation); position ids are counted over real tokens only.

    Returns:
        ``(logits (B, V_model), hidden (B, H))`` in float32.
    """
    ids, mask = input_ids.long(), attention_mask.long()
    B, L = ids.shape
    cols = torch.arange(L, device=ids.device)
    # Roll each row right so that its last real token lands in column L-1: then one logit column
    # (logits_to_keep=1) serves every row, instead of (B, L, V) logits.
    last = (L - 1) - mask.flip(-1).argmax(-1)  # (B,)
    src = (cols[None, :] - ((L - 1) - last)[:, None]) % L  # (B, L)
    ids, mask = ids.gather(1, src), mask.gather(1, src)
    # Drop the leading columns that are padding in every row; they change nothing.
    first = int(mask.argmax(-1).min()) if bool(mask.any()) else L - 1
    ids, mask = ids[:, first:], mask[:, first:]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=position_ids,
        use_cache=False,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1].float(), out.hidden_states[-1][:, -1].float()


class LMFeaturesExtractor(BaseFeaturesExtractor):
    """The causal LM as SB3 features extractor: obs -> ``[logits (V) | hidden (H)]``, shape (B, V + H).

    ``V`` is the env's action-space size (the model's logits are cut to it when its embedding
    matrix is padded beyond the tokenizer), ``H`` the model's hidden size.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        model: str | Path | PreTrainedModel,
        vocab_size: int,
        trust_remote_code: bool = False,
    ) -> None:
        check_observation_space(observation_space)
        lm = load_causal_lm(model, trust_remote_code=trust_remote_code)
        model_vocab = lm.get_output_embeddings().weight.shape[0]
        if model_vocab < vocab_size:
            raise ValueError(
                f"the model's vocabulary has {model_vocab} tokens but the env's action space has {vocab_size}; "
                "use the env's tokenizer with this model, or call model.resize_token_embeddings(len(tokenizer))"
            )
        hidden_size = int(lm.config.get_text_config().hidden_size)
        super().__init__(observation_space, features_dim=vocab_size + hidden_size)
        self.model = lm
        self.model_source = model  # what to rebuild from when SB3 reloads the policy
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.episode_work_savers = True
        """False: one plain forward per observation (``last_token_forward``), as before the savers"""
        self.acting_cache = ActingCache()

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        ids, mask = observations["input_ids"], observations["attention_mask"]
        if not self.episode_work_savers:
            logits, hidden = last_token_forward(self.model, ids, mask)
        elif torch.is_grad_enabled():  # the update: one forward per episode of the minibatch
            logits, hidden = prefix_grouped_forward(self.model, ids, mask)
        elif self.acting_cache.usable(self.model) and self._is_acting_batch(ids):
            # acting: one token per step
            logits, hidden = self.acting_cache(self.model, ids, mask)
        else:
            logits, hidden = prefix_grouped_forward(self.model, ids, mask)
        return torch.cat([logits[:, : self.vocab_size], hidden], dim=-1)  # (B, V + H)

    def _is_acting_batch(self, ids: Tensor) -> bool:
        """The batch the cache holds, or the first one: a call of another size (SB3's bootstrap of a
        few truncated episodes, a single ``predict``) is answered apart and leaves the cache alone."""
        held = self.acting_cache.tokens
        return held is None or len(held) == ids.shape[0]


class _SplitLatent(nn.Module):
    """SB3's ``mlp_extractor`` slot: ``[logits | hidden]`` -> (latent_pi = logits, latent_vf = hidden)."""

    def __init__(self, vocab_size: int, hidden_size: int) -> None:
        super().__init__()
        self.latent_dim_pi = vocab_size
        self.latent_dim_vf = hidden_size

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: Tensor) -> Tensor:
        return features[:, : self.latent_dim_pi]

    def forward_critic(self, features: Tensor) -> Tensor:
        return features[:, self.latent_dim_pi :]


class LMPolicyMixin:
    """What turns an SB3 actor-critic policy class into an LM-backed one (see the module docstring).

    Mixed in before :class:`ActorCriticPolicy` here and before sb3-contrib's
    ``MaskableActorCriticPolicy`` in :mod:`agents.bridges.nlpo`.

    Args (via ``policy_kwargs``):
        model: local model directory or a ``PreTrainedModel`` (trained in place). Prefer a path:
            ``algo.save()`` then stores only the path plus the trained weights, while an instance is
            pickled into the zip as well.
        lm_dropout: keep the LM's dropout on during updates (default off: dropout makes the PPO
            ratio noisy, and RLHF implementations switch it off).
        trust_remote_code: passed to ``from_pretrained``; never implied.
        Any other ``ActorCriticPolicy`` argument (``optimizer_class``, ``optimizer_kwargs`` ...),
        except the network-layout ones (``net_arch``, ``features_extractor_*``).
    """

    features_extractor: LMFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        model: str | Path | PreTrainedModel | None = None,
        *,
        lm_dropout: bool = False,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> None:
        if model is None:
            raise ValueError(
                "LM policies need a model: PPO(LMActorCriticPolicy, env, policy_kwargs=dict(model=PATH_OR_MODEL))"
            )
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"the LM policies act in Discrete(vocab_size) token spaces, got {action_space}")
        check_observation_space(observation_space)
        fixed = sorted(k for k in _FIXED_KWARGS if k in kwargs)
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)} cannot be set for an LM policy (the LM is the whole network); remove them "
                "from policy_kwargs"
            )
        kwargs.pop("ortho_init", None)  # the LM keeps its weights; only the value head is initialised
        self.lm_dropout = lm_dropout
        self.trust_remote_code = trust_remote_code
        super().__init__(  # type: ignore[call-arg]
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            features_extractor_class=LMFeaturesExtractor,
            features_extractor_kwargs=dict(
                model=model, vocab_size=int(action_space.n), trust_remote_code=trust_remote_code
            ),
            share_features_extractor=True,
            **kwargs,
        )
        self.train(self.training)  # type: ignore[attr-defined]  # nn.Module's, via the SB3 base; dropout off from the start, not only after SB3's first set_training_mode

    @property
    def lm(self) -> PreTrainedModel:
        """The causal LM being trained (save it with ``policy.lm.save_pretrained(dir)``)."""
        return self.features_extractor.model

    def _build_mlp_extractor(self) -> None:
        fe = self.features_extractor
        self.mlp_extractor = _SplitLatent(fe.vocab_size, fe.hidden_size)

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        self.action_net = nn.Identity()  # the LM's logits are the Categorical's logits
        self.value_net = nn.Linear(self.features_extractor.hidden_size, 1)
        self.init_weights(self.value_net, gain=1.0)  # type: ignore[attr-defined]
        self.optimizer = self.optimizer_class(  # type: ignore[attr-defined]
            self.parameters(),  # type: ignore[attr-defined]
            lr=lr_schedule(1),
            **self.optimizer_kwargs,  # type: ignore[attr-defined]
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        for key in (*_FIXED_KWARGS, "ortho_init"):
            data.pop(key, None)
        data.update(
            model=self.features_extractor.model_source,
            lm_dropout=self.lm_dropout,
            trust_remote_code=self.trust_remote_code,
        )
        return data

    def train(self, mode: bool = True) -> Any:
        switched = mode != self.training  # type: ignore[attr-defined]
        super().train(mode)  # type: ignore[misc]
        if not self.lm_dropout:
            self.features_extractor.model.eval()  # gradients still flow; only dropout is off
        # SB3 switches to training for every update: the acting cache holds the old weights' keys
        if switched:
            self.features_extractor.acting_cache.reset()
        return self


# ignore[misc] below: the mixin narrows SB3's attribute types (an LM features extractor, LM-backed heads)
class LMActorCriticPolicy(LMPolicyMixin, ActorCriticPolicy):  # type: ignore[misc]
    """SB3 ``ActorCriticPolicy`` whose actor is a causal LM and whose critic is a value head on it.

    - **Observation**: rlenv's ``Dict(input_ids (L,), attention_mask (L,))``; SB3 batches it as
      float32 (B, L) tensors, cast back to token ids here.
    - **Action distribution**: ``Categorical`` over the env's ``Discrete(V)`` with the LM's
      next-token logits at each row's last real token (column ``P + t - 1`` after t tokens).
    - **Value**: ``Linear(H, 1)`` on the final hidden state at that same token.

    ``PPO(LMActorCriticPolicy, env, policy_kwargs=dict(model=PATH_OR_MODEL))``; A2C likewise.
    See :class:`LMPolicyMixin` for the ``policy_kwargs``.
    """


class EpisodeRolloutBuffer(DictRolloutBuffer):
    """SB3's ``DictRolloutBuffer`` whose minibatches hold whole episodes: each epoch shuffles the
    episodes (the stored runs of one sub-env between episode starts, SB3's own random state) and cuts
    their transitions, in order, into ``batch_size`` chunks, so the LM policy scores a minibatch with
    one forward per episode instead of one per transition. Every transition is still used once per
    epoch, as with the default buffer; only which transitions share a minibatch changes (and with it
    SB3's per-minibatch advantage normalisation). ``PPO(..., rollout_buffer_class=EpisodeRolloutBuffer)``.
    """

    # SB3's own DictRolloutBuffer.get has this signature and the same override ignore: its samples
    # type is not RolloutBuffer's RolloutBufferSamples
    def get(  # type: ignore[override]
        self, batch_size: int | None = None
    ) -> Generator[DictRolloutBufferSamples, None, None]:
        assert self.full, "the rollout buffer is read only once it is full"
        if not self.generator_ready:
            for key, obs in self.observations.items():
                self.observations[key] = self.swap_and_flatten(obs)
            for name in ("actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        total = self.buffer_size * self.n_envs
        batch_size = batch_size or total
        episodes = self.episode_slices()
        indices = np.concatenate([episodes[i] for i in np.random.permutation(len(episodes))])
        for start in range(0, total, batch_size):
            yield self._get_samples(indices[start : start + batch_size])

    def episode_slices(self) -> list[np.ndarray]:
        """Flat transition indices of each stored episode (after ``swap_and_flatten``: sub-env major)."""
        starts = self.episode_starts.astype(bool).T.copy()  # (n_envs, n_steps)
        starts[:, 0] = True  # a sub-env's first stored step starts a (possibly partial) episode
        flat = np.flatnonzero(starts.reshape(-1))
        ends = np.append(flat[1:], starts.size)
        return [np.arange(a, b) for a, b in zip(flat, ends, strict=True)]


class SB3VectorEnv(VecEnv):
    """An SB3 ``VecEnv`` view of a native :class:`rlenv.TextGenVectorEnv` (``SameStep`` autoreset).

    Observation/action spaces are the sub-env's (``Dict`` of (L,) arrays, ``Discrete(V)``); ``step``
    returns SB3's ``(obs, rewards (N,), dones (N,), infos: list[dict])`` with
    ``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]`` and the finished
    episode's ``prompt``/``completion`` when sub-env i ended. Attribute and method calls go to the
    one batched env (they are shared by all sub-envs).
    """

    def __init__(self, venv: Any) -> None:
        if getattr(venv, "autoreset_mode", None) != AutoresetMode.SAME_STEP:
            raise ValueError(
                "SB3VectorEnv needs the native vector env with autoreset_mode='SameStep' (SB3 resets on the "
                "ending step); build it with make_sb3_vec_env(env_id, n_envs) or gym.make_vec(..., "
                "vectorization_mode='vector_entry_point', autoreset_mode='SameStep')"
            )
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else [s for s in self._seeds]
        options = self._options[0] if self._options and self._options[0] else None
        if any(o != self._options[0] for o in self._options):
            raise ValueError(
                "SB3VectorEnv resets all sub-envs together; pass the same options to every sub-env"
            )
        obs, info = self.venv.reset(seed=seeds, options=options)
        self.reset_infos = [{"prompt": p} for p in info.get("prompt", [None] * self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        final_info = info.get("final_info", {})
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            for key in ("prompt", "completion"):
                if key in final_info:
                    infos[i][key] = final_info[key][i]
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def _count(self, indices: VecEnvIndices) -> int:
        return len(self._get_indices(indices)) if indices is not None else self.num_envs

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)


def make_sb3_vec_env(env_id: str, n_envs: int, *, monitor: bool = True, **env_kwargs: Any) -> VecEnv:
    """rlenv's native batched env for ``env_id`` as an SB3 ``VecEnv`` of ``n_envs`` sub-envs.

    With ``monitor=True`` it is wrapped in SB3's ``VecMonitor`` so ``learn`` logs ``ep_rew_mean``.
    ``env_kwargs`` are the env's own (``tokenizer=``, ``max_new_tokens=`` ...).
    """
    venv = gym.make_vec(
        env_id,
        num_envs=n_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        **env_kwargs,
    )
    sb3_env: VecEnv = SB3VectorEnv(venv)
    return VecMonitor(sb3_env) if monitor else sb3_env
