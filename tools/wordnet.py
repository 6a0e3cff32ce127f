"""WordNet 3.0 usage examples: the extract the repo carries (``rlenv/assets/data/wordnet_examples.tsv.gz``,
licence in ``data/WORDNET_LICENSE``), its reader, and the writer that rebuilds it from WordNet's own
``data.*`` files (``python -m tools.extracts wordnet``; the only step that needs a system package,
Debian's ``wordnet-base``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlenv.assets import DATA_DIR

WORDNET_DIR = Path("/usr/share/wordnet")  # only ``python -m tools.extracts wordnet`` reads it
WORDNET_EXTRACT = DATA_DIR / "wordnet_examples.tsv.gz"


@dataclass(frozen=True)
class Synset:
    """One WordNet synset that has usage examples."""

    lex_file: int
    lemmas: tuple[str, ...]
    examples: tuple[str, ...]


_QUOTED = re.compile(r'"([^"]+)"')


def read_wordnet_data_files(wordnet_dir: Path = WORDNET_DIR) -> list[Synset]:
    """Every synset with at least one usage example, in file order (adj, adv, noun, verb), read from
    WordNet 3.0's ``data.*`` files. Only :func:`write_wordnet_extract` needs this."""
    synsets = []
    for part in ("adj", "adv", "noun", "verb"):
        path = wordnet_dir / f"data.{part}"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; extracting from WordNet needs its data files (apt-get install "
                "wordnet-base). Building the corpus does not: it reads the extract the repo carries"
            )
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # licence header
            fields, gloss = line.split(" | ", 1)
            parts = fields.split()
            word_count = int(parts[3], 16)
            lemmas = tuple(parts[4 + 2 * i].lower() for i in range(word_count))
            examples = tuple(_clean_sentence(q) for q in _QUOTED.findall(gloss))
            examples = tuple(e for e in examples if e)
            if examples:
                synsets.append(Synset(int(parts[1]), lemmas, examples))
    return synsets


# One synset per line: lexicographer file number, lemmas joined by spaces, examples joined by tabs.
# Cleaned examples hold no tab or newline (whitespace is collapsed) and lemmas no space (WordNet
# writes multi-word lemmas with underscores), so the format needs no quoting.
def write_wordnet_extract(synsets: Sequence[Synset], path: Path = WORDNET_EXTRACT) -> Path:
    """Write the synsets the corpus uses as a gzipped TSV with fixed gzip metadata (same bytes every time)."""
    import gzip

    lines = "".join(f"{s.lex_file}\t{' '.join(s.lemmas)}\t" + "\t".join(s.examples) + "\n" for s in synsets)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(lines.encode("utf-8"))
    return path


def read_wordnet(path: Path = WORDNET_EXTRACT) -> list[Synset]:
    """The synsets with usage examples, from the extract the repo carries (no system package needed)."""
    import gzip

    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; it ships with rlenv (reinstall the package), or rewrite it from WordNet "
            "with `python -m tools.extracts wordnet` after `apt-get install wordnet-base`"
        )
    synsets = []
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        lex_file, lemmas, *examples = line.split("\t")
        synsets.append(Synset(int(lex_file), tuple(lemmas.split(" ")), tuple(examples)))
    return synsets


def _clean_sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text.split()) >= 2 else ""


def wordnet_sentences(synsets: Sequence[Synset]) -> list[str]:
    """The usage examples, deduplicated in first-seen order."""
    return list(dict.fromkeys(e for s in synsets for e in s.examples))
