"""VADER sentiment of the completion."""

from __future__ import annotations

from typing import Any, Literal

from reward_models.base import RewardModelError
from reward_models.batch import BatchReward

VaderField = Literal["compound", "pos", "neg", "neu"]


class VaderSentiment(BatchReward):
    """VADER sentiment of the completion: compound score in [-1, 1] (positive is higher).

    ``field`` selects another VADER output instead (``pos``/``neg``/``neu``, each in [0, 1]).
    The prompt is not scored; ``include_prompt=True`` scores ``prompt + completion``.
    """

    name = "vader"

    def __init__(self, field: VaderField = "compound", include_prompt: bool = False) -> None:
        if field not in ("compound", "pos", "neg", "neu"):
            raise RewardModelError(f"vader: field must be compound, pos, neg or neu, got {field!r}")
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.field = field
        self.include_prompt = include_prompt
        self._analyzer = SentimentIntensityAnalyzer()  # loads the lexicon once

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        texts = (
            [p + c for p, c in zip(prompts, completions, strict=True)] if self.include_prompt else completions
        )
        return [float(self._analyzer.polarity_scores(t)[self.field]) for t in texts]
