"""Role-marked transcripts of finished episodes: who said what, and what each turn earned.

``rlenv eval --transcripts N`` prints the first N held-out episodes this way and writes them to a
JSONL file. A chat env's episode is its conversation (``system`` / ``user`` / ``assistant`` /
``tool``); a multi-turn env's is its turns (``assistant`` for the policy, ``env`` for the replies)
after the ``prompt``; a single-turn episode is the prompt and the completion. Each assistant turn
carries the reward paid on the step that ended it (a terminal reward sits on the last turn).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.training.rollout import RolloutBatch

ROLE_NAMES = {"policy": "assistant"}


def turn_end_rewards(batch: RolloutBatch, i: int) -> list[float]:
    """The reward paid at the end of each of episode ``i``'s policy turns, in order."""
    mask = batch.response_mask[i].bool().cpu().numpy()  # (T,)
    rewards = (
        batch.token_rewards[i].cpu().numpy() if batch.token_rewards is not None else np.zeros(mask.shape)
    )  # (T,)
    ends = mask & ~np.append(mask[1:], False)  # the last token of every run of policy tokens
    return [float(rewards[t]) for t in np.flatnonzero(ends)]


def episode_transcript(batch: RolloutBatch, i: int) -> dict[str, Any]:
    """``{"prompt", "reward", "terminated", "turns": [{"role", "content", "reward"?}]}`` of episode ``i``."""
    conversation = batch.conversations[i] if batch.conversations else []
    if not conversation:
        conversation = [("prompt", batch.prompts[i]), ("assistant", batch.completions[i])]
    elif conversation[0][0] in ("policy", "env"):  # a multi-turn env's turns follow its prompt
        conversation = [("prompt", batch.prompts[i]), *conversation]
    rewards = iter(turn_end_rewards(batch, i))
    turns = []
    for role, text in conversation:
        role = ROLE_NAMES.get(role, role)
        turn: dict[str, Any] = {"role": role, "content": text}
        if role == "assistant":
            turn["reward"] = round(next(rewards, 0.0), 4)
        turns.append(turn)
    return {
        "prompt": batch.prompts[i],
        "reward": round(float(batch.rewards[i]), 4),
        "terminated": bool(batch.terminated[i]),
        "turns": turns,
    }


def format_transcript(transcript: dict[str, Any], index: int = 0) -> str:
    """One transcript as text: a header line, then ``[role] content`` per turn (assistant turns with their reward)."""
    end = "terminated" if transcript["terminated"] else "truncated"
    lines = [f"--- episode {index}: return {transcript['reward']:+.3f} ({end})"]
    for turn in transcript["turns"]:
        reward = f"   <- reward {turn['reward']:+.3f}" if "reward" in turn else ""
        lines.append(f"[{turn['role']}] {turn['content']}{reward}")
    return "\n".join(lines)
