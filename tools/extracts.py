"""Data files the repo carries, rewritten from their sources (same seed or source, same bytes)::

    python -m tools.extracts references   # data/review_references.jsonl, ContinueReview's prompts + references
    python -m tools.extracts wordnet      # data/wordnet_examples.tsv.gz from /usr/share/wordnet (wordnet-base)

``references``: each record is a review from the review grammar (``tools.review_grammar``), cut after
its first ``PROMPT_WORDS`` words: ``{"prompt": <opening>, "references": [<the rest>]}``. The grammar
is seeded with ``SEED``, distinct from the corpus seed, so the reviews are new text in the style
the model was trained on.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path

from rlenv.assets import DATA_DIR
from tools.hashing import sha256_file
from tools.review_grammar import ReviewGrammar
from tools.wordnet import WORDNET_DIR, read_wordnet_data_files, write_wordnet_extract

SEED = 2015
NUM_RECORDS = 300
PROMPT_WORDS = 5
REFERENCES_PATH = DATA_DIR / "review_references.jsonl"


def reference_records(n: int = NUM_RECORDS, seed: int = SEED) -> list[dict[str, object]]:
    """``n`` distinct ``{"prompt", "references"}`` records, the opening of each review unique."""
    grammar = ReviewGrammar(random.Random(seed))
    records: dict[str, dict[str, object]] = {}
    while len(records) < n:
        words = grammar.review().split()
        if len(words) < PROMPT_WORDS + 4:
            continue
        prompt = " ".join(words[:PROMPT_WORDS])
        records.setdefault(prompt, {"prompt": prompt, "references": [" ".join(words[PROMPT_WORDS:])]})
    return list(records.values())


def write_references(path: Path = REFERENCES_PATH) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in reference_records()) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.extracts", description=__doc__.split("\n\n")[0])
    parser.add_argument("extract", choices=("references", "wordnet"))
    parser.add_argument(
        "--wordnet-dir", type=Path, default=WORDNET_DIR, help="WordNet 3.0's data files (wordnet)"
    )
    args = parser.parse_args(argv)
    if args.extract == "references":
        path = write_references()
    else:
        path = write_wordnet_extract(read_wordnet_data_files(args.wordnet_dir))
    print(f"{path} sha256 {sha256_file(path)}")


if __name__ == "__main__":
    main()
