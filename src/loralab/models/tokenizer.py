"""Tokenizers: loading by model name (hub id, folder, packaged model) and the one pad-token rule.

A tokenizer without a pad token pads with its EOS token (causal LMs ship without one); every
loader below applies the rule, so collators and generation can rely on `pad_token_id`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import transformers

from loralab.models.sources import model_load_error, resolve_model_source


def ensure_pad_token(tokenizer: Any) -> Any:
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name: str, *, source: str | None = None, revision: str | None = None,
                   trust_remote_code: bool = False, gguf_file: str | None = None) -> Any:
    """The tokenizer of model `name` (read from `source` when given: a folder or GGUF's)."""
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            source or resolve_model_source(name), revision=revision, gguf_file=gguf_file,
            trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise model_load_error(name, exc) from None
    return ensure_pad_token(tokenizer)


def folder_has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer_config.json").is_file()
