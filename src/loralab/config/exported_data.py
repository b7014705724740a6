"""Configs that read the files `loralab data export` wrote (`loralab train --data DIR`):
every adapter's (or the one) data section pointed at DIR's JSONL files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.config.loading import validate_config
from loralab.config.schema import Config
from loralab.config.sections import ColumnsConfig
from loralab.errors import UserError

SPLITS = ("train", "validation", "test")
# the manifest `loralab data export` writes into its --out folder
DATA_EXPORT_MANIFEST = "export.json"


def exported_files(folder: Path) -> dict[str, Path]:
    """{split: file} of one exported data folder (train required)."""
    files = {split: folder / f"{split}.jsonl" for split in SPLITS
             if (folder / f"{split}.jsonl").is_file()}
    if "train" not in files:
        raise UserError(f"{folder} holds no train.jsonl; give --data the --out folder of "
                        "`loralab data export`")
    return files


def point_at_export(data: Any, folder: Path) -> None:
    """Make a data section read the exported files of `folder` as plain JSONL, keeping its
    prompt format, metrics, filter and sampling (re-applying them changes nothing)."""
    files = exported_files(folder)
    for split in SPLITS:
        setattr(data, split, str(files[split].resolve()) if split in files else None)
    data.hub = None
    data.hub_config = None
    data.format = "jsonl"
    data.columns = ColumnsConfig()
    data.splits = {}


def with_exported_data(config: Config, folder: str | Path) -> Config:
    """`config` reading every adapter's (or its one) data from a `loralab data export` folder:
    DIR/<adapter>/{train,validation,test}.jsonl, or DIR/{...}.jsonl for a single config."""
    root = Path(folder)
    if not (root / DATA_EXPORT_MANIFEST).is_file():
        raise UserError(f"--data {root}: not a folder written by `loralab data export` (no "
                        f"{DATA_EXPORT_MANIFEST})")
    config = config.model_copy(deep=True)
    if config.adapters:
        for entry in config.adapters:
            point_at_export(entry.data, root / entry.name)
    else:
        point_at_export(config.data, root)
    return validate_config(config.model_dump(mode="json"))
