"""The SB3 bridge's two forwards, each doing an episode's work once instead of once per transition.

SB3 is per-transition: acting asks for the next-token distribution of every sub-env's observation
on every step, and the update re-scores every stored transition. In rlenv consecutive observations
of one episode are prefixes of each other (the prompt, then one more token per step), so:

- :class:`ActingCache` keeps a KV cache per sub-env while acting: an observation that extends the
  last one by a token feeds only that token; one that starts a new episode (autoreset) is prefilled
  on its own and spliced into the batch's cache; an unchanged one returns its last output.
- :func:`prefix_grouped_forward` scores a batch of transitions with one forward per *episode*: rows
  whose real tokens are a prefix of a longer row read their logits and hidden state at a position
  of that row's forward.

Both return exactly what one forward per observation returns (``last_token_forward``), to float
rounding (tests/agents/test_sb3.py): the model sees the same real tokens at the same positions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from agents.training.policy import _cache_kwarg


def real_tokens(input_ids: Tensor, attention_mask: Tensor) -> list[np.ndarray]:
    """Each row's real token ids in order (the columns whose mask is 1), as int64 arrays."""
    ids = input_ids.detach().long().cpu().numpy()
    mask = attention_mask.detach().cpu().numpy() > 0.5
    return [ids[i][mask[i]] for i in range(ids.shape[0])]


def _right_padded(rows: list[np.ndarray], device: torch.device) -> tuple[Tensor, Tensor]:
    """(R, L) ids and mask with each row's tokens left-aligned (pads after them are never attended)."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def _input_device(model: PreTrainedModel) -> torch.device:
    """The device of the token embeddings, where the input ids go."""
    weight = model.get_input_embeddings().weight
    # transformers types get_input_embeddings() as a bare nn.Module (attributes: Tensor | Module);
    # every causal LM's is an embedding whose weight is a Parameter
    assert isinstance(weight, Tensor)
    return weight.device


def _forward_at(
    model: PreTrainedModel,
    rows: list[np.ndarray],
    owner: np.ndarray,
    ends: np.ndarray,
    cache: DynamicCache | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One forward over ``rows``; for each output i the logits and hidden state of row ``owner[i]``
    at position ``ends[i]`` (its last token). Returns (logits (N, V), hidden (N, H), mask (R, L))."""
    device = _input_device(model)
    ids, mask = _right_padded(rows, device)
    columns, slot = np.unique(ends, return_inverse=True)  # the logit columns any output reads
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
        use_cache=cache is not None,
        **{_cache_kwarg(model): cache},
        output_hidden_states=True,
        logits_to_keep=torch.from_numpy(columns).to(device),
    )
    owner_t, end_t = torch.from_numpy(owner).to(device), torch.from_numpy(ends).to(device)
    logits = out.logits[owner_t, torch.from_numpy(slot).to(device)]  # (N, V)
    hidden = out.hidden_states[-1][owner_t, end_t]  # (N, H), post final norm
    return logits.float(), hidden.float(), mask


def prefix_grouped_forward(
    model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Next-token logits (N, V_model) and last hidden state (N, H) at each row's last real token,
    with one forward per group of rows that are prefixes of one longest row (an episode's
    transitions): the row of t tokens reads position t - 1 of its episode's forward."""
    rows = real_tokens(input_ids, attention_mask)
    lengths = np.array([len(r) for r in rows])
    if lengths.min() < 1:
        raise ValueError(
            "an observation has no real token (attention_mask all 0); rlenv observations hold the prompt"
        )
    roots: list[np.ndarray] = []
    table = np.zeros((len(rows), int(lengths.max())), dtype=np.int64)  # (R, L) the roots, right-padded
    root_lengths = np.zeros(len(rows), dtype=np.int64)
    owner = np.zeros(len(rows), dtype=np.int64)
    for i in np.argsort(-lengths, kind="stable"):  # longest first: every prefix finds its root
        n = lengths[i]
        R = len(roots)
        hits = np.flatnonzero((root_lengths[:R] >= n) & (table[:R, :n] == rows[i]).all(1))
        if hits.size:
            owner[i] = hits[0]
            continue
        table[R, :n], root_lengths[R] = rows[i], n
        roots.append(rows[i])
        owner[i] = R
    logits, hidden, _ = _forward_at(model, roots, owner, lengths - 1)
    return logits, hidden


class ActingCache:
    """Per-sub-env KV cache across SB3's acting calls (one batch of N observations per env step).

    Each call classifies every row against what the cache holds for it: the same tokens (return the
    last output), the same plus one token (feed that token), or anything else, e.g. a new episode
    (prefill it on its own and splice its keys and values into new columns, the row's old columns
    masked off). Positions are passed explicitly, so where a row's keys sit does not matter. Dead
    columns are squeezed out once they make up half the cache. A call with another batch size, or
    after the weights changed, starts over; :meth:`reset` forgets everything (SB3 switches the
    policy's training mode around every update).
    """

    def __init__(self) -> None:
        self._usable: tuple[PreTrainedModel, bool] | None = None
        self.reset()

    def reset(self) -> None:
        self.tokens: list[np.ndarray] | None = None
        self.cache: DynamicCache | None = None
        self.cache_mask: Tensor | None = None  # (N, C) which cache columns each row attends to
        self.logits: Tensor | None = None  # (N, V) the last output of each row
        self.hidden: Tensor | None = None  # (N, H)
        self.weights_version: tuple[int, ...] | None = None

    @staticmethod
    def _version(model: PreTrainedModel) -> tuple[int, ...]:
        """In-place updates (optimizer steps, load_state_dict) bump every touched tensor's version."""
        return tuple(p._version for p in model.parameters())

    def usable(self, model: PreTrainedModel) -> bool:
        """Whether the cache holds only full-attention layers (sliding windows are not spliced)."""
        if self._usable is None or self._usable[0] is not model:
            kinds = DynamicCache(config=model.config).layers
            self._usable = (model, all(type(layer) is DynamicLayer for layer in kinds))
        return self._usable[1]

    @torch.no_grad()
    def __call__(
        self, model: PreTrainedModel, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Logits (N, V_model) and hidden state (N, H) at each row's last real token, as
        ``last_token_forward`` gives them."""
        rows = real_tokens(input_ids, attention_mask)
        version = self._version(model)
        if self.tokens is None or len(rows) != len(self.tokens) or version != self.weights_version:
            self._prefill_all(model, rows)
        else:
            self._advance(model, rows)
        self.weights_version = version
        _, _, logits, hidden = self._held()
        return logits, hidden

    def _held(self) -> tuple[DynamicCache, Tensor, Tensor, Tensor]:
        """(cache, cache_mask, logits, hidden): the first prefill sets all four, later calls keep them
        set (only :meth:`reset` clears them, and the next call prefills again)."""
        assert self.cache is not None and self.cache_mask is not None, "the acting cache was never filled"
        assert self.logits is not None and self.hidden is not None, "the acting cache was never filled"
        return self.cache, self.cache_mask, self.logits, self.hidden

    def _prefill_all(self, model: PreTrainedModel, rows: list[np.ndarray]) -> None:
        lengths = np.array([len(r) for r in rows])
        self.cache = DynamicCache(config=model.config)
        self.logits, self.hidden, self.cache_mask = _forward_at(
            model, rows, np.arange(len(rows)), lengths - 1, cache=self.cache
        )
        self.tokens = [r.copy() for r in rows]

    def _advance(self, model: PreTrainedModel, rows: list[np.ndarray]) -> None:
        old = self.tokens
        assert old is not None  # __call__ prefills instead while no tokens are held
        same = [len(r) == len(o) and np.array_equal(r, o) for r, o in zip(rows, old, strict=True)]
        extend = [len(r) == len(o) + 1 and np.array_equal(r[:-1], o) for r, o in zip(rows, old, strict=True)]
        fresh = np.flatnonzero(~(np.array(same) | np.array(extend)))
        if fresh.size:
            self._splice_fresh(model, [rows[i] for i in fresh], fresh)
        grown = np.flatnonzero(extend)
        if grown.size:
            self._feed_one_token(model, rows, grown)
        self.tokens = [r.copy() for r in rows]
        self._compact_if_sparse()

    def _splice_fresh(self, model: PreTrainedModel, rows: list[np.ndarray], index: np.ndarray) -> None:
        """Prefill new episodes apart, then write their keys/values into new cache columns."""
        cache, cache_mask, held_logits, held_hidden = self._held()
        lengths = np.array([len(r) for r in rows])
        own = DynamicCache(config=model.config)
        logits, hidden, mask = _forward_at(model, rows, np.arange(len(rows)), lengths - 1, cache=own)
        at = torch.from_numpy(index).to(mask.device)
        N, width = cache_mask.shape[0], mask.shape[1]
        for layer, fresh in zip(cache.layers, own.layers, strict=True):
            for name in ("keys", "values"):
                old = getattr(layer, name)  # (N, H, C, D)
                grown = torch.cat([old, old.new_zeros(*old.shape[:2], width, old.shape[-1])], 2)
                grown[at, :, old.shape[2] :] = getattr(fresh, name)
                setattr(layer, name, grown)
        cache_mask[at] = 0  # the rows' old episodes are never attended again
        new_mask = cache_mask.new_zeros(N, width)
        new_mask[at] = mask
        self.cache_mask = torch.cat([cache_mask, new_mask], 1)
        held_logits[at], held_hidden[at] = logits, hidden

    def _feed_one_token(self, model: PreTrainedModel, rows: list[np.ndarray], grown: np.ndarray) -> None:
        """One incremental forward: the rows in ``grown`` feed their new token, the others a masked pad."""
        cache, cache_mask, logits, hidden = self._held()
        device = cache_mask.device
        N = cache_mask.shape[0]
        token = torch.zeros(N, 1, dtype=torch.long, device=device)
        position = torch.zeros(N, 1, dtype=torch.long, device=device)
        at = torch.from_numpy(grown).to(device)
        token[at, 0] = torch.tensor([int(rows[i][-1]) for i in grown], device=device)
        position[at, 0] = torch.tensor([len(rows[i]) - 1 for i in grown], device=device)
        column = torch.zeros(N, 1, dtype=cache_mask.dtype, device=device)
        column[at] = 1
        self.cache_mask = cache_mask = torch.cat([cache_mask, column], 1)
        kwarg = _cache_kwarg(model)
        out = model(
            input_ids=token,
            attention_mask=cache_mask,
            position_ids=position,
            use_cache=True,
            **{kwarg: cache},
            output_hidden_states=True,
            logits_to_keep=1,
        )
        self.cache = getattr(out, kwarg)
        logits[at] = out.logits[at, -1].float()
        hidden[at] = out.hidden_states[-1][at, -1].float()

    def _compact_if_sparse(self) -> None:
        """Once half the columns are dead, keep only each row's live ones (left-aligned)."""
        cache, cache_mask, _, _ = self._held()
        live = cache_mask.bool()
        counts = live.sum(1)
        width = int(counts.max())
        if 2 * width > live.shape[1]:
            return
        # (N, width): the live columns of each row in order, padded with column 0 (masked off)
        order = torch.sort((~live).to(torch.int8), dim=1, stable=True).indices[:, :width]
        new_mask = (torch.arange(width, device=live.device)[None, :] < counts[:, None]).to(cache_mask.dtype)
        for layer in cache.layers:
            for name in ("keys", "values"):
                old = getattr(layer, name)  # (N, H, C, D)
                index = order[:, None, :, None].expand(old.shape[0], old.shape[1], width, old.shape[3])
                setattr(layer, name, old.gather(2, index))
        self.cache_mask = new_mask
