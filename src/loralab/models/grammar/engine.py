"""The grammar engine behind constrained decoding: llguidance (from PyPI, the optional
`loralab[structured]` extra), chosen by benchmarks/grammar_engines.py (docs/causal_lm.md says
why). Everything engine-specific lives in this module:

    require_engine(key)                the llguidance module, or a one-line UserError naming
                                       `key` and the extra
    json_grammar(schema)               a JSON Schema (dict) -> the engine's grammar text
    grammar_error(grammar)             why the engine cannot compile it (names the keyword), or
                                       None; needs no tokenizer
    engine_vocabulary(tokenizer)       the engine's view of a Hugging Face tokenizer (built once
                                       per tokenizer object: ~1-3 s for a 50k vocabulary)
    new_matcher(grammar, tokenizer)    a fresh matcher: the per-row parser state
    fill_mask(matcher, words)          the matcher's allowed next tokens as an int32 bitmask
"""

from __future__ import annotations

import importlib
import weakref
from typing import Any

import torch

from loralab.errors import UserError

ENGINE = "llguidance"
EXTRA = "loralab[structured]"
# JSON whitespace between tokens: at most this many characters at each place it may go. Enough
# for pretty-printed output a few levels deep; bounded so that no model can fill its budget
# with whitespace (an unbounded pattern lets a weak model loop on newlines forever).
WHITESPACE = r"[\x20\x0A\x0D\x09]{0,16}"

_VOCABULARIES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def require_engine(key: str = "eval.constrain") -> Any:
    """The engine module; a missing engine is a user error naming `key` (the setting or
    request field that asked for a constraint) and the extra that installs the engine."""
    try:
        return importlib.import_module(ENGINE)
    except ImportError:
        raise UserError(f"{key}: constrained decoding needs the grammar engine "
                        f"{ENGINE}: pip install '{EXTRA}'") from None


def json_grammar(schema: dict[str, Any]) -> str:
    """The engine's grammar for documents that follow `schema`, whitespace bounded."""
    engine = require_engine()
    return engine.LLMatcher.grammar_from_json_schema(
        schema, defaults={"whitespace_pattern": WHITESPACE})


def grammar_error(grammar: str) -> str | None:
    """The engine's reason for refusing `grammar` (e.g. `Unimplemented keys: ["if"]`), or
    None when it compiles. Checked without a tokenizer, so before any model loads."""
    engine = require_engine()
    is_error, messages = engine.LLMatcher.validate_grammar_with_warnings(grammar)
    return " ".join(str(messages[0]).split()) if is_error else None


def engine_vocabulary(tokenizer: Any) -> Any:
    """The engine's tokenizer for a Hugging Face tokenizer, cached per object: read from the
    fast tokenizer's own definition where the engine knows its decoder (byte-level BPE,
    SentencePiece), else from each token's text (e.g. character- or word-level vocabularies)."""
    cached = _VOCABULARIES.get(tokenizer)
    if cached is None:
        require_engine()
        from llguidance.hf import from_tokenizer

        try:
            cached = from_tokenizer(tokenizer, n_vocab=len(tokenizer))
        except (ValueError, TypeError):  # a decoder it cannot read, or a slow tokenizer
            cached = token_text_vocabulary(tokenizer)
        _VOCABULARIES[tokenizer] = cached
    return cached


class _TokenTexts:
    """What llguidance's TokenizerWrapper reads: every token's bytes and an encoder."""

    def __init__(self, tokenizer: Any) -> None:
        pieces = {index: piece for piece, index in tokenizer.get_vocab().items()}
        special = set(tokenizer.all_special_ids)
        self.eos_token_id = tokenizer.eos_token_id
        self.bos_token_id = tokenizer.bos_token_id
        self.special_token_ids = sorted(special)
        self.tokens = [token_bytes(tokenizer, pieces.get(i), i in special)
                       for i in range(len(tokenizer))]
        self._tokenizer = tokenizer

    def __call__(self, text: Any) -> list[int]:
        if not isinstance(text, str):
            raise TypeError("text only")
        return self._tokenizer.encode(text, add_special_tokens=False)


def token_bytes(tokenizer: Any, piece: str | None, special: bool) -> bytes:
    if piece is None:
        return b""
    return (piece if special else tokenizer.convert_tokens_to_string([piece])).encode("utf-8")


def token_text_vocabulary(tokenizer: Any) -> Any:
    from llguidance import LLTokenizer, TokenizerWrapper

    return LLTokenizer(TokenizerWrapper(_TokenTexts(tokenizer)), n_vocab=len(tokenizer),
                       eos_token=tokenizer.eos_token_id)


def new_matcher(grammar: str, tokenizer: Any) -> Any:
    engine = require_engine()
    matcher = engine.LLMatcher(engine_vocabulary(tokenizer), grammar, log_level=0)
    if matcher.is_error():
        raise UserError(f"eval.constrain: {ENGINE} cannot compile the grammar: "
                        f"{matcher.get_error()}")
    return matcher


def mask_words(vocab_size: int) -> torch.Tensor:
    """An int32 bitmask of one row: bit i of word i // 32 set = token i allowed."""
    return torch.zeros((1, (vocab_size + 31) // 32), dtype=torch.int32)


def fill_mask(matcher: Any, words: torch.Tensor) -> None:
    """What llguidance.torch.fill_next_token_bitmask does, without importing that module
    (it compiles a kernel with torch.compile on import, which loads TorchDynamo: seconds)."""
    row = words[0]
    matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * row.element_size())
