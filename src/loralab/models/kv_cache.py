"""The KV cache of an incremental decode step, on every transformers version the package allows.

    new_cache(model)                      an empty `DynamicCache` for the model
    cache_kwargs(model, cache)            the keyword arguments that pass it to `model(...)`
    can_merge / append_rows / drop_left   join the caches of two batches row-wise, trim padding

transformers renamed the forward argument `past_key_values` to `cache` (the old name is deprecated
and goes in 5.40). A model whose forward still names `past_key_values` drops an unknown `cache=`
into `**kwargs` and silently decodes without the cache (every step re-reads nothing, the answer
is wrong); this module asks the model's own forward signature which name it takes.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
import transformers
import transformers.cache_utils


def new_cache(model: Any) -> Any:
    """An empty DynamicCache sized for the model's layers."""
    try:
        return transformers.DynamicCache(config=model.config)
    except TypeError:              # versions whose DynamicCache takes no config
        return transformers.DynamicCache()


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """`{name: cache, "use_cache": True}` with the name the model's forward accepts."""
    return {cache_keyword(type(model)): cache, "use_cache": True}


@functools.cache
def cache_keyword(model_class: type) -> str:
    """`cache` where the forward names it, else `past_key_values` (older transformers)."""
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def can_merge(cache: Any) -> bool:
    """True when every layer is a plain growing layer ([batch, heads, length, dim] keys and
    values, nothing else to keep in step): such caches of different batches can be joined
    row-wise (continuous batching). Sliding-window and quantised layers cannot."""
    layers = getattr(cache, "layers", None)
    plain = getattr(transformers.cache_utils, "DynamicLayer", None)
    return bool(layers) and plain is not None and all(
        type(layer) is plain and layer.is_initialized for layer in layers)


def _pad_left(tensor: Any, width: int) -> Any:
    missing = width - tensor.shape[-2]
    if missing == 0:
        return tensor
    pad = tensor.new_zeros((*tensor.shape[:-2], missing, tensor.shape[-1]))
    return torch.cat([pad, tensor], dim=-2)


def append_rows(cache: Any, other: Any) -> None:
    """Append `other`'s rows to `cache` in place, left-padding the shorter one's keys and
    values with zeros to the longer length (the caller pads the attention mask the same way,
    so the padding is never attended to)."""
    width = max(cache.get_seq_length(), other.get_seq_length())
    for mine, theirs in zip(cache.layers, other.layers, strict=True):
        mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
        mine.values = torch.cat([_pad_left(mine.values, width),
                                 _pad_left(theirs.values, width)])


def drop_left(cache: Any, columns: int) -> None:
    """Drop the first `columns` positions of every row (padding no row attends to any more)."""
    if columns <= 0:
        return
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, columns:]
        layer.values = layer.values[:, :, columns:]
