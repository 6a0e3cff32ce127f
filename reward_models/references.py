"""Reference-based text metrics against the per-example ``references`` column: BLEU, chrF, TER, ROUGE."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from reward_models.base import RewardModelError
from reward_models.batch import BatchReward, column, text_list


class ReferenceReward(BatchReward):
    """Scores each completion against its references (kwarg column, or fixed ``references=``)."""

    def __init__(self, references: str | Sequence[str] | None = None, column: str = "references") -> None:
        self.fixed = None if references is None else text_list(self.name, references, "references")
        self.column = column

    def references_for(self, n: int, kwargs: dict[str, Any]) -> list[list[str]]:
        """The references of each of ``n`` completions: the fixed ones, else the kwarg column."""
        if self.fixed is not None:
            return [self.fixed] * n
        entries = column(self.name, kwargs, self.column, n, example="'reference text'")
        return [text_list(self.name, e, f"column {self.column!r}", i) for i, e in enumerate(entries)]

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        refs = self.references_for(len(completions), kwargs)
        return [self.score_one(c, r) for c, r in zip(completions, refs, strict=True)]

    @abstractmethod
    def score_one(self, completion: str, references: list[str]) -> float:
        """Score one completion against its non-empty list of references."""


class BleuReward(ReferenceReward):
    """Sentence BLEU (sacrebleu, effective order) against the references, scaled to [0, 1]."""

    name = "bleu"

    def __init__(self, references: str | Sequence[str] | None = None, column: str = "references") -> None:
        super().__init__(references, column)
        from sacrebleu.metrics.bleu import BLEU

        self._metric = BLEU(effective_order=True)

    def score_one(self, completion: str, references: list[str]) -> float:
        return min(1.0, max(0.0, self._metric.sentence_score(completion, references).score / 100.0))


class ChrfReward(ReferenceReward):
    """Sentence chrF (sacrebleu; ``word_order=2`` gives chrF++) against the references, in [0, 1]."""

    name = "chrf"

    def __init__(
        self, references: str | Sequence[str] | None = None, column: str = "references", word_order: int = 0
    ) -> None:
        super().__init__(references, column)
        from sacrebleu.metrics.chrf import CHRF

        self._metric = CHRF(word_order=word_order)

    def score_one(self, completion: str, references: list[str]) -> float:
        return min(1.0, max(0.0, self._metric.sentence_score(completion, references).score / 100.0))


class TerReward(ReferenceReward):
    """Negated translation edit rate (sacrebleu TER / 100): 0.0 is a perfect match, lower is worse.

    TER counts edits per reference word (lower is better, unbounded above), so the reward is
    ``-TER / 100`` in (-inf, 0]: higher is better, like every other reward here.
    """

    name = "ter"

    def __init__(self, references: str | Sequence[str] | None = None, column: str = "references") -> None:
        super().__init__(references, column)
        from sacrebleu.metrics.ter import TER

        self._metric = TER()

    def score_one(self, completion: str, references: list[str]) -> float:
        return -self._metric.sentence_score(completion, references).score / 100.0


class RougeReward(ReferenceReward):
    """ROUGE F1 (rouge-score; ``variant`` rouge1, rouge2 or rougeL) against the best reference, in [0, 1]."""

    name = "rouge"

    def __init__(
        self,
        variant: Literal["rouge1", "rouge2", "rougeL", "rougeLsum"] = "rougeL",
        references: str | Sequence[str] | None = None,
        column: str = "references",
        use_stemmer: bool = True,
    ) -> None:
        if variant not in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            raise RewardModelError(
                f"rouge: variant must be rouge1, rouge2, rougeL or rougeLsum, got {variant!r}"
            )
        self.name = f"rouge:{variant}"
        super().__init__(references, column)
        from rouge_score.rouge_scorer import RougeScorer

        self.variant = variant
        self._scorer = RougeScorer([variant], use_stemmer=use_stemmer)

    def score_one(self, completion: str, references: list[str]) -> float:
        return max(self._scorer.score(ref, completion)[self.variant].fmeasure for ref in references)
