"""Writes ``assets/data/review_references.jsonl``, the ContinueReview task's prompts and references.

    python -m rlenv.tasks.reference_data        # rewrites the file; same seed, same file

Each record is a review from the embedded model's own review grammar (``rlenv.assets.build``),
cut after its first ``PROMPT_WORDS`` words: ``{"prompt": <opening>, "references": [<the rest>]}``.
The grammar is seeded with ``SEED``, distinct from the corpus seed, so the reviews are new text
in the style the model was trained on.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rlenv.assets.build import ReviewGrammar

SEED = 2015
NUM_RECORDS = 300
PROMPT_WORDS = 5
PATH = Path(__file__).resolve().parent.parent / "assets" / "data" / "review_references.jsonl"


def reference_records(n: int = NUM_RECORDS, seed: int = SEED) -> list[dict[str, object]]:
    grammar = ReviewGrammar(random.Random(seed))
    records: dict[str, dict[str, object]] = {}
    while len(records) < n:
        words = grammar.review().split()
        if len(words) < PROMPT_WORDS + 4:
            continue
        prompt = " ".join(words[:PROMPT_WORDS])
        records.setdefault(prompt, {"prompt": prompt, "references": [" ".join(words[PROMPT_WORDS:])]})
    return list(records.values())


def main() -> None:
    lines = [json.dumps(r) for r in reference_records()]
    PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
