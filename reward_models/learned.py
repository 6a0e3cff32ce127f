"""The seeds' learned reward model: a Transformer encoder plus a linear head on the first token."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reward_models.base import RewardModelError
from reward_models.batch import check_batch
from reward_models.hf_progress import transformers_bars_hidden
from reward_models.tokenization import load_tokenizer, prepare_tokenizer

FORMAT = "rlenv-scalar-reward-model"
META_FILE, WEIGHTS_FILE, ENCODER_DIR = "reward_model.json", "model.safetensors", "encoder"


class ScalarRewardModel(nn.Module):
    """Learned reward: a Transformer encoder's first-token state through a linear head (unbounded scalar).

    With ``num_labels > 1`` the head gives class logits (trained with cross-entropy) and the reward
    is the probability of class ``reward_label`` (default: the last class), in [0, 1].

    Called with tensors (``input_ids=…``) it is an ``nn.Module`` returning (B,) scores or (B, C)
    logits. Called as ``rm(prompts, completions)`` (or by keyword, as TRL and rlenv call it) it is a
    reward model: it scores ``prompt + completion`` (or the completion alone with
    ``include_prompt=False``), batched, in eval mode, without gradients.
    """

    name = "learned"

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer: Any,
        num_labels: int = 1,
        include_prompt: bool = True,
        max_length: int = 512,
        labels: Sequence[str] | None = None,
        reward_label: int | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        hidden = getattr(getattr(encoder, "config", None), "hidden_size", None)
        if not isinstance(hidden, int):
            raise RewardModelError("learned: the encoder needs a config with hidden_size (an HF AutoModel)")
        if num_labels < 1:
            raise RewardModelError(f"learned: num_labels must be >= 1, got {num_labels}")
        if labels is not None and len(labels) != num_labels:
            raise RewardModelError(f"learned: got {len(labels)} label names for num_labels={num_labels}")
        self.reward_label = num_labels - 1 if reward_label is None else reward_label
        if not 0 <= self.reward_label < num_labels:
            raise RewardModelError(f"learned: reward_label must be in [0, {num_labels}), got {reward_label}")
        self.encoder = encoder
        self.head = nn.Linear(hidden, num_labels)
        self.tokenizer = prepare_tokenizer(tokenizer, "learned")
        self.num_labels, self.include_prompt, self.max_length = num_labels, include_prompt, max_length
        self.labels = list(labels) if labels is not None else None
        self.batch_size = batch_size

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any, tokenizer: Any, **kwargs: Any) -> ScalarRewardModel:
        """A randomly initialised model whose encoder is ``AutoModel.from_config(config)`` (e.g. a small BertConfig)."""
        from transformers import AutoModel

        return cls(AutoModel.from_config(config), tokenizer, **kwargs)

    @classmethod
    def from_encoder(cls, path: str | Path, tokenizer: Any = None, **kwargs: Any) -> ScalarRewardModel:
        """A fresh head on a pretrained local encoder checkpoint (safetensors only, no remote code)."""
        from transformers import AutoModel

        path = Path(path)
        if not path.is_dir():
            raise RewardModelError(
                f"learned: encoder checkpoint {path} does not exist; pass a local directory"
            )
        try:
            with transformers_bars_hidden():
                encoder = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise RewardModelError(
                f"learned: could not load a safetensors encoder from {path}: {exc}"
            ) from exc
        return cls(encoder, tokenizer if tokenizer is not None else load_tokenizer(path, "learned"), **kwargs)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the weights (safetensors), the encoder config, the head's settings and the tokenizer."""
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(directory / ENCODER_DIR)  # type: ignore[union-attr, operator]  # an HF encoder
        save_model(self, str(directory / WEIGHTS_FILE))
        meta = {
            "format": FORMAT,
            "version": 1,
            "num_labels": self.num_labels,
            "include_prompt": self.include_prompt,
            "max_length": self.max_length,
            "labels": self.labels,
            "reward_label": self.reward_label,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        self.tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(
        cls, path: str | Path, include_prompt: bool | None = None, device: str = "cpu", batch_size: int = 32
    ) -> ScalarRewardModel:
        """Load a model written by :meth:`save_pretrained` (safetensors only; never pickle, never remote code)."""
        from safetensors.torch import load_model
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file() or not (path / WEIGHTS_FILE).is_file():
            raise RewardModelError(
                f"learned: {path} is not a saved reward model (needs {META_FILE} and {WEIGHTS_FILE}); "
                "create one with ScalarRewardModel.save_pretrained or `rlenv rm train --out DIR`"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise RewardModelError(
                f"learned: {meta_path} has format {meta.get('format')!r}, expected {FORMAT!r}"
            )
        try:
            config = AutoConfig.from_pretrained(path / ENCODER_DIR, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise RewardModelError(
                f"learned: cannot read the encoder config in {path / ENCODER_DIR}: {exc}"
            ) from exc
        model = cls(
            AutoModel.from_config(config),
            load_tokenizer(path, "learned"),
            num_labels=int(meta["num_labels"]),
            include_prompt=bool(meta["include_prompt"]) if include_prompt is None else include_prompt,
            max_length=int(meta["max_length"]),
            labels=meta.get("labels"),
            reward_label=meta.get("reward_label"),
            batch_size=batch_size,
        )
        load_model(model, str(path / WEIGHTS_FILE), strict=True)
        return model.to(device).eval()

    # --- the module -----------------------------------------------------------------------------
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **encoder_kwargs: Any
    ) -> torch.Tensor:
        """Scores (B,) when ``num_labels == 1``, else logits (B, C)."""
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs
        ).last_hidden_state
        out = self.head(hidden[:, 0])  # (B, C): first token only
        return out.squeeze(-1) if self.num_labels == 1 else out

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Padded tensors for ``texts`` on the model's device."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = self.head.weight.device
        return {
            k: v.to(device)
            for k, v in batch.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        """Raw outputs for ``texts`` in eval mode without gradients: (N,) or (N, C)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                chunks = [
                    self(**self.tokenize(texts[i : i + self.batch_size]))
                    for i in range(0, len(texts), self.batch_size)
                ]
        finally:
            self.train(was_training)
        if not chunks:
            return torch.zeros(0) if self.num_labels == 1 else torch.zeros(0, self.num_labels)
        return torch.cat(chunks).float()

    def reward(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        """The reward-model protocol: one float per completion (see the class docstring)."""
        prompts, completions = check_batch(self.name, prompts, completions)
        texts = (
            [p + c for p, c in zip(prompts, completions, strict=True)] if self.include_prompt else completions
        )
        out = self.predict(texts)
        if self.num_labels > 1:
            out = out.softmax(-1)[:, self.reward_label]
        return out.tolist()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Text in (positionally, or by keyword as TRL and rlenv call it) -> reward model; tensors in -> forward.
        if "completions" in kwargs or (
            args and isinstance(args[0], (list, tuple)) and all(isinstance(t, str) for t in args[0])
        ):
            return self.reward(*args, **kwargs)
        if not args and "completions" in kwargs:  # the keyword form TRL (and the protocol) use
            return self.reward(**kwargs)
        return super().__call__(*args, **kwargs)
