"""Loading and checking the tokenizer an environment acts in (core layer: imports only the asset paths)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlenv.assets import DEFAULT_MODEL_DIR

if TYPE_CHECKING:  # typing only: transformers' tokenizer classes import torch, which start-up avoids
    from transformers import PreTrainedTokenizerBase

DEFAULT_MODEL: str = str(DEFAULT_MODEL_DIR)
"""Path of the embedded GPT-2-style LM + tokenizer (loadable with ``from_pretrained``)."""


def load_tokenizer(spec: Any = None, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Return a ready tokenizer from ``None`` (the embedded default), a local path, or an instance.

    The tokenizer must define an EOS token (it ends episodes) and a pad token (it fills the fixed-
    shape observation). ``trust_remote_code`` is never implied: pass it explicitly to allow it.
    """
    # lazy: transformers' tokenizers import torch; `rlenv envs` and the CLI's input errors run without it
    from transformers import AutoTokenizer, PreTrainedTokenizerBase

    if spec is None:
        spec = DEFAULT_MODEL
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(
                f"tokenizer path {str(path)!r} does not exist; pass a local directory with tokenizer files "
                "(rlenv never downloads from a hub), or omit it to use rlenv.DEFAULT_MODEL"
            )
        check_tokenizer_files(path)
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    elif isinstance(spec, PreTrainedTokenizerBase):
        tokenizer = spec
    else:
        raise TypeError(
            f"tokenizer must be a local path or a transformers tokenizer, got {type(spec).__name__}"
        )
    check_tokenizer(tokenizer)
    return tokenizer


def decode_text(tokenizer: PreTrainedTokenizerBase, ids: Any) -> str:
    """The text of one sequence of ids, special tokens dropped (``decode`` of a single sequence is a
    string; transformers types it ``str | list[str]`` for its batched form)."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert isinstance(text, str), "decode of one 1-D sequence of ids returns a string"
    return text


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.txt",
    "tokenizer.tiktoken",
)
"""files ``save_pretrained`` writes for a tokenizer (one of them is enough to load one)"""


def check_tokenizer_files(path: Path) -> None:
    """A model folder saved without its tokenizer gets transformers' "Couldn't instantiate the backend
    tokenizer ... install sentencepiece or tiktoken", which sends the user the wrong way; say what is
    missing and how to add it instead. A directory only: a single file is left to transformers."""
    if path.is_dir() and not any((path / name).exists() for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{str(path)!r} has no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...); save the tokenizer into "
            f"the folder: AutoTokenizer.from_pretrained(<the model it came from>).save_pretrained({str(path)!r})"
        )


def check_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise a ValueError naming the fix when the tokenizer lacks EOS or pad."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if tokenizer.eos_token_id is None:
        raise ValueError(
            f"tokenizer {name!r} has no EOS token, so episodes could only end by truncation; "
            "set one, e.g. tokenizer.add_special_tokens({'eos_token': '<|endoftext|>'})"
        )
    if tokenizer.pad_token_id is None:
        raise ValueError(
            f"tokenizer {name!r} has no pad token, which the fixed-shape observation needs; "
            "set one, e.g. tokenizer.pad_token = tokenizer.eos_token"
        )
