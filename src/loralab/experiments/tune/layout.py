"""A tune folder and its settings file:

    DIR/tune.json        the study's identity (base config, space, metric) and settings
    DIR/study.journal    the Optuna study (JournalStorage, file backend)
    DIR/trials/NNNN-ID/  one ordinary run folder per trial (config.yaml, run.json, metrics.json,
                         diagnostics.jsonl, the adapter); DIR/index.sqlite indexes them
    DIR/locks/           one lock file per trial, held while it runs
    DIR/best.yaml, DIR/study.md, DIR/report.html, DIR/plots/*.png   written at the end
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json
from loralab.errors import UserError

SETTINGS_FILE = "tune.json"
TRIALS_DIR = "trials"
IDENTITY = ("config", "space", "metric")
OUTPUTS = ("study.journal", "trials", "locks", "index.sqlite", "best.yaml", "study.md",
           "report.html", "plots", SETTINGS_FILE)


def read_settings(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def check_folder(out: Path, settings: dict[str, Any], overwrite: bool) -> bool:
    """True when `out` must be cleared first (--overwrite over another study). Refuses a folder
    that holds something else, or a study of another config, space or metric."""
    if not out.exists() or not any(out.iterdir()):
        return False
    existing = read_settings(out)
    if not existing:
        raise UserError(f"--output {out} is not empty and holds no study ({SETTINGS_FILE} "
                        "missing); give an empty or new folder")
    differs = [key for key in IDENTITY if existing.get(key) != settings.get(key)]
    if not differs:
        return False
    if not overwrite:
        raise UserError(f"--output {out} holds a study of another {', '.join(differs)}; "
                        "pass --overwrite to replace it, or give another folder")
    return True


def clear_study(out: Path) -> None:
    for name in OUTPUTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_settings(out: Path, settings: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / SETTINGS_FILE, settings)
