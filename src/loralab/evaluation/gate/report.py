"""What the gate shows and keeps: the terminal table and the gate.json record.

    rule                                  value       baseline  needed   margin  result
    code.pass@1 >= 0.3                   0.3400              –  0.3000  +0.0400    pass
    docstring.rougeL >= baseline * 0.98  0.4000         0.4100  0.4018  -0.0018    FAIL
    code.pass@1 >= base + 0.05           0.3400  0.2000 (base)  0.2500  +0.0900    pass

gate.json: `verdict` (pass / fail), `passed`, counts, `rules` (one object per rule:
canonical text, as written, resolved metric, direction, value, reference, needed, margin,
result, note), `inputs` (results, baseline and rules files with sha256), `baseline` (path,
whether one was stored, whether this run promoted the results), time and loralab version.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loralab import __version__
from loralab.evaluation.gate.check import FAIL, PASS, SKIPPED, Outcome, passed
from loralab.evaluation.gate.results import Results, sha256_file
from loralab.evaluation.gate.rules import BASE, rules_source

DASH = "–"
HEADERS = ("rule", "value", "baseline", "needed", "margin", "result")


def number_text(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def row(outcome: Outcome) -> tuple[str, ...]:
    reference = number_text(outcome.reference)
    if outcome.rule.kind == BASE:
        reference += " (base)"
    return (outcome.rule.text, number_text(outcome.value), reference,
            number_text(outcome.needed), number_text(outcome.margin, signed=True),
            outcome.status.upper() if outcome.status == FAIL else outcome.status)


def table_text(outcomes: list[Outcome]) -> str:
    rows = [HEADERS, *map(row, outcomes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    notes = [f"  {o.rule.text}: {o.note}" for o in outcomes if o.note]
    return "\n".join(lines + (["notes:", *notes] if notes else [])) + "\n"


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    return {status: sum(o.status == status for o in outcomes) for status in (PASS, FAIL,
                                                                            SKIPPED)}


def gate_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """The short form kept in the baseline file and its history."""
    return {"verdict": PASS if passed(outcomes) else FAIL, "time": now(),
            "rules": [{"rule": o.rule.text, "value": o.value, "result": o.status}
                      for o in outcomes]}


def rules_input(spec: Path) -> dict[str, Any]:
    """A rules file (or FILE:KEY section of one) as gate.json records it: the file's path and
    sha256, and the key when the rules are a section."""
    file, key = rules_source(spec)
    record: dict[str, Any] = {"path": str(file.resolve()), "sha256": sha256_file(file)}
    if key is not None:
        record["key"] = key
    return record


def gate_record(outcomes: list[Outcome], results: Results, baseline_path: Path,
                baseline: Results | None, rule_files: list[Path], promoted: bool
                ) -> dict[str, Any]:
    n = counts(outcomes)
    return {
        "verdict": PASS if passed(outcomes) else FAIL,
        "passed": passed(outcomes),
        "rules_passed": n[PASS], "rules_failed": n[FAIL], "rules_skipped": n[SKIPPED],
        "rules": [o.to_json() for o in outcomes],
        "inputs": {
            "results": results.inputs(),
            "baseline": baseline.inputs() if baseline else [],
            "rules": [rules_input(p) for p in rule_files],
        },
        "baseline": {"path": str(baseline_path.resolve()), "stored": baseline is not None,
                     "promoted": promoted},
        "time": now(),
        "loralab_version": __version__,
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
