"""The machinery shared by the single and the vector environment.

:class:`CoreOptions` checks the core's keyword options once and :func:`resolve_setup` turns them
and the tokenizer, prompts and reward model into a :class:`TextGenSetup`;
:class:`EpisodeBatch` holds N episodes in fixed-shape numpy buffers. ``TextGenEnv`` is an
``EpisodeBatch`` of one; ``TextGenVectorEnv`` is one of N. Keeping a single implementation is what
makes the two agree step for step.

Observation layout, L = P + T (P = max_prompt_tokens, T = max_new_tokens)::

    input_ids       [pad ... pad  p0 p1 ... p_k | g0 g1 ... g_t  pad ... pad]
    attention_mask  [ 0  ...  0    1  1 ...  1  |  1  1 ...  1    0  ...  0 ]
                     <------ P columns -------->  <------ T columns ------->

The prompt is left-padded so that generated token t always sits at column P + t.

Layer: this is the bottom of rlenv (with :mod:`rlenv.prompts` and :mod:`rlenv.tokenizer`). It
knows nothing of turns, chats or tasks. Layers above change how episodes run through the one
interface defined here, :class:`EpisodeRules`: a setup carries a rules object, which makes the
episode batch (a subclass of :class:`EpisodeBatch`), adds observation channels, encodes prompts and
names extra tokens that end an episode. The multi-turn layer (:mod:`rlenv.turns`) is one such
extension: its rules make a batch whose T columns hold the policy's turns and the env's replies in
order, with a ``policy_mask`` channel. See ``docs/architecture.md`` for the whole stack.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from gymnasium import spaces

import reward_models
from rlenv.prompts import Prompt, PromptSource, as_prompt_source
from rlenv.tokenizer import decode_text, load_tokenizer

if TYPE_CHECKING:  # typing only: transformers' tokenizer classes import torch, which start-up avoids
    from transformers import PreTrainedTokenizerBase

PromptOverflow = Literal["truncate", "error"]


class EpisodeRules:
    """The core's extension interface: how the episodes of a setup run.

    The base class is the single-turn MDP of this module. A layer above subclasses it and overrides
    what differs; the core calls only these members, so it never needs to know which layer it runs:

    - :attr:`observation_channels`: extra int8 0/1 channels of the observation (same shape as
      ``input_ids``), e.g. the multi-turn ``policy_mask``; the batch must provide them.
    - :attr:`scored_by_reward_model`: False when the episodes pay their own rewards (then a setup
      holds no reward model).
    - :attr:`stop_ids`: token ids that end an episode besides EOS (``terminated``).
    - :attr:`end_of_turn_id`: the id a turn-level agent writes to end its turn (None: EOS).
    - :attr:`prompt_overhead`: tokens the rules add to every prompt (e.g. a chat template's role
      markers), added to ``max_prompt_tokens`` so that it keeps budgeting the prompt's own text.
    - :meth:`prompt_ids`: the token ids of a prompt (before the budget check).
    - :meth:`make_episodes`: the :class:`EpisodeBatch` (or subclass) holding N episodes.
    """

    observation_channels: tuple[str, ...] = ()
    scored_by_reward_model: bool = True
    stop_ids: tuple[int, ...] = ()
    end_of_turn_id: int | None = None
    prompt_overhead: int = 0

    def prompt_ids(self, tokenizer: PreTrainedTokenizerBase, prompt: Prompt) -> list[int]:
        """The ids of ``prompt``: its text, tokenized with the tokenizer's special tokens."""
        if prompt.messages is not None:
            raise ValueError(
                f"prompt {prompt.text[:40]!r}... is a conversation (a list of messages), which only a chat env "
                "renders; pass chat=True (the tokenizer's chat template renders it), or give plain text prompts"
            )
        return list(tokenizer(prompt.text, add_special_tokens=True)["input_ids"])

    def make_episodes(self, setup: TextGenSetup, n: int) -> EpisodeBatch:
        return EpisodeBatch(setup, n)


SINGLE_TURN = EpisodeRules()
"""the rules of a plain single-turn setup (stateless, so one instance serves every setup)"""


@dataclass(frozen=True)
class TextGenSetup:
    """Everything an environment needs besides its episode state; resolved once per env."""

    tokenizer: PreTrainedTokenizerBase
    prompts: PromptSource
    reward_model: Any
    max_prompt_tokens: int
    max_new_tokens: int
    stop_strings: tuple[str, ...]
    prompt_overflow: PromptOverflow
    rules: EpisodeRules = SINGLE_TURN
    """how the episodes run (the extension point: see :class:`EpisodeRules`)"""

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def seq_len(self) -> int:
        return self.max_prompt_tokens + self.max_new_tokens

    @property
    def end_of_turn_id(self) -> int:
        """The id that ends a turn (for a single-turn setup, the episode: EOS)."""
        eot = self.rules.end_of_turn_id
        return int(self.tokenizer.eos_token_id) if eot is None else int(eot)

    def observation_space(self) -> spaces.Dict:
        shape = (self.seq_len,)
        channels: dict[str, spaces.Space[Any]] = {
            "input_ids": spaces.Box(0, self.vocab_size - 1, shape, dtype=np.int64),
            "attention_mask": spaces.Box(0, 1, shape, dtype=np.int8),
        }
        for name in self.rules.observation_channels:
            channels[name] = spaces.Box(0, 1, shape, dtype=np.int8)
        return spaces.Dict(channels)


def default_prompts_path() -> Path:
    return Path(__file__).parent / "assets" / "data" / "review_prompts.txt"


def resolve_reward_model(spec: Any, options: dict[str, Any] | None = None) -> Any:
    """A reward model from a registry name (built with ``options``), a ``{name: weight}`` dict, a
    callable or an instance."""
    if options is not None:
        if not isinstance(options, dict):
            raise ValueError(
                f'reward_model_args must be a dict of the reward model\'s options, e.g. {{"path": "runs/rm"}}; '
                f"got {type(options).__name__}"
            )
        if not isinstance(spec, str):
            raise ValueError(
                "reward_model_args configure a reward model named by the registry (reward_model='learned', ...); "
                f"reward_model is a {type(spec).__name__} here: configure that object itself, or name it"
            )
        return reward_models.make(spec, **options)
    if isinstance(spec, str):
        return reward_models.make(spec)
    if isinstance(spec, dict):
        parts = {name: (reward_models.make(name), float(weight)) for name, weight in spec.items()}
        return reward_models.WeightedSum(parts)
    if callable(spec):
        reward_models.check_reward_signature(
            spec
        )  # a wrong signature fails now, not at the first episode end
        return spec
    raise TypeError(
        f"reward_model must be a registry name (see reward_models.available()), a {{name: weight}} dict, "
        f"or a callable rm(prompts, completions, **kwargs) -> list[float] (called by keyword, as TRL does); got {type(spec).__name__}"
    )


@dataclass(frozen=True)
class CoreOptions:
    """The options of an environment that the core owns, validated when built (before anything loads).

    A layer above takes them as keyword arguments beside its own and builds one of these, so their
    names, defaults and checks live here once. ``stop_strings`` is a tuple after construction.
    """

    reward_model_args: dict[str, Any] | None = None
    max_prompt_tokens: int = 32
    max_new_tokens: int = 32
    stop_strings: str | Sequence[str] = ()
    prompt_overflow: PromptOverflow = "truncate"
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        check_budgets(self.max_prompt_tokens, self.max_new_tokens)
        if self.prompt_overflow not in ("truncate", "error"):
            raise ValueError(f"prompt_overflow must be 'truncate' or 'error', got {self.prompt_overflow!r}")
        stops = (self.stop_strings,) if isinstance(self.stop_strings, str) else tuple(self.stop_strings)
        if any(not isinstance(s, str) or not s for s in stops):
            raise ValueError(f"stop_strings must be non-empty strings, got {self.stop_strings!r}")
        object.__setattr__(self, "stop_strings", stops)  # frozen: normalised once, here


def resolve_setup(
    tokenizer: Any = None,
    prompts: Any = None,
    reward_model: Any = None,
    *,
    options: CoreOptions | None = None,
    rules: Callable[[PreTrainedTokenizerBase], EpisodeRules] | None = None,
) -> TextGenSetup:
    """Build a :class:`TextGenSetup` from the user's arguments, already checked in ``options``.

    ``reward_model=None`` means ``"vader"`` when the rules are scored by a reward model.
    ``rules`` builds the setup's :class:`EpisodeRules` from the loaded tokenizer (a layer above
    passes it; None is the single-turn MDP).
    """
    options = CoreOptions() if options is None else options
    tok = load_tokenizer(tokenizer, trust_remote_code=options.trust_remote_code)
    episode_rules = SINGLE_TURN if rules is None else rules(tok)
    scored = episode_rules.scored_by_reward_model
    return TextGenSetup(
        tokenizer=tok,
        prompts=as_prompt_source(default_prompts_path() if prompts is None else prompts),
        reward_model=resolve_reward_model(
            "vader" if reward_model is None else reward_model, options.reward_model_args
        )
        if scored
        else None,
        max_prompt_tokens=int(options.max_prompt_tokens) + int(episode_rules.prompt_overhead),
        max_new_tokens=int(options.max_new_tokens),
        stop_strings=tuple(options.stop_strings),
        prompt_overflow=options.prompt_overflow,
        rules=episode_rules,
    )


def check_budgets(max_prompt_tokens: int, max_new_tokens: int) -> None:
    if int(max_new_tokens) < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if int(max_prompt_tokens) < 1:
        raise ValueError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")


def check_actions(actions: Any, num_envs: int, vocab_size: int) -> np.ndarray:
    """Validate a batch of token ids, naming the problem and the fix."""
    arr = np.asarray(actions)
    if arr.shape != (num_envs,):
        if arr.size == num_envs:
            arr = arr.reshape(num_envs)
        else:
            raise ValueError(f"expected {num_envs} actions (one token id per env), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"actions must be integer token ids, got dtype {arr.dtype}; cast with np.asarray(a, dtype=np.int64)"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = arr[(arr < 0) | (arr >= vocab_size)][0]
        raise ValueError(
            f"action {int(bad)} is outside the vocabulary [0, {vocab_size}); sample from action_space"
        )
    return arr.astype(np.int64, copy=False)


@dataclass
class StepOutcome:
    """What one step did to the N episodes of an :class:`EpisodeBatch`."""

    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    rewards: np.ndarray  # (N,) float64
    infos: dict[int, dict[str, Any]]  # row -> info, only for rows that have one this step


class EpisodeBatch:
    """N episodes' tokens in fixed-shape buffers, plus the bookkeeping to end them.

    :meth:`create` asks the setup's :class:`EpisodeRules` for the batch (a subclass for multi-turn
    episodes); both envs build their batch through it, so the single and the vector env share every
    line of the MDP.
    """

    @staticmethod
    def create(setup: TextGenSetup, n: int) -> EpisodeBatch:
        return setup.rules.make_episodes(setup, n)

    def __init__(self, setup: TextGenSetup, n: int) -> None:
        self.setup = setup
        self.n = n
        tok = setup.tokenizer
        self.pad_id = int(tok.pad_token_id)
        self.eos_id = int(tok.eos_token_id)
        self.stop_ids = np.array([self.eos_id, *setup.rules.stop_ids], dtype=np.int64)  # end the episode
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self._empty_prompt_ids = [int(start)]
        self.P, self.T = setup.max_prompt_tokens, setup.max_new_tokens
        self.input_ids = np.full((n, self.P + self.T), self.pad_id, dtype=np.int64)  # (N, L)
        self.attention_mask = np.zeros((n, self.P + self.T), dtype=np.int8)  # (N, L)
        self.num_generated = np.zeros(n, dtype=np.int64)  # (N,)
        self.done = np.ones(n, dtype=bool)  # not started counts as done
        self.prompts: list[Prompt | None] = [None] * n
        self._stop_cut: list[int | None] = [None] * n  # char offset of a matched stop string

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        ids = self.setup.rules.prompt_ids(self.setup.tokenizer, prompt) or self._empty_prompt_ids
        if len(ids) > self.P:
            msg = f"prompt of {len(ids)} tokens exceeds max_prompt_tokens={self.P}: {prompt.text[:60]!r}..."
            if self.setup.prompt_overflow == "error":
                raise ValueError(msg + "; raise max_prompt_tokens or pass prompt_overflow='truncate'")
            warnings.warn(
                msg + "; keeping its last tokens (pass prompt_overflow='error' to refuse)", stacklevel=4
            )
            ids = ids[-self.P :]
        return ids

    def start(self, i: int, prompt: Prompt) -> None:
        ids = self.encode_prompt(prompt)
        self.input_ids[i] = self.pad_id
        self.attention_mask[i] = 0
        self.input_ids[i, self.P - len(ids) : self.P] = ids
        self.attention_mask[i, self.P - len(ids) : self.P] = 1
        self.num_generated[i] = 0
        self.done[i] = False
        self.prompts[i] = prompt
        self._stop_cut[i] = None

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepOutcome:
        """Append ``actions[i]`` to every active episode; score the episodes that end (one call)."""
        terminated, truncated = self.advance(actions, active)
        rewards = np.zeros(self.n, dtype=np.float64)
        ended = np.flatnonzero(terminated | truncated).tolist()
        infos: dict[int, dict[str, Any]] = {}
        if ended:
            scores, ended_infos = self.score(ended)
            rewards[ended] = scores
            infos = dict(zip(ended, ended_infos, strict=True))
        return StepOutcome(terminated, truncated, rewards, infos)

    def advance(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append ``actions[i]`` to every active episode; return (terminated, truncated), both (N,)."""
        rows = np.flatnonzero(active)
        cols = self.P + self.num_generated[rows]
        self.input_ids[rows, cols] = actions[rows]
        self.attention_mask[rows, cols] = 1
        self.num_generated[rows] += 1
        terminated = np.zeros(self.n, dtype=bool)
        terminated[rows] = (actions[rows, None] == self.stop_ids).any(axis=1)
        if self.setup.stop_strings:
            for i in rows[~terminated[rows]]:
                terminated[i] = self._hit_stop_string(int(i))
        truncated = active & ~terminated & (self.num_generated >= self.T)
        self.done |= terminated | truncated
        return terminated, truncated

    def _hit_stop_string(self, i: int) -> bool:
        text = self._decode_generated(i)
        cuts = [text.find(s) for s in self.setup.stop_strings]
        cuts = [c for c in cuts if c >= 0]
        if cuts:
            self._stop_cut[i] = min(cuts)
        return bool(cuts)

    def _decode_generated(self, i: int) -> str:
        ids = self.input_ids[i, self.P : self.P + self.num_generated[i]]
        return decode_text(self.setup.tokenizer, ids)

    def completion(self, i: int) -> str:
        """The completion text: generated tokens without EOS, cut before a matched stop string."""
        text = self._decode_generated(i)
        cut = self._stop_cut[i]
        return text if cut is None else text[:cut]

    def text(self, i: int) -> str:
        """The prompt (as observed, i.e. after any truncation) and the tokens generated so far."""
        ids = self.input_ids[i][self.attention_mask[i] == 1]
        return decode_text(self.setup.tokenizer, ids)

    def observation(self, i: int | None = None) -> dict[str, np.ndarray]:
        if i is None:
            return {"input_ids": self.input_ids.copy(), "attention_mask": self.attention_mask.copy()}
        return {"input_ids": self.input_ids[i].copy(), "attention_mask": self.attention_mask[i].copy()}

    def prompt(self, i: int) -> Prompt:
        """Episode ``i``'s prompt (set by its reset)."""
        prompt = self.prompts[i]
        if prompt is None:
            raise RuntimeError(f"episode {i} has not been reset; call reset() before step()")
        return prompt

    def reward_inputs(self, rows: Sequence[int]) -> tuple[list[Any], list[Any]]:
        """What the reward model scores for ``rows``: (prompts, completions), here their texts.
        A layer above may hand over something else (the chat layer: the assistant's text, or messages)."""
        return [self.prompt(i).text for i in rows], [self.completion(i) for i in rows]

    def score(self, rows: Sequence[int]) -> tuple[list[float], list[dict[str, Any]]]:
        """One reward-model call for the episodes in ``rows``; returns rewards and per-row infos."""
        prompts = [self.prompt(i) for i in rows]
        prompt_inputs, completion_inputs = self.reward_inputs(rows)
        completions = [self.completion(i) for i in rows]
        keys = sorted({k for p in prompts for k in p.columns})
        columns = {k: [p.columns.get(k) for p in prompts] for k in keys}
        scored = reward_models.score(self.setup.reward_model, prompt_inputs, completion_inputs, **columns)
        infos = []
        for j, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            info: dict[str, Any] = {"prompt": prompt.text, "completion": completion}
            if scored.components:
                info["reward_components"] = {k: v[j] for k, v in scored.components.items()}
            infos.append(info)
        return scored.rewards, infos
