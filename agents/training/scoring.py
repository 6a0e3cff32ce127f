"""How the update's scoring pass splits a batch so that no forward runs on padding or on a repeat.

:meth:`agents.training.policy.LMPolicy.score_sequences` scores (B, P+T) rollout rows: a left-padded prompt
in columns [0, P) and a right-padded response in [P, P+T). One padded forward over all rows (the
plain path) computes every row to the batch's longest prompt and longest response, and computes a
prompt shared by a GRPO/RLOO group G times. The shared path does the same maths with less work:

1. **Prompt once per group.** The distinct prompts (:func:`distinct_prompts`) run through the model
   once, keeping their KV cache; the logits and value at a prompt's last column score the first
   response token of every row that shares it.
2. **Responses bucketed by length.** Rows are sorted by response length and cut into at most
   ``max_buckets`` buckets (:func:`length_buckets`); each bucket feeds only its own rows' response
   tokens, cut to its longest, on the repeated prompt cache. A cut is made only where it saves more
   than ``overhead`` of the single forward's token-columns: every forward costs a fixed launch
   overhead, which on a small model outweighs a few padded columns.

The last response token is never fed (its logits would predict the token after the episode), so a
bucket of responses of length w feeds w - 1 tokens. Every logit, value and gradient equals the
plain path's to float rounding (tests/agents/test_shared_scoring.py): attention sees the same keys
and positions, only the grouping of rows into matrix products changes.
"""

from __future__ import annotations

import torch
from torch import Tensor

MAX_CUTS = 48
"""the most cut points :func:`length_buckets` weighs (its dynamic programme is quadratic in them)"""


def distinct_prompts(prompt_ids: Tensor, prompt_mask: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct prompt rows and which one each row has.

    Args:
        prompt_ids, prompt_mask: (B, P) prompt columns (ids and attention mask).

    Returns:
        ``(first_row (U,), inverse (B,))``: for each distinct prompt the index of a row holding it,
        and for each row the index of its prompt among the U. Rows count as the same prompt only if
        their ids *and* mask agree in every column, so the shared forward is the rows' own forward.
    """
    key = torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], 1)  # (B, 2P)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)  # (B,) in sorted-key order
    U = int(inverse.max()) + 1
    rows = torch.arange(inverse.numel(), device=inverse.device)
    first_row = torch.full((U,), inverse.numel(), dtype=torch.long, device=inverse.device)
    first_row = first_row.scatter_reduce(0, inverse, rows, reduce="amin")
    return first_row, inverse


def length_buckets(
    lengths: Tensor, *, max_buckets: int = 4, overhead: float = 0.1, fixed: int = 0
) -> list[Tensor]:
    """Cut rows into buckets of similar length that minimise the padded work of their forwards.

    Args:
        lengths: (B,) the number of columns each row needs.
        max_buckets: the most forwards to use.
        overhead: the cost of one extra forward, as a share of the single forward's work (B times
            the longest row, plus ``fixed``): a cut must save more than that.
        fixed: columns every row pays whatever its length (the cached prompt it attends over).

    Returns:
        Row-index tensors, longest rows first, covering every row once. The work of a bucket is its
        row count times (``fixed`` + its longest length); the split minimises the sum plus
        ``overhead`` per forward by dynamic programming over the distinct lengths.
    """
    order = torch.argsort(lengths, descending=True, stable=True)  # (B,)
    sorted_lengths = lengths[order].tolist()
    B = len(sorted_lengths)
    single = B * (fixed + sorted_lengths[0]) if B else 0
    penalty = overhead * single
    # candidate cut points: where the length changes (a bucket never splits rows of equal length);
    # at most MAX_CUTS of them, evenly spread, so that planning stays far cheaper than a forward
    starts = [0] + [i for i in range(1, B) if sorted_lengths[i] != sorted_lengths[i - 1]]
    if len(starts) > MAX_CUTS:
        starts = [starts[round(i * (len(starts) - 1) / (MAX_CUTS - 1))] for i in range(MAX_CUTS)]
    # best[k][j]: least cost of rows [starts[j], B) in k buckets; a bucket from starts[j] pays its rows
    # times its first (longest) length
    n = len(starts)
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(max_buckets + 1)]
    cut = [[n] * (n + 1) for _ in range(max_buckets + 1)]
    for k in range(max_buckets + 1):
        best[k][n] = 0.0
    for k in range(1, max_buckets + 1):
        for j in range(n - 1, -1, -1):
            width = fixed + sorted_lengths[starts[j]]
            for e in range(j + 1, n + 1):
                end = starts[e] if e < n else B
                cost = (end - starts[j]) * width + penalty + best[k - 1][e]
                if cost < best[k][j]:
                    best[k][j], cut[k][j] = cost, e
    buckets, j, k = [], 0, max_buckets
    while j < n:
        e = cut[k][j]
        end = starts[e] if e < n else B
        buckets.append(order[starts[j] : end])
        j, k = e, k - 1
    return buckets
