"""Train / held-out prompt splits for the named tasks.

Every named task draws its training prompts from the ``"train"`` split (the default) and is
evaluated on the disjoint ``"heldout"`` split, so a benchmark score measures what a policy learned,
not which prompts it memorised. Both splits are fixed by the prompt text alone (no RNG), so they
are the same on every machine and for every seed:

- prompt files: every ``HELDOUT_EVERY``-th line (1-based line 5, 10, ...) is held out;
- generated prompts (Arithmetic): a prompt is held out when a CRC-32 of its text is divisible by
  ``HELDOUT_EVERY``; the generator redraws until its prompt falls in the requested split.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rlenv.prompts import ListPrompts, read_prompt_file

Split = Literal["train", "heldout"]
SPLITS: tuple[str, ...] = ("train", "heldout")
HELDOUT_EVERY = 5
"""one prompt in five is held out"""


def check_split(split: str) -> Split:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}; train on 'train', evaluate on 'heldout'")
    return split  # type: ignore[return-value]


def split_prompt_file(path: str | Path, split: str) -> ListPrompts:
    """The ``split`` part of a prompt file: line i (0-based) is held out iff ``i % HELDOUT_EVERY == 4``."""
    check_split(split)
    every = read_prompt_file(path)
    want_heldout = split == "heldout"
    items = [p for i, p in enumerate(every.prompts) if (i % HELDOUT_EVERY == HELDOUT_EVERY - 1) == want_heldout]
    return ListPrompts(items, description=f"{Path(path).name} {split} split ({len(items)} of {len(every.prompts)})")


def is_heldout_text(text: str) -> bool:
    """The split of a generated prompt, from its text alone."""
    return zlib.crc32(text.encode("utf-8")) % HELDOUT_EVERY == 0


def split_generator(draw: Callable[[np.random.Generator], dict[str, Any]], split: str,
                    max_tries: int = 1000) -> Callable[[np.random.Generator], dict[str, Any]]:
    """Wrap ``draw(rng) -> {"prompt": ...}`` so that it only returns prompts of ``split``."""
    want_heldout = check_split(split) == "heldout"

    def draw_in_split(rng: np.random.Generator) -> dict[str, Any]:
        for _ in range(max_tries):
            record = draw(rng)
            if is_heldout_text(record["prompt"]) == want_heldout:
                return record
        raise RuntimeError(f"no {split} prompt in {max_tries} draws of {draw.__name__}; the prompt space is too small")

    draw_in_split.__name__ = f"{draw.__name__} ({split} split)"
    return draw_in_split
