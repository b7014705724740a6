"""`loralab predict`: read the inputs (`--text` / `--text-pair` / `--file`), complete them
into the task's records, predict in batches, one rendered result per input (JSON lines) with
an adapter, one adapter of a multi-adapter folder, or a merged / ONNX export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from loralab.errors import DataError, UserError
from loralab.tasks import LoadedAdapter, Task


def read_inputs(texts: list[str], pairs: list[str], file: str | None,
                task: Task) -> list[dict]:
    if bool(texts) == bool(file):
        raise UserError("give --text (repeatable) or --file, one of the two")
    if pairs and len(pairs) != len(texts):
        raise UserError(f"{len(pairs)} --text-pair for {len(texts)} --text; give one each")
    if texts:
        return [{"text": t, "text_pair": pairs[i] if pairs else None, "_src": f"--text:{i + 1}"}
                for i, t in enumerate(texts)]
    return read_input_file(Path(file), task)


def read_input_file(path: Path, task: Task) -> list[dict]:
    """A .txt file (one text per line) or any file the data loaders read, in the shape of the
    task's prediction inputs (texts for encoders; every field for causal LMs)."""
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    if path.suffix == ".txt":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return nonempty([{"text": line, "text_pair": None, "_src": f"{path}:{i}"}
                         for i, line in enumerate(lines, start=1) if line.strip()], str(path))
    from loralab.config import DataConfig
    from loralab.data import read_file

    return read_file(path, DataConfig(), task.input_spec, "test")


def nonempty(records: list[dict], source: str) -> list[dict]:
    if not records:
        raise DataError("the file holds no inputs (no non-blank lines)", file=source)
    return records


def within_positions(loaded: LoadedAdapter) -> None:
    """Encode with the trained length, cut to the model's position limit for an adapter
    trained before that limit was checked (loralab.models.limits)."""
    from loralab.models.limits import position_limit

    limit = position_limit(getattr(loaded.model, "config", None))
    if limit is not None and loaded.config.model.max_length > limit:
        loaded.config.model.max_length = max(limit, 8)


@torch.no_grad()
def predict_records(loaded: LoadedAdapter, records: list[dict],
                    batch_size: int = 32) -> Iterator[dict[str, Any]]:
    """The one input rule first (loralab.tasks.inputs), then the task's predictions."""
    loaded.task.check_inputs(records, loaded.inputs)
    within_positions(loaded)
    records = loaded.task.prepare_inputs(records, loaded.config)
    yield from loaded.task.predict(loaded.model, loaded.tokenizer, records, loaded.config,
                                   loaded.labels, batch_size)


def constrained_config(config: Any, constrain: str | None, schema: str | None) -> Any:
    """The adapter's config with --constrain / --schema on top (--schema alone means
    json_schema), checked: schema file and grammar engine, before any model loads."""
    from loralab.config import validate_config
    from loralab.models.grammar import constraint_spec

    if constrain is None and schema is None:
        return config
    raw = config.model_dump(mode="json")
    if schema is not None:
        raw["data"]["schema_file"] = str(Path(schema).resolve())
    raw["eval"]["constrain"] = constrain or "json_schema"
    config = validate_config(raw)
    constraint_spec(config)
    return config


def run_predict(adapter_path: str, texts: list[str], pairs: list[str], file: str | None,
                batch_size: int, *, adapter_name: str | None = None,
                constrain: str | None = None, schema: str | None = None) -> int:
    """`constrain` (json | json_schema | none) and `schema` (a JSON Schema file) replace the
    adapter's eval.constrain / data.schema_file for causal adapters."""
    from loralab.commands.evaluate import refuse_adapter_set, selected_names
    from loralab.export.folders import is_model_export, load_export
    from loralab.tasks import load_adapter, load_adapter_set
    from loralab.tasks.loading import read_adapter_metadata

    if adapter_name:
        selected_names(adapter_path, adapter_name, False)
        loaded = load_adapter_set(adapter_path).use(adapter_name)
        loaded.config = constrained_config(loaded.config, constrain, schema)
    elif is_model_export(Path(adapter_path)):  # "test mode" of a merged or ONNX artefact
        loaded = load_export(Path(adapter_path))
        loaded.config = constrained_config(loaded.config, constrain, schema)
    else:
        refuse_adapter_set(adapter_path)
        stored, _, _ = read_adapter_metadata(adapter_path)
        loaded = load_adapter(adapter_path, constrained_config(stored, constrain, schema))
    records = read_inputs(texts, pairs, file, loaded.task)
    for line in predict_records(loaded, records, batch_size):
        print(json.dumps(line, ensure_ascii=False))
    return 0
