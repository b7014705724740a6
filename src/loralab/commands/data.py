"""`loralab data synth KIND` (a synthetic dataset), and `loralab data export CONFIG --out DIR
[--raw] [--data DIR]`: the records a config trains and evaluates on, written as JSONL, one
folder per adapter of an `adapters:` config:

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

import json
from pathlib import Path
from typing import Any

from loralab.config.exported_data import DATA_EXPORT_MANIFEST

EXPORT_KIND = "loralab.data_export"


def synth_data(kind: str, out: str, n: int, seed: int, eval_fraction: float) -> int:
    """`loralab data synth KIND`: a synthetic dataset written to `out`."""
    from loralab.errors import UserError

    if n < 10:
        raise UserError("--n must be at least 10 (train and eval both need rows)")
    if not 0 < eval_fraction < 1:
        raise UserError("--eval-fraction must be between 0 and 1")
    if kind == "multiple-choice":
        from loralab.data.synth_mc import write_multiple_choice_dataset

        info = write_multiple_choice_dataset(Path(out), n, seed, eval_fraction=eval_fraction)
        print(f"wrote {info['n_train']} train + {info['n_eval']} eval questions in "
              f"{', '.join(info['categories'])} -> {out}")
        return 0
    from loralab.data.synth_json import write_json_extraction_dataset

    info = write_json_extraction_dataset(Path(out), n, seed, eval_fraction=eval_fraction)
    print(f"wrote {info['n_train']} train + {info['n_eval']} eval rows over "
          f"{len(info['intents'])} intents and schema.json -> {out}")
    return 0


def slots_data(kind: str, train: str, validation: str, out: str,
               columns: dict[str, str]) -> int:
    """`loralab data slots KIND`: an intent + slot dataset as JSON extraction (train.jsonl,
    eval.jsonl, schema.json under `out`; see loralab.data.slots)."""
    from loralab.atomic import atomic_write_json, atomic_write_text
    from loralab.data.paths import expand_paths
    from loralab.data.slots import (
        catalogue,
        check_intents,
        extraction_rows,
        read_utterances,
        slot_schema,
    )

    train_utts = read_utterances(expand_paths(train, "--train"), kind, columns)
    eval_utts = read_utterances(expand_paths(validation, "--validation"), kind, columns)
    check_intents(train_utts, eval_utts, "validation")
    intents = catalogue(train_utts)
    folder = Path(out)
    atomic_write_text(folder / "train.jsonl", exported_rows(
        extraction_rows(train_utts, intents, "train")))
    atomic_write_text(folder / "eval.jsonl", exported_rows(
        extraction_rows(eval_utts, intents, "eval")))
    atomic_write_json(folder / "schema.json", slot_schema(train_utts))
    slots = sum(len(s) for s in intents.values())
    print(f"wrote {len(train_utts)} train + {len(eval_utts)} eval utterances over "
          f"{len(intents)} intents and {slots} intent slots, and schema.json -> {out}")
    return 0


def run_data_export(config_path: str, overrides: list[str], out: str, *,
                    set_from: list[str] | None = None, data: str | None = None,
                    raw: bool = False) -> int:
    from loralab.config import load_config
    from loralab.config.exported_data import with_exported_data

    config = load_config(config_path, overrides, set_from=set_from)
    if data:
        config = with_exported_data(config, data)
    info = export_data(config, Path(out), raw=raw)
    counts = "; ".join(f"{name + ': ' if name else ''}" + ", ".join(
        f"{n} {split}" for split, n in splits.items()) for name, splits in info.items())
    print(f"exported {counts} -> {out}")
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
    if out.is_dir() and any(out.iterdir()) and not (out / DATA_EXPORT_MANIFEST).is_file():
        raise UserError(f"--out {out} is a folder that holds other files (no "
                        f"{DATA_EXPORT_MANIFEST}); choose a new or empty folder")


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
        atomic_write_json(tmp / DATA_EXPORT_MANIFEST, {
            "kind": EXPORT_KIND, "raw": raw, "task": config.model.task,
            "adapters": [n for n in counts if n], "rows": counts})
    return counts
