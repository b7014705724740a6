"""Config validation messages that name the key path and suggest the nearest known key.

    format_validation_error(exc, Config)
        -> "lora.alpah: unknown key; did you mean lora.alpha?"
        -> "adapters.0.data.formt: unknown key; did you mean adapters.0.data.format?"
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

DOTTED_KEY = re.compile(r"\b[a-z_]+\.[a-z_]+\b")

# names that PEFT / transformers users type, mapped to our full key paths
KEY_ALIASES = {
    "rank": "lora.r", "lora_r": "lora.r", "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout", "lr": "training.learning_rate",
    "num_epochs": "training.epochs", "num_train_epochs": "training.epochs",
    "per_device_train_batch_size": "training.batch_size",
    "per_device_eval_batch_size": "training.eval_batch_size",
    "warmup_ratio": "training.warmup", "warmup_steps": "training.warmup",
    "lr_scheduler_type": "training.scheduler", "evaluation_strategy": "training.eval_strategy",
    "model_name_or_path": "model.name", "model_name": "model.name",
    "max_seq_length": "model.max_length", "train_file": "data.train",
    "validation_file": "data.validation",
}


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    by_key: dict[str, list[str]] = {}
    for err in exc.errors():
        loc, branch = split_union_branch([str(p) for p in err["loc"]], root)
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            message = f"{key}: unknown key{suggest_key(loc, root)}"
        elif err["type"] == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
            if key and not DOTTED_KEY.search(message):  # a field's own check: name the key
                message = f"{key}: {message}"
        else:
            got = err.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict) else (
                f" (got the mapping {got!r}: YAML reads {{...}} as a mapping; quote the value, "
                f"e.g. --set '{key}=\"{{...}}\"')" if "str" in err["type"] else "")
            detail = f"as {branch}: {err['msg']}" if branch else err["msg"]
            message = f"{key}: {detail}{shown}"
        by_key.setdefault(key, []).append(message)
    lines = []
    for key, messages in by_key.items():
        if len(messages) > 1 and all(m.startswith(f"{key}: as ") for m in messages):
            options = " | ".join(m.split(": as ", 1)[1].split(":", 1)[0] for m in messages)
            got = messages[0].rsplit(" (got ", 1)[-1] if "(got " in messages[0] else ""
            lines.append(f"{key}: expected {options}" + (f" (got {got}" if got else ""))
        else:
            lines.extend(dict.fromkeys(messages))
    return "; ".join(lines)


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field that holds a section, a list of sections or an optional
    section (`JudgeConfig | None`); None for plain values."""
    if getattr(annotation, "__origin__", None) is list:
        annotation = annotation.__args__[0]
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(members) == 1:
        annotation = members[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def split_union_branch(loc: list[str], root: type[BaseModel]) -> tuple[list[str], str]:
    """Cut pydantic's union-member tags (`int`, `list[int]`) off an error location."""
    model: type[BaseModel] | None = root
    for i, part in enumerate(loc):
        if part.isdigit():  # an item of a list of sections (adapters.0, training.loss.0)
            continue
        if model is None:
            return (loc[:i], part) if not part.isdigit() else (loc, "")
        field = model.model_fields.get(part)
        if field is None:
            return loc, ""
        annotation = field.annotation
        if getattr(annotation, "__origin__", None) is dict:
            return loc, ""
        model = section_model(annotation)
    return loc, ""


def suggest_key(loc: list[str], root: type[BaseModel]) -> str:
    """'; did you mean lora.alpha?' for a mistyped key, or the list of known keys."""
    model: type[BaseModel] = root
    for part in loc[:-1]:
        if part.isdigit():  # an item of a list of sections (training.loss.0)
            continue
        field = model.model_fields.get(part)
        inner = section_model(getattr(field, "annotation", None))
        if inner is None:
            return ""
        model = inner
    if loc[-1] in KEY_ALIASES:
        alias = KEY_ALIASES[loc[-1]]
        section, _, leaf = alias.partition(".")
        if len(loc) >= 2 and loc[-2] == section:  # in the right section: keep its path
            return f"; did you mean {'.'.join(loc[:-1])}.{leaf}?"
        return f"; did you mean {alias}?"
    known = list(model.model_fields)
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    prefix = ".".join(loc[:-1])
    if close:
        return f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?"
    return f"; known keys{' of ' + prefix if prefix else ''}: {', '.join(known)}"
