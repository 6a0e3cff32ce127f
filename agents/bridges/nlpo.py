"""NLPO-style action masking for sb3-contrib's ``MaskablePPO``: a frozen LM's top-k / top-p token set.

NLPO (Ramamurthy et al., 2023, "Is Reinforcement Learning (Not) for Natural Language Processing?")
is PPO whose policy may only pick tokens inside the nucleus of a separate *masking policy*: a
frozen copy of the LM, refreshed from the trained policy every ``mu`` updates. Cutting the action
space from the whole vocabulary to a few plausible tokens keeps the policy on fluent text. Here:

- :class:`FrozenMaskLM` is that masking policy: its own copy of a causal LM, eval mode, no
  gradients, and the rule turning its next-token distribution into a bool mask (top-k, then top-p
  on what top-k left; the most likely token is always allowed).
- :class:`LMActionMask` wraps a single rlenv env with ``action_masks() -> (V,) bool``, the method
  sb3-contrib reads (``get_action_masks`` calls ``env_method("action_masks")``), so
  ``DummyVecEnv``/``SubprocVecEnv`` of wrapped envs work. :class:`VecLMActionMask` does the same
  for a whole SB3 ``VecEnv`` (e.g. :func:`agents.bridges.sb3.make_sb3_vec_env`) with ONE batched mask
  forward per step instead of one per sub-env.
- :class:`SyncMaskLM` is the callback that copies the policy's weights into the mask LM every
  ``every`` updates (NLPO's ``mu``); without it the mask stays the initial LM's.
- :class:`MaskableLMActorCriticPolicy` is :class:`agents.bridges.sb3.LMActorCriticPolicy` on sb3-contrib's
  maskable skeleton.

Usage::

    from sb3_contrib import MaskablePPO
    from agents.bridges.nlpo import FrozenMaskLM, MaskableLMActorCriticPolicy, SyncMaskLM, VecLMActionMask
    from agents.bridges.sb3 import make_sb3_vec_env

    mask_lm = FrozenMaskLM(rlenv.DEFAULT_MODEL, top_p=0.9)      # one frozen copy, shared
    env = VecLMActionMask(make_sb3_vec_env("rlenv/PositiveReview-v0", 8), mask_lm)
    model = MaskablePPO(MaskableLMActorCriticPolicy, env, policy_kwargs=dict(model=rlenv.DEFAULT_MODEL))
    model.learn(8192, callback=SyncMaskLM(mask_lm, every=5))

Needs the ``contrib`` extra (``pip install 'rlenv[contrib]'``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn
from transformers import PreTrainedModel

from agents.bridges.sb3 import LMPolicyMixin, check_observation_space, last_token_forward, load_causal_lm
from agents.training.policy import SamplingConfig, resolve_device, sampling_logprobs

try:
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError("agents.bridges.nlpo needs sb3-contrib; install it with: pip install 'rlenv[contrib]'") from err

__all__ = [
    "FrozenMaskLM",
    "LMActionMask",
    "MaskableLMActorCriticPolicy",
    "SyncMaskLM",
    "VecLMActionMask",
]


def _check_mask_params(top_k: Any, top_p: Any) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1, or None to use top-p only; got {top_k!r} (e.g. top_k=50)")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float, np.floating)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be a float in (0, 1] (1 = no nucleus cut); got {top_p!r} (NLPO uses 0.9)")
    if top_k is None and top_p == 1:
        raise ValueError("top_k=None with top_p=1 masks nothing; set top_k (e.g. 50) or top_p < 1 (e.g. 0.9)")


class FrozenMaskLM:
    """NLPO's masking policy: a frozen causal LM whose top-k / top-p next-token set is the allowed set.

    It always holds its *own* copy of the weights: a ``PreTrainedModel`` passed in is deep-copied
    (so passing the very model the policy trains still gives a frozen snapshot, and the policy's
    parameters are never switched off), a path is loaded. The copy is in eval mode with
    ``requires_grad=False`` and runs under ``torch.inference_mode``. Share one instance between
    all the envs of a run (one copy in memory); :class:`SyncMaskLM` refreshes it from the policy.

    Args:
        model: local model directory or a ``PreTrainedModel`` (copied).
        top_k: keep the k most likely tokens (``None``: no top-k cut).
        top_p: then keep the smallest set of those whose probability (renormalised over what top-k
            left) reaches ``top_p``; the most likely token is always kept. ``1``: no nucleus cut.
        device: where the copy runs (``"auto"``: cuda when available).
        trust_remote_code: passed to ``from_pretrained``; never implied.
    """

    def __init__(self, model: str | Path | PreTrainedModel, *, top_k: int | None = None, top_p: float = 1.0,
                 device: str | torch.device = "auto", trust_remote_code: bool = False) -> None:
        _check_mask_params(top_k, top_p)
        lm = copy.deepcopy(model) if isinstance(model, PreTrainedModel) else load_causal_lm(
            model, trust_remote_code=trust_remote_code)
        self.device = resolve_device(device)
        self.model = lm.to(self.device).eval().requires_grad_(False)  # type: ignore[arg-type]  # transformers' decorated .to()
        self.top_k, self.top_p = top_k, float(top_p)
        self.sampling = SamplingConfig(top_k=top_k or 0, top_p=float(top_p))
        self.vocab_size = int(lm.get_output_embeddings().weight.shape[0])
        self.version = 0  # bumped on every weight refresh, so cached masks go stale

    @torch.inference_mode()
    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, vocab_size: int) -> np.ndarray:
        """(B, V) bool mask, ``V = vocab_size``, for rlenv observations ``input_ids``/``attention_mask`` (B, L).

        Logits are cut to the env's ``V`` first (a model may pad its vocabulary), so top-k and top-p
        rank only tokens the env can take.
        """
        ids = torch.as_tensor(np.asarray(input_ids), device=self.device)
        mask = torch.as_tensor(np.asarray(attention_mask), device=self.device)
        logits, _ = last_token_forward(self.model, ids, mask)  # (B, V_model)
        logprobs = sampling_logprobs(logits[:, :vocab_size], self.sampling)  # (B, V); -inf outside the set
        return torch.isfinite(logprobs).cpu().numpy()

    def load_weights_from(self, model: torch.nn.Module) -> None:
        """Copy ``model``'s weights (same architecture) into the frozen copy: NLPO's ``psi <- theta``."""
        try:
            self.model.load_state_dict(model.state_dict())
        except RuntimeError as err:
            raise ValueError(
                "the policy's LM and the mask LM differ in architecture, so the mask cannot be refreshed from it; "
                f"build FrozenMaskLM from the same model as the policy ({err})"
            ) from None
        self.version += 1

    def check_vocab(self, action_space: spaces.Space) -> int:
        """The env's vocabulary size V, after checking the mask LM covers it."""
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"LM action masks need a Discrete(vocab_size) token action space, got {action_space}")
        V = int(action_space.n)
        if self.vocab_size < V:
            raise ValueError(
                f"the mask LM's vocabulary has {self.vocab_size} tokens but the env's action space has {V}; "
                "use the env's tokenizer with this model, or call model.resize_token_embeddings(len(tokenizer))"
            )
        return V


class _CurrentMasks:
    """The (B, V) masks of the latest (B, L) observations: computed on first request, then kept until
    the next observation or mask-LM refresh (``FrozenMaskLM.version``)."""

    def __init__(self, mask_lm: FrozenMaskLM | str | Path | PreTrainedModel, top_k: int | None, top_p: float | None,
                 device: str | torch.device, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        check_observation_space(observation_space)
        if isinstance(mask_lm, FrozenMaskLM):
            if top_k is not None or top_p is not None:
                raise ValueError("top_k/top_p belong to the FrozenMaskLM you passed; set them there, not on the wrapper")
        else:
            mask_lm = FrozenMaskLM(mask_lm, top_k=top_k, top_p=1.0 if top_p is None else top_p, device=device)
        self.mask_lm = mask_lm
        self.vocab_size = mask_lm.check_vocab(action_space)
        self._obs: tuple[np.ndarray, np.ndarray] | None = None  # input_ids, attention_mask: (B, L)
        self._cached: tuple[int, np.ndarray] | None = None  # (mask_lm.version, (B, V) masks)

    def observe(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
        self._obs, self._cached = (input_ids, attention_mask), None

    def get(self) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError("action_masks() needs an observation; call reset() first")
        if self._cached is None or self._cached[0] != self.mask_lm.version:
            self._cached = (self.mask_lm.version, self.mask_lm(*self._obs, self.vocab_size))
        return self._cached[1].copy()


class LMActionMask(gym.Wrapper):
    """A single rlenv env plus ``action_masks() -> (V,) bool``: the frozen LM's top-k/top-p tokens here.

    Spaces, rewards and episode ends are the wrapped env's. The mask is for the current observation
    (computed on first request, then cached until the next ``step``/``reset`` or mask refresh).

    Args:
        env: an env with rlenv's ``Dict(input_ids, attention_mask)`` observation and ``Discrete(V)`` actions.
        mask_lm: a shared :class:`FrozenMaskLM`, or a model path / ``PreTrainedModel`` to build one
            from with ``top_k``/``top_p``/``device`` (each wrapper then holds its own copy).
    """

    def __init__(self, env: gym.Env, mask_lm: FrozenMaskLM | str | Path | PreTrainedModel, *,
                 top_k: int | None = None, top_p: float | None = None, device: str | torch.device = "auto") -> None:
        super().__init__(env)
        self._masks = _CurrentMasks(mask_lm, top_k, top_p, device, env.observation_space, env.action_space)
        self.mask_lm = self._masks.mask_lm

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._masks.observe(obs["input_ids"][None], obs["attention_mask"][None])
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._masks.observe(obs["input_ids"][None], obs["attention_mask"][None])
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """(V,) bool: True on the tokens the policy may take at the current observation."""
        return self._masks.get()[0]


class VecLMActionMask(VecEnvWrapper):
    """An SB3 ``VecEnv`` of rlenv envs whose ``env_method("action_masks")`` comes from one batched forward.

    sb3-contrib asks ``env_method("action_masks")`` once per step; here that is answered from the
    current batch of observations with a single mask-LM call of shape (N, L) -> (N, V). Arguments
    as :class:`LMActionMask` (a :class:`FrozenMaskLM`, or a model to build one from).
    """

    def __init__(self, venv: VecEnv, mask_lm: FrozenMaskLM | str | Path | PreTrainedModel, *,
                 top_k: int | None = None, top_p: float | None = None, device: str | torch.device = "auto") -> None:
        super().__init__(venv)
        self._masks = _CurrentMasks(mask_lm, top_k, top_p, device, venv.observation_space, venv.action_space)
        self.mask_lm = self._masks.mask_lm

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._masks.observe(obs["input_ids"], obs["attention_mask"])  # type: ignore[call-overload]
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._masks.observe(obs["input_ids"], obs["attention_mask"])  # type: ignore[call-overload]
        return obs, rewards, dones, infos

    def action_masks(self) -> np.ndarray:
        """(N, V) bool masks for the current observations of all sub-envs."""
        return self._masks.get()

    def has_attr(self, attr_name: str) -> bool:
        return attr_name in ("action_masks", "mask_lm") or self.venv.has_attr(attr_name)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "mask_lm":
            return [self.mask_lm for _ in self._get_indices(indices)]
        return self.venv.get_attr(attr_name, indices)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in self._get_indices(indices)]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)


def _mask_lms_in_process(venv: VecEnv) -> list[Any] | None:
    """The mask LMs a VecEnv's masks come from, if they live in this process; None if they cannot be reached."""
    while True:
        if isinstance(venv, VecLMActionMask):
            return [venv.mask_lm]
        if isinstance(venv, VecEnvWrapper):
            venv = venv.venv
        elif isinstance(venv, DummyVecEnv):
            try:
                return venv.get_attr("mask_lm")
            except AttributeError:
                return []
        else:
            return None


class SyncMaskLM(BaseCallback):
    """NLPO's masking-policy refresh: copy the policy LM's weights into ``mask_lm`` every ``every`` updates.

    Runs at the start of a rollout, so update ``k * every`` is followed by a rollout masked by the
    refreshed LM. The mask LM must live in this process (``DummyVecEnv`` of :class:`LMActionMask`,
    or :class:`VecLMActionMask`): ``SubprocVecEnv`` workers hold their own copies, out of reach.
    """

    def __init__(self, mask_lm: FrozenMaskLM, every: int, verbose: int = 0) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1 (updates between mask refreshes, NLPO's mu); got {every!r}")
        super().__init__(verbose)
        self.mask_lm = mask_lm
        self.every = every
        self.last_synced = 0  # the update count at the last refresh
        self.syncs = 0

    def _on_training_start(self) -> None:
        if not isinstance(self.model.policy, LMPolicyMixin):
            raise ValueError(
                f"SyncMaskLM refreshes the mask from an LM policy, got {type(self.model.policy).__name__}; "
                "train with MaskableLMActorCriticPolicy"
            )
        found = _mask_lms_in_process(self.training_env)
        if found is None:
            raise ValueError(
                f"SyncMaskLM cannot reach the mask LMs of a {type(self.training_env).__name__} (they live in other "
                "processes); use DummyVecEnv of LMActionMask envs, or VecLMActionMask"
            )
        if not any(lm is self.mask_lm for lm in found):
            raise ValueError(
                "the training env's masks do not come from the FrozenMaskLM given to SyncMaskLM; pass the same "
                "instance to the env wrappers and to the callback"
            )

    def _on_rollout_start(self) -> None:
        updates = self.model.num_timesteps // (self.model.n_steps * self.model.n_envs)  # type: ignore[attr-defined]  # MaskablePPO's
        if updates > self.last_synced and updates % self.every == 0:
            self.mask_lm.load_weights_from(self.model.policy.lm)  # type: ignore[arg-type]  # an LM policy's property
            self.last_synced = updates
            self.syncs += 1

    def _on_step(self) -> bool:
        return True


class MaskableLMActorCriticPolicy(LMPolicyMixin, MaskableActorCriticPolicy):  # type: ignore[misc]  # see agents.bridges.sb3
    """:class:`agents.bridges.sb3.LMActorCriticPolicy` for sb3-contrib's ``MaskablePPO``.

    Same network (the LM's next-token logits as the categorical's logits, ``Linear(H, 1)`` value
    head); masked-out tokens get a logit of -1e8, so they are never sampled and the entropy and
    log-probabilities are those of the renormalised allowed set.
    ``MaskablePPO(MaskableLMActorCriticPolicy, env, policy_kwargs=dict(model=PATH_OR_MODEL))``, with
    ``env`` an :class:`LMActionMask` env (or a VecEnv of them) or a :class:`VecLMActionMask`.
    """
