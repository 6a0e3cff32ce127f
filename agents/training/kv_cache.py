"""A KV cache for rollouts whose full-attention layers are written in place into preallocated buffers.

transformers' ``DynamicCache`` concatenates every layer's keys and values with the new token's on
each step, copying the whole cache: a step's cost grows with the tokens already generated even
outside attention. Its ``StaticCache`` writes in place but attends over all ``max_cache_len``
columns on every step. :class:`PreallocatedLayer` does neither: its buffers hold the whole rollout
(``capacity`` columns, grown by doubling if a multi-turn env's replies outgrow it), a step writes
its new columns in place, and attention sees a view of the columns written so far — the same keys
and values the dynamic cache would hold, so the logits agree with it to float noise.

Sliding-window layers (Mistral, some Qwen2 configs) keep transformers' own dynamic layers.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """One layer's keys/values in (B, H, capacity, D) buffers; ``keys``/``values`` are views of the
    first :meth:`get_seq_length` columns."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = int(capacity)
        self.length = 0
        self._keys: Tensor | None = None
        self._values: Tensor | None = None

    def lazy_initialization(self, key_states: Tensor, value_states: Tensor) -> None:
        self.device = key_states.device
        B, H, _, _ = key_states.shape
        self._keys = key_states.new_empty(B, H, self.capacity, key_states.shape[-1])
        self._values = value_states.new_empty(B, H, self.capacity, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states: Tensor, value_states: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self._buffers()[0].shape[-2]:
            self._grow(max(end, 2 * self._buffers()[0].shape[-2]))
        keys, values = self._buffers()
        keys[:, :, self.length : end] = key_states
        values[:, :, self.length : end] = value_states
        self.length = end
        return self._refresh_views()

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: Tensor) -> None:
        """Keep (or repeat) the rows ``indices``; one copy of the buffers."""
        if self.is_initialized:
            keys, values = self._buffers()
            self._keys, self._values = keys[indices], values[indices]
            self._refresh_views()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            keys, values = self._buffers()
            self._keys = keys.repeat_interleave(repeats, dim=0)
            self._values = values.repeat_interleave(repeats, dim=0)
            self._refresh_views()

    def reorder_cache(self, beam_idx: Tensor) -> None:
        self.batch_select_indices(beam_idx.to(self.device))

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative number of tokens to remove, got {tokens_to_remove}")
        if self.is_initialized and tokens_to_remove:
            self.length = max(0, self.length + tokens_to_remove)
            self._refresh_views()

    def reset(self) -> None:
        self._keys = self._values = None
        self.length = 0
        super().reset()

    def _buffers(self) -> tuple[Tensor, Tensor]:
        if self._keys is None or self._values is None:
            raise RuntimeError("this cache layer has no buffers before its first update")
        return self._keys, self._values

    def _grow(self, capacity: int) -> None:
        old_keys, old_values = self._buffers()
        keys = old_keys.new_empty(*old_keys.shape[:2], capacity, old_keys.shape[-1])
        values = old_values.new_empty(*old_values.shape[:2], capacity, old_values.shape[-1])
        keys[:, :, : self.length] = old_keys[:, :, : self.length]
        values[:, :, : self.length] = old_values[:, :, : self.length]
        self._keys, self._values, self.capacity = keys, values, capacity

    def _refresh_views(self) -> tuple[Tensor, Tensor]:
        keys, values = self._buffers()
        keys, values = keys[:, :, : self.length], values[:, :, : self.length]  # (B, H, length, D), views: no copy
        self.keys, self.values = keys, values
        return keys, values


def preallocated_cache(config: Any, capacity: int) -> DynamicCache:
    """A ``DynamicCache`` for ``config``'s model whose full-attention layers are :class:`PreallocatedLayer`
    of ``capacity`` columns (sliding-window and other layer kinds stay as transformers builds them)."""
    cache = DynamicCache(config=config)
    if not cache.layers:  # a config without layer types: the cache replicates its layer class lazily
        cache.layer_class_to_replicate = None
        cache.layers = [PreallocatedLayer(capacity) for _ in range(config.get_text_config(decoder=True).num_hidden_layers)]
        return cache
    cache.layers = [PreallocatedLayer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
