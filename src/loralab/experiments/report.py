"""The comparison report of a hyper-parameter grid (`loralab compare DIR`).

Finished runs are grouped (by default model x dataset). Within a group the runs of one
configuration (one variant, several seeds) become one row: the chosen metric as mean ± std over
seeds, the gain over the no-LoRA baseline, and the cost (trainable parameters, seconds).
The tables go to summary.csv / summary.md, the winner per group with a reason in plain words to
best.json, a terminal digest to sweep_summary.txt, plots to plots/ and everything on one
self-contained page to report.html.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json, atomic_write_text
from loralab.errors import UserError
from loralab.experiments import report_html
from loralab.experiments.records import FAILED, FINISHED, KILLED, PENDING, RUNNING, RunRecord

# same rule as training.selection.LOWER_IS_BETTER (not imported: that module imports torch)
LOWER_IS_BETTER = ("loss", "mse")
# metrics shown as extra mean columns, in this order, when the group's runs record them
MAIN_METRICS = ("accuracy", "f1", "f1_micro", "mcc", "precision", "recall",
                "pearson", "spearman", "mse")
STATUSES = (FINISHED, FAILED, KILLED, RUNNING, PENDING)
# files this module writes; those of an earlier report that are not rewritten are removed
TABLE_FILES = ("summary.csv", "summary.md", "best.json")
PLOT_PATTERNS = ("learning_curves_*.png", "metric_vs_*.png", "pareto_*.png")
DASH = "–"
STD_NOTE = ("mean ± sample std over seeds (ddof=1); the std is blank for a single seed")
GAIN_NOTE = ("gain = mean minus the mean of the no-LoRA baseline of the same model x dataset, "
             "sign-flipped for lower-is-better metrics (names ending in loss or mse), so a "
             "positive gain always means better than the baseline")


@dataclass
class ReportResult:
    out_dir: Path
    metric: str                   # the metric of most groups ("" when no run finished)
    rows: list[dict[str, Any]]    # the summary.csv rows, raw numbers
    files: list[Path]             # everything written, plots included
    best: list[dict[str, Any]] = field(default_factory=list)    # the best.json entries
    counts: dict[str, int] = field(default_factory=dict)        # runs per status


@dataclass
class Configuration:
    """The finished runs of one variant in one group: one row of the summary."""

    group: tuple[Any, ...]
    variant: str
    runs: list[RunRecord]
    metric: str
    gain: float | None = None
    baseline_mean: float | None = None

    @property
    def baseline(self) -> bool:
        return any(run.baseline for run in self.runs)

    @property
    def model(self) -> str:
        return self.runs[0].model

    @property
    def dataset(self) -> str:
        return self.runs[0].dataset

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def values(self) -> list[float]:
        return [v for v in (metric_value(run, self.metric) for run in self.runs) if v is not None]

    @property
    def mean(self) -> float | None:
        return mean_or_none(self.values)

    @property
    def std(self) -> float | None:
        values = self.values
        return statistics.stdev(values) if len(values) > 1 else None

    @property
    def r(self) -> Any:
        return None if self.baseline else config_value(self.runs[0].config, "lora.r")

    @property
    def alpha(self) -> Any:
        return None if self.baseline else config_value(self.runs[0].config, "lora.alpha")

    @property
    def adapted_layers(self) -> Any:
        return adapted_layers(self.runs[0])

    @property
    def trainable(self) -> int | None:
        counts = [run.metrics.get("trainable_parameters") for run in self.runs if run.metrics]
        counts = [c for c in counts if isinstance(c, int)]
        return Counter(counts).most_common(1)[0][0] if counts else None

    @property
    def label(self) -> str:
        """The variant without the model and dataset labels, e.g. r8-a16-l6."""
        if self.baseline:
            return "baseline"
        text = self.variant
        for name in (self.dataset, self.model):
            text = re.sub(rf"(^|-){re.escape(name)}(?=-|$)", "", text)
        return text.strip("-") or self.variant

    def mean_of(self, read: Callable[[RunRecord], float | None]) -> float | None:
        return mean_or_none([v for v in map(read, self.runs) if v is not None])


@dataclass
class Group:
    key: tuple[Any, ...]
    fields: dict[str, Any]
    label: str
    slug: str
    metric: str
    configs: list[Configuration]   # ranked, best first
    best: dict[str, Any] | None = None
    # the baselines the gains refer to (the group's own, or its model x dataset's elsewhere)
    references: list[Configuration] = field(default_factory=list)

    @property
    def greater(self) -> bool:
        return greater_is_better(self.metric)

    def extra_metrics(self) -> list[str]:
        seen = {k for c in self.configs for run in c.runs for k in run.chosen_metrics()}
        return [m for m in MAIN_METRICS if m in seen and m != self.metric]

    def has_test(self) -> bool:
        return any(test_value(run, self.metric) is not None
                   for c in self.configs for run in c.runs)


# ---------------------------------------------------------------- entry point


def write_report(records: list[RunRecord], out_dir: Path, *, metric: str | None = None,
                 group_by: tuple[str, ...] = ("model", "dataset")) -> ReportResult:
    """Write the tables, best.json, plots, sweep_summary.txt and report.html into out_dir.

    metric=None takes, per group, the `metric_for_best` most of its runs share (a sweep over
    a classification and a regression dataset then ranks by f1 and pearson respectively).
    Raises UserError for a metric no finished run records or an unknown group-by key.
    With no finished run, only sweep_summary.txt and report.html are written.
    """
    from loralab.experiments.plots import write_plots

    out_dir = Path(out_dir)
    group_by = tuple(group_by)
    check_group_by(records, group_by)
    finished = [r for r in records if r.status == FINISHED and r.metrics]
    if metric is not None and finished:
        check_metric(finished, metric)
    counts = status_counts(records)
    groups = build_groups(finished, metric, group_by) if finished else []
    files: list[Path] = []
    plots: dict[str, list[Path]] = {}
    rows = [summary_row(g, c, group_by) for g in groups for c in g.configs]
    if groups:
        files += write_tables(groups, rows, group_by, out_dir)
        plots = write_plots(groups, out_dir / "plots")
        files += [path for paths in plots.values() for path in paths]
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    failures = failed_runs(records)
    atomic_write_text(out_dir / "sweep_summary.txt",
                      sweep_summary(groups, counts, failures, group_by, generated))
    files.append(out_dir / "sweep_summary.txt")
    atomic_write_text(out_dir / "report.html",
                      html_page(groups, counts, failures, group_by, generated, plots))
    files.append(out_dir / "report.html")
    remove_stale(out_dir, files)
    return ReportResult(out_dir=out_dir, metric=main_metric(groups, metric), rows=rows,
                        files=files, best=[g.best for g in groups if g.best], counts=counts)


def main_metric(groups: list[Group], requested: str | None) -> str:
    if requested:
        return requested
    common = Counter(g.metric for g in groups).most_common(1)
    return common[0][0] if common else ""


def remove_stale(out_dir: Path, written: list[Path]) -> None:
    """Drop files of an earlier report that this one did not rewrite (they would mislead)."""
    keep = {p.resolve() for p in written}
    candidates = [out_dir / name for name in TABLE_FILES]
    for pattern in PLOT_PATTERNS:
        candidates += (out_dir / "plots").glob(pattern)
    for path in candidates:
        if path.is_file() and path.resolve() not in keep:
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- inputs and checks


def greater_is_better(metric: str) -> bool:
    return not metric.endswith(LOWER_IS_BETTER)


def number(value: Any) -> float | None:
    """A finite float, or None for missing, non-numeric, bool or NaN values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def metric_value(run: RunRecord, metric: str) -> float | None:
    return number(run.chosen_metrics().get(metric))


def test_value(run: RunRecord, metric: str) -> float | None:
    test = (run.metrics or {}).get("test")
    return number(test.get(metric)) if isinstance(test, dict) else None


def run_number(run: RunRecord, key: str) -> float | None:
    return number((run.metrics or {}).get(key))


_MISSING = object()


def config_value(config: dict[str, Any], key: str, default: Any = None) -> Any:
    """config["a"]["b"] for key "a.b"; `default` when any part is missing."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def adapted_layers(run: RunRecord) -> Any:
    """metrics.json's adapted_layers; older runs: derived from lora.layers ("all" stays)."""
    recorded = (run.metrics or {}).get("adapted_layers")
    if isinstance(recorded, int):
        return recorded
    if run.baseline:
        return 0
    layers = config_value(run.config, "lora.layers")
    return len(layers) if isinstance(layers, list) else layers


def check_group_by(records: list[RunRecord], group_by: tuple[str, ...]) -> None:
    """Each key is model, dataset or a dotted key that at least one run's config holds."""
    if not group_by:
        raise UserError("group-by needs at least one key: model, dataset or a dotted config key")
    configs = [r.config for r in records if r.config]
    for key in group_by:
        if key in ("model", "dataset"):
            continue
        if not configs or any(config_value(c, key, _MISSING) is not _MISSING for c in configs):
            continue
        varied = sorted({k for r in records for k in r.params})
        examples = ", ".join(varied[:12]) or "lora.r, training.learning_rate"
        raise UserError(f"unknown group-by key {key!r}: use model, dataset or a dotted config "
                        f"key of these runs, e.g. {examples}")


def available_metrics(finished: list[RunRecord]) -> list[str]:
    return sorted({k for run in finished for k, v in run.chosen_metrics().items()
                   if number(v) is not None})


def check_metric(finished: list[RunRecord], metric: str) -> None:
    if any(metric_value(run, metric) is not None for run in finished):
        return
    known = ", ".join(available_metrics(finished)) or "none"
    raise UserError(f"metric {metric!r} is not recorded by any finished run; the runs record: "
                    f"{known}")


def default_metric(runs: list[RunRecord]) -> str:
    """The metric_for_best most runs share, else the first main metric they record."""
    named = Counter(run.metrics.get("metric_for_best") for run in runs if run.metrics)
    named.pop(None, None)
    if named:
        return named.most_common(1)[0][0]
    recorded = available_metrics(runs)
    return next((m for m in MAIN_METRICS if m in recorded), recorded[0] if recorded else "loss")


def status_counts(records: list[RunRecord]) -> dict[str, int]:
    counts = Counter(r.status for r in records)
    return {status: counts.get(status, 0) for status in (*STATUSES, *sorted(counts))}


def failed_runs(records: list[RunRecord]) -> list[RunRecord]:
    """Failed and killed runs, and finished ones whose metrics could not be read."""
    return sorted((r for r in records if r.status in (FAILED, KILLED)
                   or (r.status == FINISHED and not r.metrics)), key=lambda r: r.name)


def error_line(run: RunRecord) -> str:
    if run.status == FINISHED:
        return "finished, but no metrics were recorded (metrics.json missing or unreadable)"
    return first_line(run.error)


def first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else "(no error recorded)"


# ---------------------------------------------------------------- grouping and ranking


def group_key(run: RunRecord, group_by: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(hashable(group_value(run, key)) for key in group_by)


def group_value(run: RunRecord, key: str) -> Any:
    """model, dataset or a config value; a baseline has no LoRA settings (its lora section
    holds unused defaults), so it gets None for lora.* keys and forms a group of its own."""
    if key in ("model", "dataset"):
        return getattr(run, key)
    if run.baseline and key.startswith("lora."):
        return None
    return config_value(run.config, key)


def hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value) if isinstance(value, dict) else value


def sort_key(value: tuple[Any, ...]) -> tuple[tuple[int, float, str], ...]:
    """Numbers in numeric order, then text (None included) in alphabetical order."""
    return tuple((0, float(v), "") if number(v) is not None else (1, 0.0, str(v))
                 for v in value)


def group_parts(group_by: tuple[str, ...], key: tuple[Any, ...]) -> list[str]:
    """model and dataset by value, a config key as name=value: minilm, mrpc, lora.r=8."""
    return [(DASH if value is None else str(value)) if name in ("model", "dataset")
            else f"{name}={DASH if value is None else value}" for name, value in zip(group_by, key)]


def slugify(parts: Iterable[str]) -> str:
    """A file-name-safe group name: minilm_mrpc, mrpc_r8 (for lora.r=8)."""
    short = [part.rsplit(".", 1)[-1].replace("=", "").replace(DASH, "none") for part in parts]
    return re.sub(r"[^A-Za-z0-9.-]+", "_", "_".join(short)).strip("_.") or "all"


def build_groups(finished: list[RunRecord], metric: str | None,
                 group_by: tuple[str, ...]) -> list[Group]:
    by_key: dict[tuple[Any, ...], list[RunRecord]] = {}
    for run in finished:
        by_key.setdefault(group_key(run, group_by), []).append(run)
    groups, slugs = [], set()
    for key in sorted(by_key, key=sort_key):
        runs = by_key[key]
        parts = group_parts(group_by, key)
        group_metric = metric or default_metric(runs)
        group = Group(key=key, fields=dict(zip(group_by, key)), label=" / ".join(parts),
                      slug=unique(slugify(parts), slugs), metric=group_metric,
                      configs=configurations(key, runs, group_metric))
        groups.append(group)
    baselines = [c for g in groups for c in g.configs if c.baseline]
    for group in groups:
        set_gains(group, baselines)
        group.best = best_entry(group)
    return groups


def unique(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate


def configurations(key: tuple[Any, ...], runs: list[RunRecord], metric: str
                   ) -> list[Configuration]:
    by_variant: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.seed, r.name)):
        by_variant.setdefault(run.variant, []).append(run)
    configs = [Configuration(key, v, rs, metric) for v, rs in by_variant.items()]
    return rank(configs, greater_is_better(metric))


def rank(configs: list[Configuration], greater: bool) -> list[Configuration]:
    """Best mean first; configurations without the metric last; ties: fewer parameters."""
    def key(c: Configuration) -> tuple[Any, ...]:
        mean = c.mean
        score = (-mean if greater else mean) if mean is not None else math.inf
        return (mean is None, score, c.trainable or 0, c.variant)
    return sorted(configs, key=key)


def set_gains(group: Group, baselines: list[Configuration]) -> None:
    """Gain over the baseline of the same model x dataset (preferring one in this group)."""
    sign = 1.0 if group.greater else -1.0
    for config in group.configs:
        reference = reference_baseline(group, config, baselines)
        if reference is None:
            continue
        if reference.variant not in {r.variant for r in group.references}:
            group.references.append(reference)
        if config.baseline:
            continue
        config.baseline_mean = reference.mean
        if config.mean is not None:
            config.gain = sign * (config.mean - reference.mean)


def reference_baseline(group: Group, config: Configuration,
                       baselines: list[Configuration]) -> Configuration | None:
    """The baseline configuration `config` is compared with, read with the group's metric."""
    same = [b for b in baselines if (b.model, b.dataset) == (config.model, config.dataset)]
    inside = [b for b in same if b.group == group.key] or same
    candidates = [Configuration(b.group, b.variant, b.runs, group.metric) for b in inside]
    candidates = [c for c in candidates if c.mean is not None]
    # several baseline variants (e.g. one per learning rate): compare with the strongest
    return rank(candidates, group.greater)[0] if candidates else None


# ---------------------------------------------------------------- best.json


def best_entry(group: Group) -> dict[str, Any] | None:
    ranked = [c for c in group.configs if c.mean is not None]
    if not ranked:
        return None
    best = ranked[0]
    cheaper = practical_pick(best, ranked[1:])
    return {**group.fields, "variant": best.variant, "metric": group.metric,
            "greater_is_better": group.greater, "mean": best.mean, "std": best.std,
            "seeds": best.seeds, "gain_over_baseline": best.gain,
            "baseline_mean": best.baseline_mean, "is_baseline": best.baseline,
            "trainable_parameters": best.trainable,
            "run_ids": [run.id for run in best.runs], "runs": [run.name for run in best.runs],
            "practical_pick": cheaper.variant if cheaper else best.variant,
            "why": why(group, best, ranked[1:], cheaper)}


def practical_pick(best: Configuration, others: list[Configuration]) -> Configuration | None:
    """The cheapest configuration whose mean is within one std (the best's, over seeds) of
    the best mean and that has fewer trainable parameters; None when there is none."""
    if best.std is None or best.trainable is None:
        return None
    close = [c for c in others if c.trainable is not None and c.trainable < best.trainable
             and abs(best.mean - c.mean) <= best.std]
    sign = -1.0 if greater_is_better(best.metric) else 1.0
    return min(close, key=lambda c: (c.trainable, sign * c.mean)) if close else None


def name_of(config: Configuration) -> str:
    return "the no-LoRA baseline" if config.baseline else config.variant


def why(group: Group, best: Configuration, others: list[Configuration],
        cheaper: Configuration | None) -> str:
    parts = [headline(group, best), versus_baseline(group, best)]
    if others:
        parts.append(runner_up(group, best, others[0]))
    if cheaper is not None:
        cost = f"fewer trainable parameters ({cheaper.trainable:,} vs {best.trainable:,})"
        if cheaper is others[0]:
            parts[-1] += f", with {cost}: the cheaper one is the practical pick"
        else:
            parts.append(f"{name_of(cheaper)} ({cheaper.mean:.3f}) is within one std with "
                         f"{cost}: the cheaper one is the practical pick")
    return "; ".join(p for p in parts if p)


def headline(group: Group, best: Configuration) -> str:
    word = "highest" if group.greater else "lowest"
    n = len(best.values)
    spread = f" ± {best.std:.3f}" if best.std is not None else ", one seed: no std"
    return f"{word} mean {group.metric} over {n} seed{'s' * (n != 1)} ({best.mean:.3f}{spread})"


def versus_baseline(group: Group, best: Configuration) -> str:
    if best.baseline:
        return "the no-LoRA baseline itself: no LoRA configuration beats it"
    if best.gain is None:
        return "no finished no-LoRA baseline to compare with"
    if group.greater:
        return f"{best.gain:+.3f} over the no-LoRA baseline ({best.baseline_mean:.3f})"
    direction = "lower" if best.gain >= 0 else "higher"
    return (f"{abs(best.gain):.3f} {direction} {group.metric} than the no-LoRA baseline "
            f"({best.baseline_mean:.3f})")


def runner_up(group: Group, best: Configuration, second: Configuration) -> str:
    gap = abs(best.mean - second.mean)
    direction = "lower" if group.greater else "higher"
    text = f"2nd best {name_of(second)} is {gap:.3f} {direction}"
    if best.std is None:
        return text
    return text + (", within one std" if gap <= best.std else ", more than one std behind")


# ---------------------------------------------------------------- summary rows and tables


def summary_row(group: Group, config: Configuration, group_by: tuple[str, ...]
                ) -> dict[str, Any]:
    row: dict[str, Any] = {key: group.fields[key] for key in group_by}
    row.update(variant=config.variant, baseline=config.baseline, r=config.r,
               alpha=config.alpha, adapted_layers=config.adapted_layers, seeds=config.seeds,
               metric=group.metric, mean=config.mean, std=config.std)
    for name in group.extra_metrics():
        row[name] = config.mean_of(lambda run, name=name: metric_value(run, name))
    row["test_mean"] = config.mean_of(lambda run: test_value(run, group.metric))
    row["gain_over_baseline"] = config.gain
    row["trainable_parameters"] = config.trainable
    row["train_seconds"] = config.mean_of(lambda run: run_number(run, "train_seconds"))
    row["run_ids"] = " ".join(run.id for run in config.runs)
    return row


def csv_text(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    if not any(row.get("test_mean") is not None for row in rows):
        columns.remove("test_mean")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


def write_tables(groups: list[Group], rows: list[dict[str, Any]], group_by: tuple[str, ...],
                 out_dir: Path) -> list[Path]:
    atomic_write_text(out_dir / "summary.csv", csv_text(rows))
    atomic_write_text(out_dir / "summary.md", markdown(groups, group_by))
    atomic_write_json(out_dir / "best.json", {
        "group_by": list(group_by), "groups": [g.best for g in groups if g.best]})
    return [out_dir / name for name in TABLE_FILES]


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if value == value else DASH
    return str(value)


def fmt_setting(value: Any) -> str:
    """A hyper-parameter as written in a config: 32.0 -> 32, 0.0005 -> 0.0005."""
    return f"{value:g}" if isinstance(value, float) else fmt(value)


def mean_std(config: Configuration) -> str:
    if config.mean is None:
        return DASH
    return f"{config.mean:.4f}" + (f" ± {config.std:.4f}" if config.std is not None else "")


def table(group: Group) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, formatted cells and which columns are numeric: shared by md, txt and html."""
    headers = ["variant", "r", "alpha", "adapted layers", "seeds", f"{group.metric} (mean ± std)",
               *group.extra_metrics(), *([f"test {group.metric}"] if group.has_test() else []),
               "gain", "trainable params", "train s"]
    numeric = [False, *[True] * (len(headers) - 1)]
    return headers, [table_cells(group, config) for config in group.configs], numeric


def table_cells(group: Group, config: Configuration) -> list[str]:
    cells = [config.variant + (" (baseline)" if config.baseline else ""),
             fmt_setting(config.r), fmt_setting(config.alpha),
             fmt_setting(config.adapted_layers), fmt(config.seeds), mean_std(config)]
    cells += [fmt(config.mean_of(lambda run, m=m: metric_value(run, m)))
              for m in group.extra_metrics()]
    if group.has_test():
        cells.append(fmt(config.mean_of(lambda run: test_value(run, group.metric))))
    seconds = config.mean_of(lambda run: run_number(run, "train_seconds"))
    gain = DASH if config.gain is None else f"{config.gain:+.4f}"
    return [*cells, gain, fmt(config.trainable), fmt(seconds, 1)]


def direction_note(group: Group) -> str:
    return f"{group.metric}: {'higher' if group.greater else 'lower'} is better"


def markdown(groups: list[Group], group_by: tuple[str, ...]) -> str:
    lines = ["# Sweep summary", "",
             f"One row per configuration (grouped by {', '.join(group_by)}), best first. "
             f"Metric columns: {STD_NOTE}; the other metric columns are means over seeds. "
             f"Validation metrics of the saved weights (best or last). {GAIN_NOTE}.", ""]
    for group in groups:
        headers, rows, numeric = table(group)
        lines += [f"## {group.label}", "", f"{direction_note(group)}.", "",
                  "| " + " | ".join(headers) + " |",
                  "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        if group.best:
            lines += ["", f"**Best: {group.best['variant']}** — {group.best['why']}."]
        lines.append("")
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list[str]], numeric: list[bool]) -> list[str]:
    widths = [max(len(x) for x in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w)
                         for c, w, n in zip(cells, widths, numeric)).rstrip()
    return [line(headers), "  ".join("-" * w for w in widths), *map(line, rows)]


def sweep_summary(groups: list[Group], counts: dict[str, int], failures: list[RunRecord],
                  group_by: tuple[str, ...], generated: str) -> str:
    total = sum(counts.values())
    lines = [f"sweep summary ({generated})",
             f"{total} runs: " + ", ".join(f"{n} {status}" for status, n in counts.items()),
             f"grouped by {', '.join(group_by)}; {STD_NOTE}", f"{GAIN_NOTE}", ""]
    if not groups:
        lines += ["no finished runs: no tables or plots", ""]
    for group in groups:
        headers, rows, numeric = table(group)
        lines += [f"== {group.label} ({direction_note(group)}) ==",
                  *text_table(["#", *headers], [[str(i), *row] for i, row in
                                                enumerate(rows, 1)], [True, *numeric])]
        if group.best:
            lines.append(f"best: {group.best['variant']}: {group.best['why']}")
        lines.append("")
    lines.append(f"runs without results (failed, killed, unreadable): {len(failures)}")
    lines += [f"  {run.name} [{run.status}]: {error_line(run)}" for run in failures]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- report.html


def html_page(groups: list[Group], counts: dict[str, int], failures: list[RunRecord],
              group_by: tuple[str, ...], generated: str,
              images: dict[str, list[Path]]) -> str:
    sections = []
    for group in groups:
        headers, rows, numeric = table(group)
        best = group.best
        sections.append(report_html.Section(
            title=group.label, note=f"{direction_note(group)}; {STD_NOTE}",
            headers=headers, rows=rows, numeric=numeric,
            best_row=0 if best else None,
            why=f"Best: {best['variant']} — {best['why']}." if best else "",
            images=images.get(group.slug, [])))
    summary = [f"{sum(counts.values())} runs: "
               + ", ".join(f"{n} {status}" for status, n in counts.items()),
               f"Grouped by {', '.join(group_by)}. {GAIN_NOTE}."]
    failed = [(run.name, run.status, error_line(run)) for run in failures]
    return report_html.render(title="LoRA sweep comparison", generated=generated,
                              summary=summary, sections=sections, failures=failed)
