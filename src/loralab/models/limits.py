"""What a model can take, from its config.json alone (no weights are loaded).

    position_limit(hf_config)         tokens the model has positions for (None: no fixed limit)
    check_max_length(model_config)    ConfigError when model.max_length is above that limit

The rule (docs/config.md, `model.max_length`): a `model.max_length` above the model's position
limit is refused before anything is written, with both numbers; it is never clamped silently.
`loralab predict` encodes with the length the adapter was trained with, which this rule keeps
within the limit (an older adapter above it is cut to the limit).
"""

from __future__ import annotations

from typing import Any

from loralab.errors import ConfigError

# models whose position ids start after the padding index (RoBERTa's scheme): the first
# pad_token_id + 1 positions of max_position_embeddings are never used by a token
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "mpnet",
                    "longformer", "data2vec-text", "ibert", "markuplm", "roberta-prelayernorm"}
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def position_limit(hf_config: Any) -> int | None:
    """The longest input the model has positions for, or None when its config names none."""
    for key in POSITION_KEYS:
        value = getattr(hf_config, key, None)
        if isinstance(value, int) and value > 0:
            if getattr(hf_config, "model_type", None) in OFFSET_POSITIONS:
                value -= int(getattr(hf_config, "pad_token_id", None) or 0) + 1
            return value
    return None


def read_model_config(model: Any) -> Any | None:
    """transformers' config of `model` (a config section), None when it cannot be read here
    (the model load reports why, when training starts)."""
    from transformers import AutoConfig

    from loralab.models.library_logging import quiet_libraries
    from loralab.models.sources import resolve_model_source

    quiet_libraries()
    kwargs: dict[str, Any] = {"revision": model.revision,
                              "trust_remote_code": model.trust_remote_code}
    if model.gguf_file:
        kwargs["gguf_file"] = model.gguf_file
    try:
        return AutoConfig.from_pretrained(resolve_model_source(model.name), **kwargs)
    except Exception:  # noqa: BLE001 - unreadable here: the real load names the reason
        return None


def check_max_length(model: Any, hf_config: Any | None = None, *,
                     key: str = "model.max_length") -> None:
    """Refuse a `model.max_length` above the position limit of `model.name` (`hf_config`:
    its transformers config, read from the model's config.json when None)."""
    hf_config = hf_config if hf_config is not None else read_model_config(model)
    limit = position_limit(hf_config) if hf_config is not None else None
    if limit is not None and model.max_length > limit:
        raise ConfigError(f"{key}={model.max_length} is more than {model.name} has positions "
                          f"for ({limit} tokens); set {key} to at most {limit}")
