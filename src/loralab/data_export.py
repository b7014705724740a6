"""`loralab data export CONFIG --out DIR [--raw] [--data DIR]`: the records a config trains and
evaluates on, written as JSONL, one folder per adapter of an `adapters:` config:

    DIR/<adapter>/train.jsonl, validation.jsonl, test.jsonl     (DIR/*.jsonl for one adapter)
    DIR/export.json                                             what was written, row counts

By default the splits as training sees them (data.filter, the validation hold-out and
max_*_samples applied); with --raw the splits as the sources give them (a hub dataset's
splits, MBPP's task-id splits), before any of that. `loralab train CONFIG --data DIR` (and
`data export --data DIR`) then read these files instead of the config's sources, keeping its
prompt format and metrics. Rows keep every field but the internal `_src`-like ones; the rows of
data.extra_train are not exported (training adds them from the config). The same config and
sources give the same bytes, so a pipeline stage that depends on DIR re-runs only when the
data changed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EXPORT_FILE = "export.json"
EXPORT_KIND = "loralab.data_export"


def add_commands(data_sub) -> None:
    p = data_sub.add_parser("export", help="write the resolved splits of a config (every "
                                           "adapter's) as JSONL")
    p.add_argument("config", help="YAML config file, or FILE:KEY (a section, e.g. "
                                  "params.yaml:train)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable)")
    p.add_argument("--set-from", action="append", default=[], metavar="FILE:KEY",
                   help="apply a YAML mapping of KEY: VALUE overrides (repeatable)")
    p.add_argument("--data", metavar="DIR", help="read the data from an earlier export")
    p.add_argument("--raw", action="store_true",
                   help="the sources' own splits, before data.filter, the validation "
                        "hold-out and max_*_samples")
    p.add_argument("--out", required=True, help="folder to write (replaced if it holds an "
                                                "earlier export)")
    p.set_defaults(func=cmd_data_export)


def cmd_data_export(args: argparse.Namespace) -> int:
    from loralab.config import load_config
    from loralab.config_adapters import with_exported_data

    config = load_config(args.config, args.set, set_from=args.set_from)
    if args.data:
        config = with_exported_data(config, args.data)
    info = export_data(config, Path(args.out), raw=args.raw)
    counts = "; ".join(f"{name + ': ' if name else ''}" + ", ".join(
        f"{n} {split}" for split, n in splits.items()) for name, splits in info.items())
    print(f"exported {counts} -> {args.out}")
    return 0


def exported_rows(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps({k: v for k, v in r.items() if not str(k).startswith("_")},
                              ensure_ascii=False, default=str) + "\n" for r in records)


def config_splits(config: Any, raw: bool) -> dict[str, list[dict[str, Any]]]:
    from loralab.data.loader import load_data, load_source_splits
    from loralab.tasks import get_task

    data = config.data.model_copy(update={"extra_train": []})
    spec = get_task(config.model.task, config).records
    return load_source_splits(data, spec) if raw else load_data(data, spec).splits


def check_out(out: Path) -> None:
    """DIR may be new, empty, or an earlier export (replaced); anything else is refused."""
    from loralab.atomic import check_writable_dir
    from loralab.errors import UserError

    check_writable_dir(out, "--out")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_FILE).is_file():
        raise UserError(f"--out {out} is a folder that holds other files (no {EXPORT_FILE}); "
                        "choose a new or empty folder")


def export_data(config: Any, out: Path, *, raw: bool = False) -> dict[str, dict[str, int]]:
    """Write the export (everything read and checked first); {adapter or "": {split: rows}}."""
    from loralab.atomic import atomic_directory, atomic_write_json, atomic_write_text

    check_out(out)
    targets = config.adapter_configs() if config.adapters else [("", config)]
    loaded = {name: config_splits(cfg, raw) for name, cfg in targets}
    with atomic_directory(out) as tmp:
        for name, splits in loaded.items():
            folder = tmp / name if name else tmp
            folder.mkdir(parents=True, exist_ok=True)
            for split, records in splits.items():
                atomic_write_text(folder / f"{split}.jsonl", exported_rows(records))
        counts = {name: {split: len(records) for split, records in splits.items()}
                  for name, splits in loaded.items()}
        atomic_write_json(tmp / EXPORT_FILE, {
            "kind": EXPORT_KIND, "raw": raw, "task": config.model.task,
            "adapters": [n for n in counts if n], "rows": counts})
    return counts
