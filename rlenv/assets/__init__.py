"""The built assets rlenv ships, and where they live.

Only data is here: the embedded model (``default_model/``, a plain Hugging Face directory), the
task prompt files and extracts (``data/``) and the LearnedReview task's reward model
(``review_rm/``). The code that builds them is dev tooling outside the runtime package: the
repo's top-level ``tools/`` (``python -m tools.corpus``, ``tools.tokenizer``, ``tools.model``,
``tools.reward_model``, ``tools.extracts``).
"""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = ASSETS_DIR / "default_model"  # rlenv.DEFAULT_MODEL
DATA_DIR = ASSETS_DIR / "data"  # task prompt files, the WordNet extract, untrained held-out scores
REVIEW_RM_DIR = ASSETS_DIR / "review_rm"  # the LearnedReview task's reward model

__all__ = ["ASSETS_DIR", "DATA_DIR", "DEFAULT_MODEL_DIR", "REVIEW_RM_DIR"]
