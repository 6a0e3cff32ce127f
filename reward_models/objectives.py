"""The three reward-model training objectives: pointwise MSE, class cross-entropy, Bradley–Terry pairs.

Each objective knows how to batch its examples into a loss, how to evaluate a model on held-out
examples, and what a constant predictor fitted on the training set scores (the baseline).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reward_models import metrics
from reward_models.data import Example, LabelledText, PreferencePair, RMDataError, ScoredText, label_names
from reward_models.learned import ScalarRewardModel


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Mean ``-log sigmoid(r_chosen - r_rejected - margin)`` over pairs; inputs (B,)."""
    return -F.logsigmoid(chosen - rejected - margin).mean()


class Objective(ABC):
    """One loss and its matching evaluation; ``primary`` names the metric where higher/lower is better."""

    loss_name: str
    example_type: type
    num_labels: int = 1
    labels: list[str] | None = None

    def __init__(self, train: Sequence[Example]) -> None:
        bad = next((e for e in train if not isinstance(e, self.example_type)), None)
        if bad is not None:
            raise RMDataError(
                f"--loss {self.loss_name} needs {self.example_type.__name__} examples, got {bad!r}"
            )

    def init_head(self, model: ScalarRewardModel) -> None:
        """Optionally start the head at the constant-predictor solution (default: leave it)."""
        return None

    @abstractmethod
    def loss(self, model: ScalarRewardModel, batch: Sequence[Any]) -> torch.Tensor:
        """Scalar training loss of ``batch``."""

    @abstractmethod
    def evaluate(self, model: ScalarRewardModel, examples: Sequence[Any]) -> dict[str, float]:
        """Validation metrics of ``model`` on ``examples``."""

    @abstractmethod
    def baseline(self, train: Sequence[Any], val: Sequence[Any]) -> dict[str, float]:
        """The same metrics for the best constant predictor fitted on ``train``."""


class PointwiseMSE(Objective):
    """Regress each text's score with mean squared error."""

    loss_name, example_type = "mse", ScoredText

    def __init__(self, train: Sequence[ScoredText]) -> None:
        super().__init__(train)
        self.train_mean = float(np.mean([e.score for e in train]))

    def init_head(self, model: ScalarRewardModel) -> None:
        with torch.no_grad():
            model.head.bias.fill_(self.train_mean)

    def loss(self, model: ScalarRewardModel, batch: Sequence[ScoredText]) -> torch.Tensor:
        scores = model(**model.tokenize([e.text for e in batch]))  # (B,)
        target = torch.tensor([e.score for e in batch], dtype=scores.dtype, device=scores.device)
        return F.mse_loss(scores, target)

    def _metrics(self, predictions: np.ndarray, val: Sequence[ScoredText]) -> dict[str, float]:
        targets = np.array([e.score for e in val])
        return {
            "mse": metrics.mse(predictions, targets),
            "pearson": metrics.pearson(predictions, targets),
            "spearman": metrics.spearman(predictions, targets),
        }

    def evaluate(self, model: ScalarRewardModel, examples: Sequence[ScoredText]) -> dict[str, float]:
        return self._metrics(model.predict([e.text for e in examples]).numpy(), examples)

    def baseline(self, train: Sequence[ScoredText], val: Sequence[ScoredText]) -> dict[str, float]:
        return self._metrics(np.full(len(val), self.train_mean), val)


class ClassCrossEntropy(Objective):
    """Classify each text into its label with cross-entropy over ``num_labels`` logits."""

    loss_name, example_type = "ce", LabelledText

    def __init__(self, train: Sequence[LabelledText], all_examples: Sequence[LabelledText]) -> None:
        super().__init__(train)
        self.labels = label_names(all_examples)
        if len(self.labels) < 2:
            raise RMDataError(f"--loss ce needs at least 2 distinct labels, found {self.labels}")
        self.num_labels = len(self.labels)
        self.index = {name: i for i, name in enumerate(self.labels)}
        counts = np.bincount([self.index[e.label] for e in train], minlength=self.num_labels)
        self.majority = int(counts.argmax())

    def _targets(self, examples: Sequence[LabelledText]) -> np.ndarray:
        return np.array([self.index[e.label] for e in examples])

    def loss(self, model: ScalarRewardModel, batch: Sequence[LabelledText]) -> torch.Tensor:
        logits = model(**model.tokenize([e.text for e in batch]))  # (B, C)
        return F.cross_entropy(logits, torch.as_tensor(self._targets(batch), device=logits.device))

    def evaluate(self, model: ScalarRewardModel, examples: Sequence[LabelledText]) -> dict[str, float]:
        logits = model.predict([e.text for e in examples])
        targets = torch.as_tensor(self._targets(examples))
        return {
            "accuracy": metrics.accuracy(logits.argmax(-1).numpy(), targets.numpy()),
            "cross_entropy": float(F.cross_entropy(logits, targets)),
        }

    def baseline(self, train: Sequence[LabelledText], val: Sequence[LabelledText]) -> dict[str, float]:
        counts = np.bincount([self.index[e.label] for e in train], minlength=self.num_labels) + 1e-9
        log_prior = torch.log(torch.as_tensor(counts / counts.sum(), dtype=torch.float32))
        targets = torch.as_tensor(self._targets(val))
        return {
            "accuracy": metrics.accuracy(np.full(len(val), self.majority), targets.numpy()),
            "cross_entropy": float(F.cross_entropy(log_prior.expand(len(val), -1), targets)),
        }


class PairwiseBradleyTerry(Objective):
    """Score the chosen text above the rejected one: Bradley–Terry ``-log sigmoid(r_c - r_r - margin)``."""

    loss_name, example_type = "bt", PreferencePair

    def loss(self, model: ScalarRewardModel, batch: Sequence[PreferencePair]) -> torch.Tensor:
        # One forward over chosen and rejected together: (2B,) -> two (B,)
        scores = model(**model.tokenize([e.chosen for e in batch] + [e.rejected for e in batch]))
        chosen, rejected = scores[: len(batch)], scores[len(batch) :]
        margin = torch.tensor([e.margin for e in batch], dtype=scores.dtype, device=scores.device)
        return bradley_terry_loss(chosen, rejected, margin)

    def evaluate(self, model: ScalarRewardModel, examples: Sequence[PreferencePair]) -> dict[str, float]:
        chosen = model.predict([e.chosen for e in examples])
        rejected = model.predict([e.rejected for e in examples])
        margin = torch.tensor([e.margin for e in examples])
        return {
            "pairwise_accuracy": metrics.pairwise_accuracy(chosen.numpy(), rejected.numpy()),
            "bt_loss": float(bradley_terry_loss(chosen, rejected, margin)),
        }

    def baseline(self, train: Sequence[PreferencePair], val: Sequence[PreferencePair]) -> dict[str, float]:
        zeros = torch.zeros(len(val))
        margin = torch.tensor([e.margin for e in val])
        return {"pairwise_accuracy": 0.5, "bt_loss": float(bradley_terry_loss(zeros, zeros, margin))}


def make_objective(loss: str, train: Sequence[Example], all_examples: Sequence[Example]) -> Objective:
    """The objective for ``loss`` (``mse``, ``ce`` or ``bt``), fitted to the training examples."""
    if loss == "mse":
        return PointwiseMSE(train)  # type: ignore[arg-type]
    if loss == "ce":
        return ClassCrossEntropy(train, all_examples)  # type: ignore[arg-type]
    if loss == "bt":
        return PairwiseBradleyTerry(train)
    raise RMDataError(f"unknown loss {loss!r}; choose mse, ce or bt")
