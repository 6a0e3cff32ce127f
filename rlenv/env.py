"""``TextGenEnv``: text generation as a token-level Gymnasium MDP.

Layer: the Gymnasium face of the core, above every episode layer (core, turns, chat): it builds its
setup with :func:`rlenv.env_setup.make_setup` and steps an :class:`rlenv.core.EpisodeBatch` of one.
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from rlenv.chat import ChatEpisodes, ChatSingleTurnEpisodes
from rlenv.core import EpisodeBatch, PromptOverflow, check_actions
from rlenv.env_setup import make_setup
from rlenv.prompts import as_prompt
from rlenv.render import text_frame


class TextGenEnv(gym.Env[dict[str, np.ndarray], int]):
    """Generate a completion one token at a time; a reward model scores the finished text.

    - **Action space**: ``Discrete(V)``, the next token id (V = ``len(tokenizer)``).
    - **Observation space**: ``Dict(input_ids=Box(0, V-1, (L,), int64), attention_mask=Box(0, 1,
      (L,), int8))`` with L = ``max_prompt_tokens + max_new_tokens``; the prompt is left-padded into
      the first ``max_prompt_tokens`` columns and generated token t sits at column
      ``max_prompt_tokens + t`` (see :mod:`rlenv.core`).
    - **Episode end**: ``terminated`` when the action is the EOS token or the completion contains a
      stop string; ``truncated`` when ``max_new_tokens`` tokens have been generated.
    - **Reward**: 0 on every step but the last, where the reward model scores
      ``(prompt, completion)``; extra prompt columns (e.g. ``answer``) are passed as keyword args.
    - **Info**: ``reset`` gives ``{"prompt"}``; the last step gives ``prompt``, ``completion`` and,
      when the reward model reports them, ``reward_components``.

    Args:
        tokenizer: local path or tokenizer instance; ``None`` is the embedded ``rlenv.DEFAULT_MODEL``.
        prompts: list, ``.txt``/``.jsonl`` path, callable ``f(rng)`` or iterable (see
            :mod:`rlenv.prompts`); ``None`` is the embedded review openings.
        reward_model: registry name, ``{name: weight}`` dict, or any callable with the
            ``rm(prompts, completions, **kwargs) -> list[float]`` signature (called by keyword, as TRL
            does); None is ``"vader"``.
        reward_model_args: options of a reward model named by the registry, e.g.
            ``reward_model="learned", reward_model_args={"path": "runs/rm"}``.
        max_prompt_tokens, max_new_tokens: the two halves of the observation.
        stop_strings: strings that end the episode (excluded from the completion text).
        prompt_overflow: ``"truncate"`` (keep the prompt's last tokens, with a warning) or ``"error"``.
        render_mode: ``"ansi"`` returns the text so far; ``"human"`` prints it; ``"rgb_array"`` returns
            it drawn into a (160, 512, 3) uint8 frame (for video recorders and SB3's ``make_vec_env``).
        trust_remote_code: passed to the tokenizer loader; never implied.
        responder, end_of_turn, max_turn_tokens: make the env multi-turn: the policy writes a turn,
            the responder answers with token ids appended to the state (:mod:`rlenv.turns`
            documents the contract, the ``policy_mask`` channel and the ``info`` keys).
        chat, chat_template, chat_template_kwargs, system_prompt: make the env a chat env
            (:mod:`rlenv.chat`): prompts (text or lists of messages) are rendered by the chat template
            (the tokenizer's, or ``chat_template=``, a Jinja string or file), the end of the assistant's
            turn ends a turn, and a responder's messages are appended as the template renders them.
        tools, tool_parser, max_tool_calls: tools of a chat env (:mod:`rlenv.tools`): typed functions or
            a class with ``reset`` and public methods; calls parsed from the policy's turns (Hermes
            ``<tool_call>`` blocks by default) run between turns, their results appended as tool
            messages (``policy_mask`` 0), at most ``max_tool_calls`` per episode.
    """

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 30}

    def __init__(self, tokenizer: Any = None, prompts: Any = None, reward_model: Any = None, *,
                 reward_model_args: dict[str, Any] | None = None, max_prompt_tokens: int = 32,
                 max_new_tokens: int = 32, stop_strings: Any = (), prompt_overflow: PromptOverflow = "truncate",
                 render_mode: str | None = None, trust_remote_code: bool = False, responder: Any = None,
                 end_of_turn: Any = None, max_turn_tokens: int | None = None, chat: bool = False,
                 chat_template: Any = None, chat_template_kwargs: dict[str, Any] | None = None,
                 system_prompt: str | None = None, tools: Any = None, tool_parser: Any = None,
                 max_tool_calls: int = 8) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.setup = make_setup(
            tokenizer, prompts, reward_model, reward_model_args=reward_model_args, max_prompt_tokens=max_prompt_tokens,
            max_new_tokens=max_new_tokens, stop_strings=stop_strings, prompt_overflow=prompt_overflow,
            trust_remote_code=trust_remote_code, responder=responder, end_of_turn=end_of_turn,
            max_turn_tokens=max_turn_tokens, chat=chat, chat_template=chat_template,
            chat_template_kwargs=chat_template_kwargs, system_prompt=system_prompt, tools=tools,
            tool_parser=tool_parser, max_tool_calls=max_tool_calls,
        )
        self.render_mode = render_mode
        # gymnasium types Dict as Space[dict[str, Any]] and Discrete as Space[np.int64]; actions are ints
        self.observation_space = self.setup.observation_space()  # type: ignore[assignment]
        self.action_space = gym.spaces.Discrete(self.setup.vocab_size)  # type: ignore[assignment]
        self._episodes = EpisodeBatch.create(self.setup, 1)
        self._checked_time_limit = False

    @property
    def tokenizer(self) -> Any:  # the env's Hugging Face tokenizer
        return self.setup.tokenizer

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if not self._checked_time_limit:
            self._checked_time_limit = True
            self._warn_if_a_time_limit_cuts_episodes()
        options = options or {}
        unknown = set(options) - {"prompt"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; the single env accepts "
                             "{'prompt': str | dict | list of messages}")
        if "prompt" in options:
            prompt = options["prompt"]
            prompt = as_prompt(prompt, "options['prompt']")
        else:
            prompt = self.setup.prompts.sample(self.np_random)
        self._episodes.start(0, prompt)
        if self.render_mode == "human":
            self.render()
        return self._episodes.observation(0), {"prompt": prompt.text}

    def _warn_if_a_time_limit_cuts_episodes(self) -> None:
        """Warn when a ``TimeLimit`` wrapper (``gym.make(..., max_episode_steps=k)``) shorter than
        ``max_new_tokens`` wraps this env: it ends episodes before the reward model scores them.

        An env cannot see the wrappers around it, but on the first reset the wrapper's own ``reset``
        is on the call stack; that is where this looks (once, a few frames deep).
        """
        frame: FrameType | None = sys._getframe(2)
        for _ in range(16):
            if frame is None:
                return
            owner = frame.f_locals.get("self")
            if isinstance(owner, TimeLimit) and owner.unwrapped is self:
                limit = int(owner._max_episode_steps)
                if limit < self.setup.max_new_tokens:
                    warnings.warn(
                        f"a TimeLimit of max_episode_steps={limit} wraps an env with max_new_tokens="
                        f"{self.setup.max_new_tokens}: it cuts episodes before the reward model scores them "
                        f"(reward 0, no completion in info); pass max_new_tokens={limit} instead, and the env "
                        "truncates there and scores the text",
                        stacklevel=3,
                    )
                return
            frame = frame.f_back

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._episodes.done[0]:
            raise RuntimeError("step() called after the episode ended (or before reset()); call env.reset() first")
        actions = check_actions(np.reshape(action, (1,)) if np.ndim(action) == 0 else action, 1,
                                self.setup.vocab_size)
        out = self._episodes.step(actions, np.ones(1, dtype=bool))
        if self.render_mode == "human":
            self.render()
        return (self._episodes.observation(0), float(out.rewards[0]), bool(out.terminated[0]),
                bool(out.truncated[0]), out.infos.get(0, {}))

    def conversation(self) -> list[dict[str, Any]] | None:
        """A chat env's messages so far (the assistant's unfinished turn last); None for other envs."""
        if isinstance(self._episodes, (ChatEpisodes, ChatSingleTurnEpisodes)):
            return self._episodes.conversation(0)
        return None

    def render(self) -> str | np.ndarray | None:
        text = self._episodes.text(0)
        if self.render_mode == "human":
            sys.stdout.write(text + "\n")
            return None
        if self.render_mode == "rgb_array":
            return text_frame(text)
        return text
