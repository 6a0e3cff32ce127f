"""Wrappers over rlenv's token-level environments.

Layer: above registration (a wrapper may be given an id to make).

:class:`TurnLevel` gives any rlenv id the interface of turn-level agent libraries and API-model
agents: the action is the whole text of a turn, the observation is the text so far.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlenv.registration import check_env_id


class TurnLevel(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A whole turn of text per action, over the same token-level MDP.

    - **Action space**: ``Text(max_length=4 * max_new_tokens)``: the text of one turn (for a
      single-turn id, the whole completion).
    - **Observation space**: ``Text``: the prompt and every token so far, decoded.
    - **Step**: the text is tokenized once (``add_special_tokens=False``) and fed token by token
      to the wrapped env until its turn (or episode) ends; if the text runs out first, the
      end-of-turn token is written (EOS for single-turn ids). Tokens after the point where the
      turn ended are not fed; ``info["unused_tokens"]`` counts them.
    - **Reward**: the sum of the token-level rewards of the turn, so both views pay the same for
      the same token sequence; prompts and seeds are the wrapped env's own.
    - **Info**: the token-level info of the step that ended the turn (``reply``, ``env_ids`` ...
      for multi-turn ids, ``completion`` at the end), plus ``num_tokens`` fed.
    - **Chat envs** exchange messages: an action may also be an assistant message
      (``{"role": "assistant", "content": text}``), and ``info["messages"]`` after every reset and
      step is the conversation so far (system / user / assistant / tool), as the chat template
      renders it.

    Args:
        env: a registered rlenv id (made with ``gym.make(env, **make_kwargs)``) or a made env.
    """

    def __init__(self, env: gym.Env | str, **make_kwargs: Any) -> None:
        if isinstance(env, str):
            env = gym.make(check_env_id(env), **make_kwargs)
        elif make_kwargs:
            raise TypeError("make_kwargs are only for an env id; pass a made env without them")
        gym.utils.RecordConstructorArgs.__init__(self)  # recreated around the made env (env.spec)
        super().__init__(env)
        setup = getattr(env.unwrapped, "setup", None)
        if setup is None:
            raise TypeError(f"TurnLevel wraps rlenv token-level envs, got {type(env.unwrapped).__name__}")
        self.tokenizer = setup.tokenizer
        self.end_of_turn_id = setup.end_of_turn_id
        charset = _charset(self.tokenizer)
        self.action_space = spaces.Text(max_length=4 * setup.max_new_tokens, min_length=0, charset=charset)
        self.observation_space = spaces.Text(max_length=64 * setup.seq_len, min_length=0, charset=charset)
        self._done = True
        self.last_token_observation: dict[str, np.ndarray] | None = None
        """The wrapped env's Dict observation after the last reset/step (ids and masks)."""

    def _text(self, obs: dict[str, np.ndarray]) -> str:
        return self.tokenizer.decode(obs["input_ids"][obs["attention_mask"] == 1], skip_special_tokens=True)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._done = False
        self.last_token_observation = obs
        return self._text(obs), self._with_messages(info)

    def _with_messages(self, info: dict[str, Any]) -> dict[str, Any]:
        conversation = getattr(self.env.unwrapped, "conversation", lambda: None)()
        return info if conversation is None else {**info, "messages": conversation}

    def _turn_text(self, action: Any) -> str:
        if (
            isinstance(action, Mapping)
            and getattr(self.env.unwrapped, "conversation", lambda: None)() is not None
        ):
            if action.get("role") != "assistant" or not isinstance(action.get("content"), str):
                raise TypeError(
                    f"a chat env's TurnLevel action is the assistant's text or {{'role': 'assistant', 'content': "
                    f"text}}; got {dict(action)!r}"
                )
            return str(action["content"])
        if not isinstance(action, str):
            raise TypeError(f"a TurnLevel action is the text of a turn (str), got {type(action).__name__}")
        return action

    def step(self, action: str | Mapping[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError(
                "step() called after the episode ended (or before reset()); call env.reset() first"
            )
        action = self._turn_text(action)
        ids = list(self.tokenizer(action, add_special_tokens=False)["input_ids"]) if action else []
        total, fed, turn_over = 0.0, 0, False
        obs, terminated, truncated = None, False, False
        info: dict[str, Any] = {}
        for token in [*ids, self.end_of_turn_id]:
            obs, reward, terminated, truncated, info = self.env.step(token)
            total += float(reward)
            fed += 1
            turn_over = terminated or truncated or "turn" in info
            if turn_over:
                break
        assert obs is not None  # the loop fed at least the end-of-turn token
        self._done = bool(terminated or truncated)
        self.last_token_observation = obs
        info = {**info, "num_tokens": fed, "unused_tokens": max(0, len(ids) - fed)}
        return self._text(obs), total, bool(terminated), bool(truncated), self._with_messages(info)


def _charset(tokenizer: Any) -> frozenset[str]:
    """Every character a decoded token can contain (so that decoded text lies in the Text space)."""
    chars = set(string.printable)
    for token_id in range(len(tokenizer)):
        chars.update(tokenizer.decode([token_id], skip_special_tokens=True))
    return frozenset(chars)
