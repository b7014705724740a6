"""`loralab grid GRID.yaml`: expand, skip what is done, run the rest, index every result.

    DIR/plan.json                  the runs of the latest invocation's grid (ids, names)
    DIR/index.sqlite               the results index (rebuildable: loralab runs reindex DIR)
    DIR/runs/<name>-<id>/          one run folder per run: config.yaml, run.json, log.txt,
                                   diagnostics.jsonl, metrics.json, the adapter
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json, atomic_write_text, check_writable_dir
from loralab.config import dump_config
from loralab.errors import UserError
from loralab.experiments.execute import BUSY
from loralab.experiments.expand import GridPlan, PlannedRun, build_plan, check_sources
from loralab.experiments.index import RUNS_DIR, record_run
from loralab.experiments.records import FAILED, FINISHED
from loralab.experiments.status import (
    CONFIG_FILE,
    planned_status,
    read_metrics,
    read_status,
    write_status,
)
from loralab.training.run_lock import is_locked
from loralab.training.tracking.group import tracking_group

PLAN_FILE = "plan.json"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`i/n` with 0 <= i < n (SLURM_ARRAY_TASK_ID counts from 0)."""
    if not text:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise UserError(f"--shard {text!r}: i must be in 0..n-1 (got {index} of {count})")
    return index, count


def shard_runs(runs: list[PlannedRun], shard: tuple[int, int] | None) -> list[PlannedRun]:
    """The i-th of n deterministic slices: every run lands in exactly one shard."""
    if shard is None:
        return runs
    index, count = shard
    return [run for k, run in enumerate(runs) if k % count == index]


def default_output(grid_file: str, smoke: bool) -> Path:
    stem = Path(grid_file).stem
    return Path("runs") / (f"{stem}-smoke" if smoke else stem)


def print_plan(plan: GridPlan, out: Path) -> None:
    baselines = sum(r.baseline for r in plan.runs)
    print(f"{plan.source}: {len(plan.runs)} runs ({baselines} baseline) -> {out / RUNS_DIR}")
    for run in plan.runs:
        changes = ", ".join(f"{k}={json.dumps(v)}" for k, v in run.changes.items()
                            if k != "training.seed") or "(the base config)"
        print(f"  {run.id}  {run.name:<40} {changes}")


def prepare_folders(plan: GridPlan, out: Path) -> None:
    """A folder, config.yaml and run.json for every planned run; plan.json for the grid."""
    for run in plan.runs:
        run_dir = out / RUNS_DIR / run.folder
        run_dir.mkdir(parents=True, exist_ok=True)
        config_text = dump_config(run.config)
        config_path = run_dir / CONFIG_FILE
        if not config_path.is_file() or config_path.read_text(encoding="utf-8") != config_text:
            atomic_write_text(config_path, config_text)
        if not read_status(run_dir):
            write_status(run_dir, planned_status(run, plan.source))
    atomic_write_json(out / PLAN_FILE, {
        "grid": str(plan.source), "written": time.time(),
        "runs": [{"id": r.id, "name": r.name, "folder": r.folder} for r in plan.runs]})


def run_state(run_dir: Path) -> str:
    if read_metrics(run_dir) is not None:
        return FINISHED
    if is_locked(run_dir):
        return BUSY
    return read_status(run_dir).get("status", "pending")


class GridProgress:
    """Prints one line per finished run and records it in the index."""

    def __init__(self, out: Path, total: int) -> None:
        self.out, self.total, self.done, self.failed = out, total, 0, 0

    def __call__(self, run_dir: Path, status: dict[str, Any]) -> None:
        self.done += 1
        record = record_run(self.out, run_dir)
        head = f"[{self.done}/{self.total}]"
        if status.get("status") == BUSY:
            print(f"{head} skipped {run_dir.name}: running in another process", flush=True)
        elif record is not None and record.status == FINISHED:
            metrics = record.metrics or {}
            metric = metrics.get("metric_for_best")
            value = record.chosen_metrics().get(metric)
            shown = f"{metric}={value:.4f}" if isinstance(value, float) else ""
            print(f"{head} done    {record.name}  {shown}  "
                  f"({metrics.get('train_seconds', 0):.0f} s)", flush=True)
        else:
            self.failed += 1
            error = (status.get("error") or "no result").splitlines()[0]
            print(f"{head} {status.get('status', FAILED):<7} {run_dir.name}: {error}",
                  flush=True)


def run_grid(grid_file: str, output: str | None, overrides: list[str], *, dry_run: bool,
             smoke: bool, jobs: int, shard: str | None, backend: str, address: str | None,
             retry_failed: bool) -> int:
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (got {jobs})")
    slice_ = parse_shard(shard)
    plan = build_plan(grid_file, overrides, smoke=smoke)
    out = Path(output) if output else default_output(grid_file, smoke)
    check_writable_dir(out)
    if dry_run:
        print_plan(plan, out)
        return 0
    check_sources(plan)
    prepare_folders(plan, out)
    mine = shard_runs(plan.runs, slice_)
    todo, counts = [], {}
    for run in mine:
        run_dir = out / RUNS_DIR / run.folder
        state = run_state(run_dir)
        counts[state] = counts.get(state, 0) + 1
        if state == FINISHED:
            record_run(out, run_dir)
        elif state == BUSY or (state == FAILED and not retry_failed):
            continue
        else:
            todo.append((run_dir, run.config.training.threads))
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"grid {plan.source}: {len(plan.runs)} runs"
          f"{f', shard {shard}: {len(mine)}' if shard else ''} ({summary}); running "
          f"{len(todo)} -> {out}", flush=True)
    if counts.get(FAILED) and not retry_failed:
        print(f"  {counts[FAILED]} failed earlier and are left as they are; pass "
              "--retry-failed to run them again", flush=True)
    progress = GridProgress(out, len(todo))
    try:
        with tracking_group(plan.base, out.resolve().name) as group:  # training.report_to
            execute(todo, plan, backend, jobs, address, progress)
            group.summary.update(runs=progress.done, failed=progress.failed)
    except KeyboardInterrupt:
        print("loralab: interrupted; the next `loralab grid` resumes the unfinished runs",
              file=sys.stderr)
        return 130
    return 1 if progress.failed else 0


def execute(todo: list[tuple[Path, int | None]], plan: GridPlan, backend: str, jobs: int,
            address: str | None, progress: GridProgress) -> None:
    from loralab.experiments.executors import run_local, run_ray

    if not todo:
        return
    if backend == "ray":
        run_ray(todo, plan.spec.resources, address, progress)
    else:
        run_local(todo, jobs, progress)
