"""The embedded model's corpus: one document per line, four kinds mixed by a seeded shuffle.

- WordNet usage examples (real English; the extract the repo carries, ``tools.wordnet``);
- generated reviews of mixed sentiment, balanced by VADER into positive, negative and neutral
  thirds, so the untrained model is neutral on average (``tools.review_grammar``);
- arithmetic statements ``a+b=c`` that are right most but not all of the time;
- keyword instructions ``Write a sentence with the word w: ...`` whose answer uses ``w`` only
  about half of the time.

The same build writes the task prompt files (``review_prompts.txt``, ``keyword_prompts.jsonl``),
none of them a training document. ``python -m tools.corpus`` takes seconds and reproduces the
shipped hash (``build_info.json``) and prompt files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlenv.assets import DATA_DIR
from tools.hashing import sha256_file
from tools.review_grammar import DOMAINS, ReviewGrammar, review_documents, review_prompts
from tools.wordnet import WORDNET_EXTRACT, Synset, read_wordnet, wordnet_sentences

log = logging.getLogger(__name__)

SEED = 1234
KEYWORD_INSTRUCTION = "Write a sentence with the word {word}:"
BUILD_DIR = Path("build/default_model")  # corpus.txt, tokenizer/, model/ of a rebuild


def arithmetic_documents(
    n: int, rng: random.Random, p_correct: float = 0.6, p_small: float = 0.5
) -> list[str]:
    """``a+b=c``, ``a-b=c`` (c >= 0) and ``a*b=c`` (b one digit), one-digit operands with probability
    ``p_small``; ``c`` is right with probability ``p_correct`` and off by a little otherwise."""
    docs = []
    for _ in range(n):
        small = rng.random() < p_small
        a, b = (rng.randint(0, 9), rng.randint(0, 9)) if small else (rng.randint(0, 99), rng.randint(0, 99))
        op = rng.choices("+-*", weights=(5, 3, 2))[0]
        if op == "-" and b > a:
            a, b = b, a
        if op == "*":
            b %= 10
        answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        if rng.random() >= p_correct:
            offset = rng.choices((1, 2, 3, 10), weights=(5, 2, 1, 2))[0]
            answer = answer + offset if answer < offset or rng.random() < 0.5 else answer - offset
        docs.append(f"{a}{op}{b}={answer}")
    return docs


_WORD = re.compile(r"^[a-z]{4,12}$")


def keyword_pool(synsets: Sequence[Synset]) -> dict[str, list[tuple[int, str]]]:
    """Single-word lemmas -> [(lexicographer file, example using the word)], for common-looking words."""
    pool: dict[str, list[tuple[int, str]]] = {}
    for s in synsets:
        for lemma in s.lemmas:
            if not _WORD.match(lemma):
                continue
            uses = [e for e in s.examples if re.search(rf"\b{lemma}\b", e, re.IGNORECASE)]
            for example in uses:
                pool.setdefault(lemma, []).append((s.lex_file, example))
    return pool


def keyword_documents(
    n: int, synsets: Sequence[Synset], rng: random.Random, p_uses_word: float = 0.5
) -> list[str]:
    """``Write a sentence with the word w: <sentence>``; the sentence contains ``w`` about half the
    time and is otherwise an example from the same WordNet topic (or a review sentence) without it."""
    pool = keyword_pool(synsets)
    words = sorted(pool)
    by_topic: dict[int, list[str]] = {}
    for s in synsets:
        by_topic.setdefault(s.lex_file, []).extend(s.examples)
    grammar = ReviewGrammar(rng)
    docs = []
    for _ in range(n):
        if rng.random() < 0.25:  # review-vocabulary keywords with review answers
            domain = grammar.pick(DOMAINS)
            item = grammar.pick(domain.items)
            word = item.split()[-1]
            answer = grammar.sentence(grammar.pick("+-0"), domain, item)
            while (re.search(rf"\b{word}\b", answer) is not None) != (rng.random() < p_uses_word):
                answer = grammar.sentence(grammar.pick("+-0"), domain, item)
        else:
            word = words[rng.randrange(len(words))]
            topic, example = pool[word][rng.randrange(len(pool[word]))]
            answer = example
            if rng.random() >= p_uses_word:
                candidates = by_topic[topic]
                answer = candidates[rng.randrange(len(candidates))]
                while re.search(rf"\b{word}\b", answer, re.IGNORECASE):
                    answer = candidates[rng.randrange(len(candidates))]
        docs.append(f"{KEYWORD_INSTRUCTION.format(word=word)} {answer}")
    return docs


def keyword_task_prompts(n: int, synsets: Sequence[Synset], rng: random.Random) -> list[dict[str, str]]:
    """Keyword-task records: everyday words (ones with several usage examples, or review items)."""
    pool = keyword_pool(synsets)
    common = [w for w in sorted(pool) if len(pool[w]) >= 3]
    review_words = sorted(
        {item.split()[-1] for d in DOMAINS for item in d.items if item.split()[-1].isalpha()}
    )
    chosen: dict[str, None] = {}
    while len(chosen) < n:
        source = review_words if rng.random() < 0.3 else common
        chosen[source[rng.randrange(len(source))]] = None
    return [{"prompt": KEYWORD_INSTRUCTION.format(word=w), "keyword": w} for w in chosen]


@dataclass(frozen=True)
class CorpusConfig:
    seed: int = SEED
    n_reviews: int = 13_500
    n_arithmetic: int = 60_000
    n_keyword: int = 24_000
    n_review_prompts: int = 300
    n_keyword_prompts: int = 300


@dataclass(frozen=True)
class Corpus:
    documents: list[str]
    review_prompts: list[str]
    keyword_prompts: list[dict[str, str]]


def build_corpus(config: CorpusConfig = CorpusConfig(), wordnet_extract: Path = WORDNET_EXTRACT) -> Corpus:
    """All documents, shuffled by a seeded RNG; the task prompts never equal a training document."""
    synsets = read_wordnet(wordnet_extract)
    # one RNG per part, so changing one part's size leaves the others' documents alone
    reviews = review_documents(config.n_reviews, random.Random(f"{config.seed}-reviews"))
    arithmetic = arithmetic_documents(config.n_arithmetic, random.Random(f"{config.seed}-arithmetic"))
    keywords = keyword_documents(config.n_keyword, synsets, random.Random(f"{config.seed}-keywords"))
    documents = wordnet_sentences(synsets) + reviews + arithmetic + keywords
    random.Random(f"{config.seed}-shuffle").shuffle(documents)
    known = set(documents)
    prompts = [
        p
        for p in review_prompts(config.n_review_prompts + 50, random.Random(f"{config.seed}-prompts"))
        if p not in known
    ][: config.n_review_prompts]
    keyword_records = keyword_task_prompts(
        config.n_keyword_prompts, synsets, random.Random(f"{config.seed}-keyword-prompts")
    )
    return Corpus(documents, prompts, keyword_records)


def corpus_text(documents: Sequence[str]) -> str:
    return "".join(d + "\n" for d in documents)


def write_corpus(out: Path, config: CorpusConfig = CorpusConfig(), data_dir: Path | None = None) -> Path:
    """Write ``out/corpus.txt``; with ``data_dir``, also the task prompt files there."""
    corpus = build_corpus(config)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "corpus.txt"
    path.write_text(corpus_text(corpus.documents), encoding="utf-8")
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "review_prompts.txt").write_text(
            "".join(p + "\n" for p in corpus.review_prompts), encoding="utf-8"
        )
        (data_dir / "keyword_prompts.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in corpus.keyword_prompts), encoding="utf-8"
        )
    log.info("corpus: %d documents, %d bytes -> %s", len(corpus.documents), path.stat().st_size, path)
    return path


def read_documents(corpus_path: Path) -> list[str]:
    return corpus_path.read_text(encoding="utf-8").splitlines()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help="where corpus.txt goes")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where the task prompt files go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = write_corpus(args.out, data_dir=args.data_dir)
    print(f"corpus.txt sha256 {sha256_file(path)}")


if __name__ == "__main__":
    main()
