"""The KV cache of an incremental decode step, on every transformers version the package allows.

    new_cache(model)                      an empty `DynamicCache` for the model
    cache_kwargs(model, cache)            the keyword arguments that pass it to `model(...)`

transformers renamed the forward argument `past_key_values` to `cache` (the old name is deprecated
and goes in 5.40). A model whose forward still names `past_key_values` drops an unknown `cache=`
into `**kwargs` and silently decodes without the cache (every step re-reads nothing, the answer
is wrong); this module asks the model's own forward signature which name it takes.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import transformers


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
