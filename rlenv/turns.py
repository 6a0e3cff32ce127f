"""Multi-turn token-level episodes: the env speaks between the policy's turns, as token ids.

Layer: above the core (:mod:`rlenv.core`), which it extends through :class:`rlenv.core.EpisodeRules`
(:class:`TurnRules` makes a :class:`MultiTurnEpisodes` batch and adds the ``policy_mask``
channel); below chat and tools (:mod:`rlenv.chat`), which extend it in turn through the hooks of
:class:`MultiTurnEpisodes` (:meth:`~MultiTurnEpisodes.respond`, which asks the responder,
:meth:`~MultiTurnEpisodes.reply_ids`, which turns its reply into ids, and
:meth:`~MultiTurnEpisodes.episode_end_info`). It imports nothing above it.

A multi-turn env is a :class:`rlenv.TextGenEnv` (or vector env) built with a ``responder``. The
policy still acts one token at a time. Its *turn* ends when it writes the end-of-turn token
(``end_of_turn=``, default EOS; EOS always ends a turn too), when the turn's text contains one of
``stop_strings``, or after ``max_turn_tokens`` tokens. Then the env calls::

    reply, reward, done = responder(history)      # history: TurnHistory (prompt, columns, turns)

``reward`` is paid on that step (per-turn rewards; return 0 until ``done`` for terminal ones).
``done`` ends the episode (``terminated``). Otherwise the reply (a string, tokenized once with
``add_special_tokens=False``, or a list of token ids used as they are) is appended to the state
and the policy writes its next turn. Nothing is ever re-tokenized: the state is the exact id
sequence, and ``history.turns`` carries each turn's ids next to its text.

The token budget ``max_new_tokens`` counts every token after the prompt, the policy's and the
env's. When the policy fills it mid-turn, the turn is cut there, the responder still judges it
(so the return is complete, as for single-turn truncation) and the episode is ``truncated``; the
same when a reply would not leave the policy at least one token to write (the reply is then not
appended, and ``info["env_ids"]`` is ``()``).

The agent's contract (what ``collect_rollouts`` needs to feed env tokens through a KV cache):

- Observation: ``input_ids`` and ``attention_mask`` as for single-turn ids (prompt left-padded
  into P columns, generated position t at column P + t), plus ``policy_mask`` (int8, same shape):
  1 where the policy wrote the token, 0 for prompt, env replies and padding. Masking losses, KL
  and value targets with ``policy_mask[P:]`` keeps env tokens in the context and out of the loss.
- Env tokens appear in the observation returned by the step whose action ended the turn: that
  step's action sits at column P + n, and the reply at columns P + n + 1 ... P + n + k. The next
  action is written at P + n + k + 1. So after sampling action a at step s, an agent must feed
  ``[a] + info["env_ids"]`` through the model before sampling the next token (a ragged number of
  tokens per sub-env: 1 for most rows, 1 + k for rows whose turn just ended).
- ``info`` of a turn-ending step holds ``env_ids`` (a tuple of the appended ids; empty when the
  episode ends there; a tuple, not an array, because rows receive ragged numbers of tokens), ``reply`` (its text), ``turn`` (0-based index of the policy turn that
  ended), ``turn_text`` and ``turn_reward``. The last step's ``info`` adds ``prompt``,
  ``completion`` (every generated token decoded, replies included) and ``turns`` (a list of
  ``(role, text)``). In the vector env these keys follow Gymnasium's ``info[key]`` /
  ``info["_" + key]`` convention, so ``info["_env_ids"][i]`` says whether row i received tokens.
- Single- and vector env share this class, so ``SyncVectorEnv`` of single envs and the native
  vector env agree step for step in every autoreset mode; in ``Disabled`` mode a finished row is
  frozen and receives nothing.

Write one in a few lines::

    def responder(history):
        guess = history.last_text.strip()
        ...
        return "higher\\n", -0.1, False

    env = rlenv.TextGenEnv(prompts=..., responder=responder, stop_strings=["\\n"])
    rlenv.multiturn.register_responder_env("my/Game-v0", responder=responder, prompts=...)

(``register_responder_env`` lives in :mod:`rlenv.registration`, on top of every layer;
:mod:`rlenv.multiturn` gathers it with this module's public names.)

Responders get every per-prompt column (e.g. a secret ``answer``) in ``history.columns``; keep
them pure functions of the history so that seeds replay episodes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rlenv.core import EpisodeBatch, EpisodeRules, StepOutcome, TextGenSetup
from rlenv.prompts import Prompt
from rlenv.tokenizer import decode_text

if TYPE_CHECKING:  # typing only: transformers' tokenizer classes import torch, which start-up avoids
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Turn:
    """One turn of the episode: who wrote it, its text, and its exact token ids."""

    role: Literal["policy", "env"]
    text: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class TurnHistory:
    """What a responder sees: the prompt, its extra columns and every turn so far.

    The last turn is the policy's turn that just ended. ``budget_left`` is the number of tokens
    the episode may still hold (0 when the policy's turn was cut by the budget). ``final_turn`` is
    True when the episode ends after this turn whatever the reply: the budget is spent, or (in a
    chat) the policy wrote EOS. A game can then charge what an unfinished game costs, so that
    stopping early is never cheaper than playing on and losing.
    """

    prompt: str
    columns: Mapping[str, Any]
    turns: tuple[Turn, ...]
    budget_left: int
    final_turn: bool = False

    @property
    def last_text(self) -> str:
        return self.turns[-1].text

    @property
    def num_policy_turns(self) -> int:
        return sum(t.role == "policy" for t in self.turns)

    @property
    def text(self) -> str:
        """Prompt and every turn, concatenated as they stand in the state."""
        return self.prompt + "".join(t.text for t in self.turns)


Responder = Callable[[TurnHistory], tuple[Any, float, bool]]


@dataclass(frozen=True)
class TurnRules(EpisodeRules):
    """The core's :class:`~rlenv.core.EpisodeRules` for multi-turn ids: a responder answers each turn."""

    responder: Responder
    max_turn_tokens: int | None
    end_of_turn_id: int  # no default of its own; after the others, as the base class gives it one

    observation_channels = ("policy_mask",)
    scored_by_reward_model = False

    def make_episodes(self, setup: TextGenSetup, n: int) -> EpisodeBatch:
        return MultiTurnEpisodes(setup, n)


def check_turn_options(responder: Any, reward_model: Any, end_of_turn: Any, max_turn_tokens: Any) -> None:
    """Refuse turn options without a responder, and a reward model beside one (before any loading)."""
    if responder is None and (end_of_turn is not None or max_turn_tokens is not None):
        raise ValueError("end_of_turn/max_turn_tokens only apply to multi-turn envs; pass responder= too")
    if responder is not None and reward_model is not None:
        raise ValueError(
            "a multi-turn env is rewarded by its responder (reply, reward, done); drop reward_model= "
            "or call the reward model inside the responder"
        )


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase, end_of_turn: str | int | None) -> int:
    """The id of ``end_of_turn`` (a one-token string or an id; None is EOS), checked against the vocabulary."""
    if end_of_turn is None:
        return int(tokenizer.eos_token_id)
    if isinstance(end_of_turn, (int, np.integer)):
        eot = int(end_of_turn)
        if not 0 <= eot < len(tokenizer):
            raise ValueError(f"end_of_turn id {eot} is outside the vocabulary [0, {len(tokenizer)})")
        return eot
    ids = tokenizer(end_of_turn, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(
            f"end_of_turn={end_of_turn!r} is {len(ids)} tokens in this tokenizer, not one; pass a single "
            "token (string or id), or end turns with stop_strings=[...]"
        )
    return int(ids[0])


def check_responder(responder: Any, max_turn_tokens: int | None) -> None:
    if not callable(responder):
        raise TypeError(f"responder must be a callable (history) -> (reply, reward, done), got {type(responder).__name__}")
    if max_turn_tokens is not None and int(max_turn_tokens) < 1:
        raise ValueError(f"max_turn_tokens must be >= 1 or None, got {max_turn_tokens}")


def turn_rules(responder: Any, end_of_turn: str | int | None = None,
               max_turn_tokens: int | None = None) -> Callable[[PreTrainedTokenizerBase], TurnRules]:
    """What :func:`rlenv.core.resolve_setup` takes as ``rules=``: :class:`TurnRules` once the tokenizer is loaded."""
    check_responder(responder, max_turn_tokens)

    def build(tokenizer: PreTrainedTokenizerBase) -> TurnRules:
        return TurnRules(responder=responder, end_of_turn_id=end_of_turn_id(tokenizer, end_of_turn),
                         max_turn_tokens=None if max_turn_tokens is None else int(max_turn_tokens))

    return build


class MultiTurnEpisodes(EpisodeBatch):
    """:class:`rlenv.core.EpisodeBatch` whose episodes alternate policy turns and env replies."""

    def __init__(self, setup: TextGenSetup, n: int) -> None:
        super().__init__(setup, n)
        self.spec: TurnRules = setup.rules  # type: ignore[assignment]  # made by TurnRules.make_episodes
        self.policy_mask = np.zeros((n, self.P + self.T), dtype=np.int8)  # (N, L)
        self.turn_start = np.zeros(n, dtype=np.int64)  # (N,) generated index where the policy's turn began
        self.turns: list[list[Turn]] = [[] for _ in range(n)]
        self._turn_cut: list[int | None] = [None] * n

    def start(self, i: int, prompt: Prompt) -> None:
        super().start(i, prompt)
        self.policy_mask[i] = 0
        self.turn_start[i] = 0
        self.turns[i] = []
        self._turn_cut[i] = None

    def observation(self, i: int | None = None) -> dict[str, np.ndarray]:
        obs = super().observation(i)
        obs["policy_mask"] = (self.policy_mask if i is None else self.policy_mask[i]).copy()
        return obs

    def completion(self, i: int) -> str:
        return self._decode_generated(i)

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepOutcome:
        rows = np.flatnonzero(active)
        cols = self.P + self.num_generated[rows]
        self.input_ids[rows, cols] = actions[rows]
        self.attention_mask[rows, cols] = 1
        self.policy_mask[rows, cols] = 1
        self.num_generated[rows] += 1
        terminated = np.zeros(self.n, dtype=bool)
        truncated = np.zeros(self.n, dtype=bool)
        rewards = np.zeros(self.n, dtype=np.float64)
        infos: dict[int, dict[str, Any]] = {}
        for i in rows.tolist():
            out_of_budget = self.num_generated[i] >= self.T
            if not (self._turn_ended(i, int(actions[i])) or out_of_budget):
                continue
            reply_ids, reply_text, reward, done, turn_text = self._respond(i)
            room = self.T - int(self.num_generated[i]) - 1  # the policy must keep one token to write
            appended = not done and not out_of_budget and len(reply_ids) <= room
            if appended:
                start = self.P + int(self.num_generated[i])
                self.input_ids[i, start : start + len(reply_ids)] = reply_ids
                self.attention_mask[i, start : start + len(reply_ids)] = 1
                self.num_generated[i] += len(reply_ids)
                self.turn_start[i] = self.num_generated[i]
                self.turns[i].append(Turn("env", reply_text, tuple(reply_ids)))
            rewards[i] = reward
            terminated[i] = done
            truncated[i] = not done and not appended
            info: dict[str, Any] = {
                "env_ids": tuple(reply_ids) if appended else (),
                "reply": reply_text, "turn": self._num_policy_turns(i) - 1, "turn_text": turn_text,
                "turn_reward": reward,
            }
            if done or not appended:
                info.update(self.episode_end_info(i))
            infos[i] = info
        self.done |= terminated | truncated
        return StepOutcome(terminated, truncated, rewards, infos)

    def episode_end_info(self, i: int) -> dict[str, Any]:
        """Hook: the ``info`` keys of an episode's last step (a layer above may add its own)."""
        return {"prompt": self.prompt(i).text, "completion": self.completion(i),
                "turns": [(t.role, t.text) for t in self.turns[i]]}

    def _num_policy_turns(self, i: int) -> int:
        return sum(t.role == "policy" for t in self.turns[i])

    def _turn_ids(self, i: int) -> np.ndarray:
        return self.input_ids[i, self.P + self.turn_start[i] : self.P + self.num_generated[i]]

    def _turn_ended(self, i: int, action: int) -> bool:
        if action in (self.spec.end_of_turn_id, self.eos_id):
            return True
        if self.spec.max_turn_tokens is not None and self.num_generated[i] - self.turn_start[i] >= self.spec.max_turn_tokens:
            return True
        if self.setup.stop_strings:
            text = decode_text(self.setup.tokenizer, self._turn_ids(i))
            cuts = [c for c in (text.find(s) for s in self.setup.stop_strings) if c >= 0]
            if cuts:
                self._turn_cut[i] = min(cuts)
                return True
        return False

    def _respond(self, i: int) -> tuple[list[int], str, float, bool, str]:
        """Record the policy's turn, call the responder, validate and tokenize its reply."""
        ids = self._turn_ids(i)
        text = decode_text(self.setup.tokenizer, ids)
        cut, self._turn_cut[i] = self._turn_cut[i], None
        self.turns[i].append(Turn("policy", text if cut is None else text[:cut], tuple(int(x) for x in ids)))
        prompt = self.prompt(i)
        budget_left = self.T - int(self.num_generated[i])
        history = TurnHistory(prompt.text, prompt.columns, tuple(self.turns[i]), budget_left, budget_left == 0)
        reply, reward, done = self.respond(i, history)
        reply_ids, reply_text = self.reply_ids(i, reply, done)
        return reply_ids, reply_text, reward, done, self.turns[i][-1].text

    def respond(self, i: int, history: TurnHistory) -> tuple[Any, float, bool]:
        """Hook: the responder's checked ``(reply, reward, done)`` for episode ``i``'s turn."""
        return check_response(self.spec.responder, self.spec.responder(history))

    def reply_ids(self, i: int, reply: Any, done: bool) -> tuple[list[int], str]:
        """Hook: the ids to append for ``reply`` and its text. Here a string is tokenized once
        (``add_special_tokens=False``) and a list of ids is used as it is; the chat layer renders a
        message through the chat template instead."""
        if isinstance(reply, str):
            return (list(self.setup.tokenizer(reply, add_special_tokens=False)["input_ids"]) if reply else []), reply
        reply_ids = [int(x) for x in reply]
        bad = [x for x in reply_ids if not 0 <= x < self.setup.vocab_size]
        if bad:
            raise ValueError(f"responder {_name(self.spec.responder)} replied with token id {bad[0]} outside "
                             f"the vocabulary [0, {self.setup.vocab_size})")
        return reply_ids, decode_text(self.setup.tokenizer, reply_ids)


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def check_response(responder: Any, response: Any) -> tuple[str | Sequence[int] | np.ndarray, float, bool]:
    """Validate ``(reply, reward, done)``, naming the responder and the fix."""
    name = _name(responder)
    if not isinstance(response, (tuple, list)) or len(response) != 3:
        raise TypeError(f"responder {name} must return (reply, reward, done), got {response!r}")
    reply, reward, done = response
    if not isinstance(reply, str) and not (isinstance(reply, (Sequence, np.ndarray)) and all(
            isinstance(x, (int, np.integer)) for x in reply)):
        raise TypeError(f"responder {name}'s reply must be a str or a list of token ids, got {type(reply).__name__} "
                        "(a reply that is a message, {'role': ..., 'content': ...}, needs a chat env: chat=True)")
    if isinstance(reward, bool) or not isinstance(reward, (int, float, np.integer, np.floating)) or not math.isfinite(reward):
        raise ValueError(f"responder {name} returned reward {reward!r}; it must be a finite number")
    if not isinstance(done, (bool, np.bool_)):
        raise TypeError(f"responder {name} returned done={done!r}; it must be a bool")
    return reply, float(reward), bool(done)
