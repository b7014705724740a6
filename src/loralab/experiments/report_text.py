"""The comparison report as text: summary.csv rows, summary.md and sweep_summary.txt."""

from __future__ import annotations

import csv
import io
from typing import Any

from loralab.experiments.records import RunRecord
from loralab.experiments.report_model import (
    DASH,
    Configuration,
    Group,
    error_line,
    metric_value,
    run_number,
    test_value,
)

STD_NOTE = ("mean ± sample std over seeds (ddof=1); the std is blank for a single seed")
GAIN_NOTE = ("gain = mean minus the mean of the no-LoRA baseline of the same model x dataset, "
             "sign-flipped for lower-is-better metrics (loss, mse, perplexity, ...), so a "
             "positive gain always means better than the baseline")


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
