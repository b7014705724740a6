"""The stored baseline: read it, and replace it on a passing `loralab gate --promote`.

The baseline file that promotion writes holds the promoted results' flat metrics:

    {"kind": "loralab.baseline", "version": 1, "promoted_at": "2025-...+00:00",
     "source": [{"path": ".../metrics.json", "sha256": "..."}],
     "gate": {"verdict": "pass", "rules": [...]}, "metrics": {"code.pass@1": 0.34, ...}}

Promotion first appends the baseline being replaced to `<stem>.history.jsonl` beside it (one
JSON line: `replaced_at`, `replaced_by`, `gate`, `baseline`), then replaces the baseline; both
writes are atomic (loralab.atomic), so a killed promotion leaves the old baseline whole (at
worst with its history line already written) or the new one, never a mix.

Test hook: with LORALAB_TEST_PROMOTE_PAUSE=SECONDS set, promotion prints
`promote: paused` to stderr and sleeps between the history append and the baseline
replacement, so a test can kill it there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json, atomic_write_text
from loralab.errors import UserError
from loralab.evaluation.gate.report import now
from loralab.evaluation.gate.results import BASELINE_KIND, Results, load_results, read_json

PAUSE_ENV = "LORALAB_TEST_PROMOTE_PAUSE"


def history_path(baseline: Path) -> Path:
    return baseline.with_name(f"{baseline.stem}.history.jsonl")


def read_baseline(path: Path) -> Results | None:
    """The baseline's metrics, or None when no baseline is stored there yet."""
    if not path.exists():
        return None
    return load_results(path, role="baseline")


def check_promotable(path: Path) -> None:
    """--promote writes a baseline file: refuse a folder, or a file that is another kind of
    results (replacing a run's metrics.json would break the run folder)."""
    if path.is_dir():
        raise UserError(f"--promote needs --baseline to be a file (it is replaced on a pass); "
                        f"{path} is a folder: give e.g. {path / 'baseline.json'}")
    if path.exists():
        raw = read_json(path, "baseline")
        if not (isinstance(raw, dict) and raw.get("kind") == BASELINE_KIND):
            raise UserError(f"--promote would replace {path}, which is not a baseline written "
                            "by `loralab gate --promote`; promote into a new file, e.g. "
                            f"{path.with_name('baseline.json')}")


def baseline_record(results: Results, gate: dict[str, Any]) -> dict[str, Any]:
    return {"kind": BASELINE_KIND, "version": 1, "promoted_at": now(),
            "source": results.inputs(), "gate": gate, "metrics": results.metrics}


def promote(path: Path, results: Results, gate: dict[str, Any]) -> Path | None:
    """Make `results` the baseline at `path`; returns the history file when one was written."""
    history = None
    if path.exists():
        history = history_path(path)
        line = {"replaced_at": now(), "replaced_by": results.inputs(), "gate": gate,
                "baseline": read_json(path, "baseline")}
        old = history.read_text(encoding="utf-8") if history.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(history, old + json.dumps(line, sort_keys=False) + "\n")
    pause = os.environ.get(PAUSE_ENV)
    if pause:
        print("promote: paused", file=sys.stderr, flush=True)
        time.sleep(float(pause))
    atomic_write_json(path, baseline_record(results, gate))
    return history
