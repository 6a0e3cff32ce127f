"""reasoning-gym's own answer scorers, per task."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from reward_models.base import RewardModelError
from reward_models.batch import BatchReward, column

_ANSWER_TAG = re.compile(r"<answer>\s?(.*?)\s?</answer>", re.DOTALL)


def extract_tagged_answer(completion: str) -> str:
    """The text inside the last ``<answer>…</answer>`` tag, or the whole stripped completion."""
    matches = _ANSWER_TAG.findall(completion)
    return (matches[-1] if matches else completion).strip()


class ReasoningGymScorer(BatchReward):
    """reasoning-gym's ``score_answer(answer, entry)`` for one task: task-defined, usually in [0, 1].

    ``task`` is a reasoning-gym dataset name (``reasoning_gym.create_dataset(task, ...)``); the
    dataset entries (dicts with ``question``, ``answer``, ``metadata``) arrive per example in the kwarg
    column ``column`` (default ``entry``). With ``extract_answer=True`` the answer scored is the text
    in the completion's last ``<answer>`` tag, or the whole completion if it has none.
    """

    name = "reasoning_gym"

    def __init__(self, task: str, column: str = "entry", extract_answer: bool = True, seed: int = 0) -> None:
        import reasoning_gym
        from reasoning_gym.factory import DATASETS

        if task not in DATASETS:
            hint = difflib.get_close_matches(task, DATASETS, n=3, cutoff=0.5)
            suggestion = f"; did you mean {' or '.join(map(repr, hint))}?" if hint else ""
            raise RewardModelError(
                f"reasoning_gym: unknown task {task!r}{suggestion} (see sorted(reasoning_gym.factory.DATASETS))"
            )
        self.task = task
        self.name = f"reasoning_gym:{task}"
        self.column = column
        self.extract_answer = extract_answer
        # The scorer is a method of a dataset instance; a one-item dataset is enough to own it.
        self._dataset = reasoning_gym.create_dataset(task, seed=seed, size=1)

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        entries = column(self.name, kwargs, self.column, len(completions), example="dataset[i]")
        rewards = []
        for i, (completion, entry) in enumerate(zip(completions, entries, strict=True)):
            if not isinstance(entry, Mapping) or "answer" not in entry:
                raise RewardModelError(
                    f"reward model {self.name!r}: {self.column}[{i}] must be a reasoning-gym entry "
                    f"(a dict with 'question', 'answer', 'metadata'), got {type(entry).__name__}"
                )
            answer = extract_tagged_answer(completion) if self.extract_answer else completion
            rewards.append(float(self._dataset.score_answer(answer, dict(entry))))
        return rewards
