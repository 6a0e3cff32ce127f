"""Rewards from any Hugging Face sequence classifier: a label's logit, its probability, or an indicator."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import torch

from reward_models.base import RewardModelError
from reward_models.batch import BatchReward
from reward_models.hf_progress import transformers_bars_hidden

ClassifierMode = Literal["logit", "probability", "indicator"]


def resolve_label(who: str, label: int | str, id2label: dict[int, str], num_labels: int) -> int:
    """Index of ``label`` (an index or a name from the model's ``id2label``)."""
    if isinstance(label, int) and not isinstance(label, bool):
        if 0 <= label < num_labels:
            return label
    elif isinstance(label, str):
        by_name = {str(v): int(k) for k, v in id2label.items()}
        if label in by_name:
            return by_name[label]
        if label.isdigit() and int(label) < num_labels:
            return int(label)
    raise RewardModelError(
        f"{who}: label {label!r} is not one of the model's labels "
        f"{[f'{i}={id2label.get(i, i)}' for i in range(num_labels)]}; pass an index or one of those names"
    )


class ClassifierReward(BatchReward):
    """HF sequence classifier on the completion: a label's logit, its probability, or argmax indicator.

    Modes: ``logit`` (unbounded), ``probability`` (softmax, in [0, 1]), ``indicator`` (1.0 if the
    argmax is the target label, else 0.0: the seeds' reward).
    ``model`` is a local directory (loaded with ``AutoModelForSequenceClassification``, safetensors
    only, ``trust_remote_code`` only if you pass it) or a model instance with ``tokenizer``.
    ``label`` is an index or a name from ``config.id2label``. ``include_prompt=True`` classifies
    ``prompt + completion``. Runs batched, in eval mode, without gradients.
    """

    name = "classifier"

    def __init__(
        self,
        model: str | Path | torch.nn.Module,
        tokenizer: Any = None,
        mode: ClassifierMode = "probability",
        label: int | str = 1,
        include_prompt: bool = False,
        batch_size: int = 32,
        max_length: int = 512,
        device: str = "cpu",
        trust_remote_code: bool = False,
    ) -> None:
        if mode not in ("logit", "probability", "indicator"):
            raise RewardModelError(
                f"classifier: mode must be 'logit', 'probability' or 'indicator', got {mode!r}"
            )
        if batch_size < 1:
            raise RewardModelError(f"classifier: batch_size must be >= 1, got {batch_size}")
        if isinstance(model, (str, Path)):
            model, tokenizer = self._load(Path(model), tokenizer, trust_remote_code)
        elif tokenizer is None:
            raise RewardModelError("classifier: pass tokenizer= together with a model instance")
        config = getattr(model, "config", None)
        num_labels = int(getattr(config, "num_labels", 0) or 0)
        if num_labels < 1:
            raise RewardModelError(
                "classifier: the model has no config.num_labels; is it a sequence classifier?"
            )
        if tokenizer.pad_token is None:
            raise RewardModelError(
                "classifier: the tokenizer has no pad token, so batches cannot be padded; "
                "set tokenizer.pad_token (e.g. to its eos_token) first"
            )
        id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
        self.label = resolve_label(self.name, label, id2label, num_labels)
        self.model = model.to(device).eval()
        self.num_labels = num_labels
        self.tokenizer = tokenizer
        self.mode, self.include_prompt = mode, include_prompt
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self._takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    @staticmethod
    def _load(path: Path, tokenizer: Any, trust_remote_code: bool) -> tuple[torch.nn.Module, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not path.is_dir():
            raise RewardModelError(
                f"classifier: model directory {path} does not exist; pass a local checkpoint"
            )
        try:
            with transformers_bars_hidden():
                model = AutoModelForSequenceClassification.from_pretrained(
                    path, local_files_only=True, use_safetensors=True, trust_remote_code=trust_remote_code
                )
        except OSError as exc:
            raise RewardModelError(
                f"classifier: could not load safetensors weights from {path}: {exc}; "
                "save the model with save_pretrained(..., safe_serialization=True)"
            ) from exc
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(
                path, local_files_only=True, trust_remote_code=trust_remote_code
            )
        return model, tokenizer

    @torch.no_grad()
    def logits(self, texts: list[str]) -> torch.Tensor:
        """Classifier logits of ``texts``, shape (N, num_labels)."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            if not self._takes_token_types:
                batch.pop("token_type_ids", None)
            chunks.append(self.model(**batch).logits.float())  # (B, C)
        return torch.cat(chunks) if chunks else torch.zeros(0, self.num_labels)

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        texts = (
            [p + c for p, c in zip(prompts, completions, strict=True)] if self.include_prompt else completions
        )
        logits = self.logits(texts)
        if self.mode == "logit":
            values = logits[:, self.label]
        elif self.mode == "probability":
            values = logits.softmax(-1)[:, self.label]
        else:
            values = (logits.argmax(-1) == self.label).float()
        return values.tolist()
