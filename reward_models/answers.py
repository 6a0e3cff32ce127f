"""Answer checking against the per-example ``answer`` column: exact (normalised) and numeric."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from typing import Any, Literal

from reward_models.base import RewardModelError
from reward_models.batch import BatchReward, column

# Thousands-separated numbers first so that "1,000" is one number, then plain decimals.
_NUMBER = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-−]?\.\d+")
_EDGE_PUNCT = string.punctuation + " \t\n"


def parse_numbers(text: str) -> list[float]:
    """Every number in ``text`` in order: handles "19", " 19.", "= 19", "-3", "1,000", "3.50"."""
    return [float(m.group().replace(",", "").replace("−", "-")) for m in _NUMBER.finditer(text)]


def parse_number(text: str, which: Literal["first", "last"] = "last") -> float | None:
    """The first or last number in ``text``, or ``None`` if it has none."""
    numbers = parse_numbers(text)
    if not numbers:
        return None
    return numbers[0] if which == "first" else numbers[-1]


def normalize_answer(text: str) -> str:
    """Case-fold, collapse whitespace and strip surrounding punctuation/quotes."""
    return " ".join(text.casefold().split()).strip(_EDGE_PUNCT)


def _answers(who: str, value: Any, index: int) -> list[Any]:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, (str, int, float)) for v in value):
        return list(value)
    raise RewardModelError(
        f"reward model {who!r}: answer[{index}] must be a str, a number or a non-empty list of them, got {value!r}"
    )


class ExactMatch(BatchReward):
    """Completion equals the ``answer`` column after normalisation: 1.0 if equal else 0.0.

    Normalisation (``normalize=True``) case-folds, collapses whitespace and strips surrounding
    punctuation. An answer entry may be a list of acceptable answers.
    """

    name = "exact_match"

    def __init__(self, normalize: bool = True, column: str = "answer") -> None:
        self.normalize = normalize
        self.column = column

    def _norm(self, text: str) -> str:
        return normalize_answer(text) if self.normalize else text

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        answers = column(self.name, kwargs, self.column, len(completions), example="'42'")
        rewards = []
        for i, (completion, answer) in enumerate(zip(completions, answers, strict=True)):
            accepted = {self._norm(str(a)) for a in _answers(self.name, answer, i)}
            rewards.append(float(self._norm(completion) in accepted))
        return rewards


class NumericMatch(BatchReward):
    """The completion's first/last number equals the ``answer`` column within tolerance: 1.0 else 0.0.

    Numbers are parsed tolerantly ("= 19.", "-3", "1,000", "3.50"); a completion with no number
    scores 0.0. Equality uses ``math.isclose(x, answer, rel_tol=rel_tol, abs_tol=abs_tol)``.

    ``partial_width`` (off by default) gives a wrong number partial credit that falls linearly with
    its distance: ``max(0, 1 - |x - answer| / partial_width)``, so "4+5=11" earns more than "4+5=41"
    and a policy that is never exactly right still gets a gradient toward the answer.
    """

    name = "numeric"

    def __init__(
        self,
        which: Literal["first", "last"] = "last",
        abs_tol: float = 1e-6,
        rel_tol: float = 0.0,
        column: str = "answer",
        partial_width: float | None = None,
    ) -> None:
        if which not in ("first", "last"):
            raise RewardModelError(f"numeric: which must be 'first' or 'last', got {which!r}")
        if abs_tol < 0 or rel_tol < 0:
            raise RewardModelError("numeric: abs_tol and rel_tol must be >= 0")
        if partial_width is not None and not partial_width > 0:
            raise RewardModelError(f"numeric: partial_width must be > 0 or None, got {partial_width}")
        self.which, self.abs_tol, self.rel_tol, self.column = which, abs_tol, rel_tol, column
        self.partial_width = partial_width

    def _target(self, value: Any, index: int) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        parsed = parse_number(value, "first") if isinstance(value, str) else None
        if parsed is None:
            raise RewardModelError(
                f"reward model {self.name!r}: answer[{index}] = {value!r} is not a number; "
                "pass numeric answers (e.g. answer=[19, -3.5] or ['19', '-3.5'])"
            )
        return parsed

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        answers = column(self.name, kwargs, self.column, len(completions), example="19")
        targets = [self._target(a, i) for i, a in enumerate(answers)]
        rewards = []
        for completion, target in zip(completions, targets, strict=True):
            got = parse_number(completion, self.which)
            ok = got is not None and math.isclose(got, target, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
            if not ok and got is not None and self.partial_width is not None:
                rewards.append(max(0.0, 1.0 - abs(got - target) / self.partial_width))
            else:
                rewards.append(float(ok))
        return rewards
