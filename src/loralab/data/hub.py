"""Hugging Face hub datasets (`data.hub`), loaded with `datasets.load_dataset`.

Rows are numbered within their split, first = 1; `_src` reads "hub:<name>[<split>]:<row>".
Records take the shape the task's RecordSpec asks for (see loralab.data.formats.table_records).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loralab.config import DataConfig
from loralab.data.formats import FORMATS, table_records
from loralab.data.readers import Table
from loralab.data.spec import RecordSpec
from loralab.errors import DataError, UserError

DEFAULT_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
# Names that are datasets of their own with configs; "glue/mrpc" means glue, config mrpc.
CONFIG_SHORTHAND = ("glue", "super_glue")


def hub_name(hub: str, config: str | None) -> tuple[str, str | None]:
    """(dataset, config): "glue/mrpc" and "org/name/config" carry the config in the name."""
    parts = hub.split("/")
    if config is None and len(parts) == 3:
        return "/".join(parts[:2]), parts[2]
    if config is None and len(parts) == 2 and parts[0] in CONFIG_SHORTHAND:
        return parts[0], parts[1]
    return hub, config


def load_hub_splits(cfg: DataConfig, spec: RecordSpec) -> dict[str, list[dict[str, Any]]]:
    assert cfg.hub is not None
    if cfg.format != "auto":
        FORMATS[cfg.format].check(spec)
    name, config = hub_name(cfg.hub, cfg.hub_config)
    label = f"{name}/{config}" if config else name
    dataset = fetch(name, config, label)
    splits = {}
    for split, default in DEFAULT_SPLITS.items():
        source = cfg.splits.get(split, default)
        if source not in dataset:
            if split == "train" or split in cfg.splits:
                raise DataError(f"hub dataset {label} has no split {source!r}; it has "
                                f"{', '.join(map(repr, dataset))} (see data.splits)")
            continue
        table = hub_table(dataset[source], f"hub:{label}[{source}]")
        splits[split] = table_records(table, cfg, spec, split)
    return splits


def fetch(name: str, config: str | None, label: str) -> Any:
    try:
        import datasets

        return datasets.load_dataset(name, config)
    except Exception as exc:  # offline, unknown name, bad config: all one message for the user
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(f"could not fetch hub dataset {label} ({reason}); check the name and "
                        "the network, or use local files via data.train") from None


def hub_table(split: Any, source: str) -> Table:
    """A hub split as a Table; ClassLabel values become their names and -1 becomes None."""
    decoders = _decoders(split.features)
    rows = []
    for number, record in enumerate(split.to_list(), start=1):
        for column, decode in decoders.items():
            record[column] = decode(record[column])
        rows.append((number, record))
    return Table(source, list(split.column_names), rows)


def _decoders(features: Any) -> dict[str, Callable[[Any], Any]]:
    from datasets import ClassLabel

    decoders: dict[str, Callable[[Any], Any]] = {}
    for column, feature in features.items():
        inner = getattr(feature, "feature", None)
        if isinstance(feature, ClassLabel):
            decoders[column] = lambda v, f=feature: f.int2str(v) if v is not None and v >= 0 \
                else None
        elif isinstance(inner, ClassLabel):
            decoders[column] = lambda vs, f=inner: [f.int2str(v) for v in vs]
    return decoders
