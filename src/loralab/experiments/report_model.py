"""The comparison report's model: runs grouped, configurations aggregated over seeds, and the
values read from run records (ranking and the best's reason: loralab.experiments.report_ranking)."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from loralab.errors import UserError
from loralab.experiments.records import FAILED, FINISHED, KILLED, PENDING, RUNNING, RunRecord
from loralab.metrics.metric_registry import find_metric, greater_is_better

# metrics shown as extra mean columns, in this order, when the group's runs record them
MAIN_METRICS = ("accuracy", "f1_binary", "f1_macro", "f1_micro", "mcc", "entity_f1",
                "entity_precision", "entity_recall", "pearson", "spearman", "mse")
STATUSES = (FINISHED, FAILED, KILLED, RUNNING, PENDING)
DASH = "–"


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


# ---------------------------------------------------------------- inputs and checks


def main_metric(groups: list[Group], requested: str | None) -> str:
    if requested:
        return requested
    common = Counter(g.metric for g in groups).most_common(1)
    return common[0][0] if common else ""


def number(value: Any) -> float | None:
    """A finite float, or None for missing, non-numeric, bool or NaN values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def metric_value(run: RunRecord, metric: str) -> float | None:
    return value_of(run.chosen_metrics(), metric)


def test_value(run: RunRecord, metric: str) -> float | None:
    test = (run.metrics or {}).get("test")
    return value_of(test, metric) if isinstance(test, dict) else None


def value_of(metrics: dict[str, Any], metric: str) -> float | None:
    """`metric` (or the specific name its alias stands for) in a metrics dict, as a number."""
    name = find_metric(metric, metrics)
    return number(metrics.get(name)) if name else None


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


def unique(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate
