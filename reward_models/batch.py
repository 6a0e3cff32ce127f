"""The base class of the built-in reward models and the validation of their inputs.

Every built-in checks the batch of texts and the per-example kwarg columns first, so that bad
input fails with a message that names the reward model and the fix, before any model is run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from reward_models.base import RewardModelError


def is_chat_messages(item: Any) -> bool:
    """Whether ``item`` is a conversational sample: a non-empty list of ``{"role", "content"}`` dicts."""
    return isinstance(item, list) and bool(item) and all(isinstance(m, dict) and "content" in m for m in item)


def check_batch(who: str, prompts: Sequence[str], completions: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return ``prompts`` and ``completions`` as lists after checking they are equal-length lists of str."""
    for label, texts in (("prompts", prompts), ("completions", completions)):
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise RewardModelError(
                f"reward model {who!r}: {label} must be a list of str (one per example), "
                f"got {type(texts).__name__}; wrap a single text as [text]"
            )
        for i, text in enumerate(texts):
            if is_chat_messages(text):
                raise RewardModelError(
                    f"reward model {who!r}: {label}[{i}] is a list of chat messages (a TRL conversational "
                    "dataset); wrap the reward with reward_models.trl_interop.as_trl_reward(rm), which scores "
                    "the messages' text"
                )
            if not isinstance(text, str):
                raise RewardModelError(
                    f"reward model {who!r}: {label}[{i}] is {type(text).__name__}, expected str; "
                    "decode token ids to text before scoring"
                )
    if len(prompts) != len(completions):
        raise RewardModelError(
            f"reward model {who!r}: got {len(prompts)} prompts for {len(completions)} completions; "
            "pass one prompt per completion"
        )
    return list(prompts), list(completions)


def column(who: str, kwargs: Mapping[str, Any], key: str, n: int, example: str = "...") -> list[Any]:
    """Return the per-example column ``kwargs[key]`` as a list of ``n`` entries.

    Raises :class:`RewardModelError` saying to pass ``key=[...]`` when it is missing, and naming the
    lengths when it does not have one entry per completion.
    """
    if key not in kwargs or kwargs[key] is None:
        raise RewardModelError(
            f"reward model {who!r} needs the per-example column {key!r}: pass {key}=[{example}, ...] "
            f"with one entry per completion (a dataset column named {key!r} does this under TRL)"
        )
    values = kwargs[key]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise RewardModelError(
            f"reward model {who!r}: column {key!r} must be a list with one entry per completion, "
            f"got {type(values).__name__}; wrap a shared value as [value] * len(completions)"
        )
    if len(values) != n:
        raise RewardModelError(
            f"reward model {who!r}: column {key!r} has {len(values)} entries for {n} completions; "
            "pass exactly one entry per completion"
        )
    return list(values)


def text_list(who: str, value: Any, what: str, index: int | None = None) -> list[str]:
    """Normalise ``value`` (a str or a non-empty sequence of str) to a list of str."""
    where = f"{what}[{index}]" if index is not None else what
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise RewardModelError(
        f"reward model {who!r}: {where} must be a str or a non-empty list of str, got {value!r}"
    )


class BatchReward(ABC):
    """A batched reward model with TRL's signature; subclasses implement :meth:`score_batch`.

    ``__call__`` validates the texts, then hands them to ``score_batch`` with every kwarg column, so
    that unrelated dataset columns (which TRL passes along) are accepted and ignored.
    """

    name: str = "reward"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        prompts, completions = check_batch(self.name, prompts, completions)
        return self.score_batch(prompts, completions, **kwargs)

    @abstractmethod
    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        """Score validated texts; one float per completion."""

    @property
    def __name__(self) -> str:
        """The name TRL logs a reward function under (``GRPOTrainer`` reads ``__name__``)."""
        return self.name

    def __repr__(self) -> str:
        return f"<reward model {self.name!r} ({type(self).__name__})>"
