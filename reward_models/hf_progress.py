"""transformers' own per-call progress bars hidden around rlenv's loads and saves; the caller's setting kept.

``from_pretrained`` draws "Loading weights" and ``save_pretrained`` "Writing model shards" on every
call: noise for a local folder of a few MB, interleaved with rlenv's own progress (``rlenv train``'s
bar) and printed on every checkpoint of a run started from Python. :func:`transformers_bars_hidden`
switches them off for the duration of one of rlenv's calls and restores whatever the user had set, so
a model the user loads themselves keeps transformers' bars as configured. It sits in the lowest
package, like :mod:`reward_models.lazy`, so all three packages can use it; transformers is imported
only when a call enters it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transformers_bars_hidden() -> Iterator[None]:
    """Hide transformers' tqdm bars inside the block; afterwards restore the setting found (transformers'
    and huggingface_hub's, which transformers' switch also flips)."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    if not hf_logging.is_progress_bar_enabled():  # already off: nothing to hide or restore
        yield
        return
    hub_was_disabled = hub_utils.are_progress_bars_disabled()  # type: ignore[attr-defined]
    with warnings.catch_warnings():  # huggingface_hub warns when HF_HUB_DISABLE_PROGRESS_BARS overrides it
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_logging.enable_progress_bar()  # turns huggingface_hub's back on as well ...
            if hub_was_disabled:  # ... which the user may have kept off on its own
                hub_utils.disable_progress_bars()  # type: ignore[attr-defined]
