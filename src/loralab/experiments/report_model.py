"""The comparison report's model: runs grouped, configurations aggregated over seeds,
ranked, compared with the no-LoRA baseline, and the best chosen with a reason."""

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
from loralab.metrics.registry import find_metric, greater_is_better

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


def build_groups(finished: list[RunRecord], metric: str | None,
                 group_by: tuple[str, ...]) -> list[Group]:
    by_key: dict[tuple[Any, ...], list[RunRecord]] = {}
    for run in finished:
        by_key.setdefault(group_key(run, group_by), []).append(run)
    groups, slugs = [], set()
    for key in sorted(by_key, key=sort_key):
        runs = by_key[key]
        parts = group_parts(group_by, key)
        group_metric = (find_metric(metric, available_metrics(runs)) or metric) if metric \
            else default_metric(runs)
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
