"""Supervised fine-tuning examples: a record -> prompt text + response text -> token ids.

    prompt    data.prompt_template (a format string over the record's fields), else the
              record's `prompt` field; with data.chat_template the prompt becomes the user turn
              of the tokenizer's chat template (after data.system_prompt), generation prompt on
    response  data.response_template, else the record's `response` field; a dict or list is
              written as compact JSON
    messages  a record with `messages` (chat turns) uses them instead: the last assistant turn
              is the response, everything before it the prompt
    as is     a data.extra_train row (marked AS_IS) is its own `prompt` + `response` or
              `messages`, whatever the templates say (feedback pairs of a served adapter)

Labels cover the response tokens and the EOS token only (prompt positions are -100). When an
example is longer than model.max_length, data.truncation decides: `left` cuts the prompt from
the left (its end, where the question is, stays) and drops, with a note, an example whose
response alone does not fit; `drop` drops every example that does not fit whole (a note says
how many); `error` stops at the first such row. The response is never cut.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from typing import Any

from loralab.data.causal import AS_IS
from loralab.errors import DataError
from loralab.tasks.labels import row_error

IGNORE = -100
MIN_PROMPT_TOKENS = 1
SPECIAL_FIELDS = {"options_block"}  # computed from `options` for multiple-choice prompts


def field_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return "" if value is None else str(value)


def options_block(options: list[Any]) -> str:
    """`A. first\nB. second ...` for a multiple-choice record's options."""
    return "\n".join(f"{string.ascii_uppercase[i]}. {text}" for i, text in enumerate(options))


def template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def fill(template: str, record: dict[str, Any], what: str) -> str:
    values = {}
    for name in template_fields(template):
        key = name.split(".")[0].split("[")[0]
        if key == "options_block" and "options" in record:
            values[key] = options_block(record["options"])
        elif key not in record:
            shown = ", ".join(k for k in record if not k.startswith("_"))
            raise row_error(record, key, f"data.{what} uses {{{key}}} but the record has no "
                                         f"field {key!r}; its fields: {shown}")
        else:
            nested = "." in name or "[" in name  # {output[intent]}: format indexes the value
            values[key] = record[key] if nested else field_text(record[key])
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise row_error(record, what, f"data.{what} cannot be filled: {exc}") from None


@dataclass
class PromptFormat:
    prompt_template: str | None = None
    response_template: str | None = None
    chat_template: bool = False
    system_prompt: str | None = None

    @classmethod
    def from_config(cls, data: Any) -> PromptFormat:
        return cls(data.prompt_template, data.response_template, data.chat_template,
                   data.system_prompt)

    def prompt(self, record: dict[str, Any], tokenizer: Any) -> str:
        if record.get(AS_IS) and self is not PLAIN:
            return PLAIN.prompt(record, tokenizer)
        if "messages" in record and not self.prompt_template:
            turns = chat_turns(record)[:-1] if has_answer(record) else chat_turns(record)
            return apply_chat(tokenizer, turns, record)
        if self.prompt_template:
            text = fill(self.prompt_template, record, "prompt_template")
        elif "prompt" in record:
            text = field_text(record["prompt"])
        else:
            raise row_error(record, "prompt", "no prompt: give data.prompt_template (a format "
                                              "string over the record's fields) or a 'prompt' "
                                              "field, or 'messages'")
        if not self.chat_template:
            return text
        turns = ([{"role": "system", "content": self.system_prompt}]
                 if self.system_prompt else []) + [{"role": "user", "content": text}]
        return apply_chat(tokenizer, turns, record)

    def is_chat(self, records: list[dict[str, Any]]) -> bool:
        """Prompts come out of the chat template (which adds its own special tokens)."""
        if records and records[0].get(AS_IS) and self is not PLAIN:
            return PLAIN.is_chat(records)
        return self.chat_template or any("messages" in r for r in records[:1])

    def response(self, record: dict[str, Any]) -> str | None:
        """The gold response text, or None for an unlabelled record."""
        if record.get(AS_IS) and self is not PLAIN:
            return PLAIN.response(record)
        if "messages" in record and not self.response_template:
            turns = chat_turns(record)
            return turns[-1]["content"] if has_answer(record) else None
        if self.response_template:
            return fill(self.response_template, record, "response_template")
        if "response" in record:
            return field_text(record["response"])
        return None


PLAIN = PromptFormat()   # a record's own prompt/response or messages (data.extra_train rows)


def chat_turns(record: dict[str, Any]) -> list[dict[str, str]]:
    turns = record["messages"]
    if not isinstance(turns, list) or not all(isinstance(t, dict) and "role" in t
                                              and "content" in t for t in turns):
        raise row_error(record, "messages", "messages must be a list of {role, content} turns")
    return turns


def has_answer(record: dict[str, Any]) -> bool:
    turns = chat_turns(record)
    return bool(turns) and turns[-1]["role"] == "assistant"


def apply_chat(tokenizer: Any, turns: list[dict[str, str]], record: dict[str, Any]) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise row_error(record, "messages", "the tokenizer has no chat template; set "
                                            "data.chat_template: false and use "
                                            "data.prompt_template")
    return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)


@dataclass
class EncodedExamples:
    features: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def encode_sft(records: list[dict[str, Any]], tokenizer: Any, fmt: PromptFormat,
               max_length: int, truncation: str) -> EncodedExamples:
    """input_ids + labels (-100 on the prompt) per record; see the module doc for truncation."""
    features, dropped, cut = [], [], 0
    for record in records:
        chat = fmt.is_chat([record])  # per record: extra_train rows keep their own shape
        prompt_ids = tokenizer(fmt.prompt(record, tokenizer),
                               add_special_tokens=not chat)["input_ids"]
        response = fmt.response(record)
        response_ids = [] if response is None else \
            tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        room = max_length - len(response_ids)
        if room < MIN_PROMPT_TOKENS:
            if truncation == "error":
                raise row_error(record, "response", f"the response is {len(response_ids)} "
                                f"tokens, more than model.max_length={max_length} allows")
            dropped.append(record.get("_src", "?"))
            continue
        if len(prompt_ids) > room:
            if truncation == "error":
                raise row_error(record, "prompt", f"prompt + response are "
                                f"{len(prompt_ids) + len(response_ids)} tokens, more than "
                                f"model.max_length={max_length}")
            if truncation == "drop":
                dropped.append(record.get("_src", "?"))
                continue
            prompt_ids, cut = prompt_ids[len(prompt_ids) - room:], cut + 1
        features.append({"input_ids": prompt_ids + response_ids,
                         "attention_mask": [1] * (len(prompt_ids) + len(response_ids)),
                         "labels": [IGNORE] * len(prompt_ids) + response_ids,
                         "_prompt_length": len(prompt_ids)})
    notes = []
    if cut:
        notes.append(f"{cut} of {len(records)} prompts were cut from the left to fit "
                     f"model.max_length={max_length} (responses are never cut)")
    if dropped:
        what = "prompt + response are" if truncation == "drop" else "the response alone is"
        notes.append(f"{len(dropped)} of {len(records)} examples were dropped: {what} longer "
                     f"than model.max_length={max_length} (first: {dropped[0]})")
    if records and not features:
        raise DataError(f"every example is longer than model.max_length={max_length}; "
                        "raise it or shorten the responses")
    return EncodedExamples(features, notes)


def pack(features: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Concatenate short examples into rows of at most max_length tokens (first-fit in order).

    `position_ids` restart at 0 for each example, which is how transformers recognises packed
    sequences and keeps each example's attention inside itself (tested in tests/test_causal.py).
    """
    rows: list[dict[str, Any]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for feature in features:
        length = len(feature["input_ids"])
        if current["input_ids"] and len(current["input_ids"]) + length > max_length:
            rows.append(current)
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += feature["input_ids"]
        current["labels"] += feature["labels"]
        current["position_ids"] += list(range(length))
    if current["input_ids"]:
        rows.append(current)
    return rows
