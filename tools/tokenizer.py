"""The embedded model's tokenizer: byte-level BPE trained on the corpus, digits one token each.

``python -m tools.tokenizer`` takes seconds after ``python -m tools.corpus`` and reproduces the
shipped ``tokenizer.json`` byte for byte.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tools.corpus import BUILD_DIR, read_documents
from tools.hashing import sha256_file

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
PAD = "<|pad|>"
VOCAB_SIZE = 4096
MAX_LENGTH = 256


def train_tokenizer(documents: Sequence[str], out: Path, vocab_size: int = VOCAB_SIZE) -> Path:
    """Byte-level BPE with every digit its own token (so numbers are compositional); saved as a
    ``PreTrainedTokenizerFast`` whose EOS = BOS = ``<|endoftext|>`` and pad = ``<|pad|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=PAD,
        model_max_length=MAX_LENGTH,
    )
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    log.info("tokenizer: %d tokens -> %s", len(fast), out)
    return out / "tokenizer.json"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.tokenizer", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=BUILD_DIR, help="build directory: reads corpus.txt, writes tokenizer/"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = train_tokenizer(read_documents(args.out / "corpus.txt"), args.out / "tokenizer")
    print(f"tokenizer.json sha256 {sha256_file(path)}")


if __name__ == "__main__":
    main()
