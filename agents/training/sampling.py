"""``rlenv sample``: try a model or checkpoint on an env and read what it writes.

Completions come from the same env-driven rollout as training (:func:`agents.training.rollout.collect_rollouts`),
so what you read is what the trainer sees: the env's prompts, stop rules, token budget and reward.
A multi-turn episode is shown as a role-marked transcript — the prompt, each policy turn and each
env reply — recovered from the token ids and the rollout's ``response_mask`` (1 on the policy's own
tokens, 0 on the env's), never from re-tokenized text.

Interactive mode puts you in the env's seat: for a multi-turn id, you type the env's reply after
each policy turn (an empty line ends the episode); for a single-turn id, you type prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.training.policy import LMPolicy
from agents.training.rollout import RolloutBatch, collect_rollouts

PROMPT, POLICY, ENV = "prompt", "policy", "env"


@dataclass(frozen=True)
class Transcript:
    """One episode: ``turns`` is ``[(role, text), ...]`` with role ``prompt``, ``policy`` or ``env``."""

    turns: list[tuple[str, str]]
    reward: float
    ended: str
    """``eos`` (the policy or the env ended it) or ``budget`` (max_new_tokens reached)"""

    def render(self, roles: bool) -> str:
        """The episode as text: ``[role] text`` lines when ``roles``, else ``prompt | completion``."""
        if roles:
            return "\n".join(f"[{role}] {text.strip()}" for role, text in self.turns)
        return self.turns[0][1] + " | " + "".join(text for _, text in self.turns[1:])


def transcripts(batch: RolloutBatch, tokenizer: Any) -> list[Transcript]:
    """The batch's episodes as role-marked transcripts (see the module doc)."""
    P = batch.prompt_length
    ids = batch.input_ids.cpu().numpy()  # (B, P+T)
    attention = batch.attention_mask.cpu().numpy().astype(bool)  # (B, P+T)
    policy_written = batch.response_mask.cpu().numpy().astype(bool)  # (B, T)
    out = []
    for i in range(batch.batch_size):
        turns = [(PROMPT, tokenizer.decode(ids[i, :P][attention[i, :P]], skip_special_tokens=True))]
        generated = np.flatnonzero(
            attention[i, P:]
        )  # columns holding a real token, the policy's or the env's
        for role, columns in _segments(generated, policy_written[i]):
            text = tokenizer.decode(ids[i, P + columns], skip_special_tokens=True)
            turns.append((role, text))
        ended = "budget" if bool(batch.truncated[i]) else "eos"
        out.append(Transcript(turns, float(batch.rewards[i]), ended))
    return out


def _segments(columns: np.ndarray, policy_written: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Consecutive runs of ``columns`` written by the same side."""
    segments: list[tuple[str, list[int]]] = []
    for column in columns:
        role = POLICY if policy_written[column] else ENV
        if not segments or segments[-1][0] != role:
            segments.append((role, []))
        segments[-1][1].append(int(column))
    return [(role, np.array(cols)) for role, cols in segments]


def sample(policy: LMPolicy, envs: Any, *, seed: int, prompt: str | None = None) -> list[Transcript]:
    """One episode per sub-env of ``envs`` (an rlenv vector env, autoreset disabled), seeded; ``prompt``
    replaces the env's prompts for every episode."""
    options = {"prompts": prompt} if prompt is not None else None
    batch = collect_rollouts(policy, envs, seed=seed, options=options)
    return transcripts(batch, envs.tokenizer)


def typed_responder(
    read: Callable[[str], str], show: Callable[[str], None]
) -> Callable[[Any], tuple[str, float, bool]]:
    """A multi-turn responder that is you: it shows the policy's turn and returns the line you type as
    the env's reply (reward 0); an empty line or end of input ends the episode."""

    def you(history: Any) -> tuple[str, float, bool]:
        show(f"[policy] {history.last_text}")
        try:
            line = read("[env] > ")
        except EOFError:
            return "", 0.0, True
        if not line.strip():
            return "", 0.0, True
        return line + "\n", 0.0, False

    return you
