"""The LearnedReview task's reward model (``rlenv/assets/review_rm``): a small learned scorer trained
by ``rlenv rm train``'s code on the repo's own data (the seeds' pipeline: human-like scores -> reward
model -> policy).

    python -m tools.reward_model        # rebuilds rlenv/assets/review_rm (seconds on a CPU)

Data: ``NUM_REVIEWS`` reviews from the review grammar (``tools.review_grammar``, seeded with
``SEED``, unlike the corpus), each scored with its VADER compound — the stand-in for human ratings.
The reward model is trained on them exactly as

    rlenv rm train --loss mse --data review_scores.jsonl --out rlenv/assets/review_rm \\
        --hidden-size 48 --intermediate-size 96 --vocab-size 1500 --max-length 48 --epochs 4

would (the same ``train_reward_model`` call), small enough to ship (< 1 MB of safetensors).
The policy is then trained against the *learned* scorer, not VADER: a proxy that can be gamed.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rlenv.assets import REVIEW_RM_DIR
from tools.review_grammar import ReviewGrammar

SEED = 2016
NUM_REVIEWS = 4000


def review_scores(n: int = NUM_REVIEWS, seed: int = SEED) -> list[dict[str, object]]:
    """``{"text": review, "score": VADER compound}`` records (the ``mse`` schema of ``rlenv rm train``)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    grammar, vader = ReviewGrammar(random.Random(seed)), SentimentIntensityAnalyzer()
    texts = [grammar.review() for _ in range(n)]
    return [{"text": t, "score": round(vader.polarity_scores(t)["compound"], 4)} for t in texts]


def build(out: Path = REVIEW_RM_DIR) -> dict[str, object]:
    """Write the data to a temporary file, train the reward model into ``out``; return its metrics."""
    import torch

    from reward_models.training import RMTrainConfig, train_reward_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "review_scores.jsonl"
        data.write_text("\n".join(json.dumps(r) for r in review_scores()) + "\n")
        config = RMTrainConfig(
            loss="mse",
            data=str(data),
            out=str(out),
            hidden_size=48,
            intermediate_size=96,
            vocab_size=1500,
            max_length=48,
            epochs=4,
        )
        result = train_reward_model(config)
    return {"val": result.val_metrics, "constant_baseline": result.baseline_metrics}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.reward_model", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=REVIEW_RM_DIR, help="where the reward model goes")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.out)))


if __name__ == "__main__":
    main()
