"""The comparison report's ranking: configurations ranked within their group, compared with
the no-LoRA baseline, and the best chosen with a reason (the groups and configurations
themselves: loralab.experiments.report_model)."""

from __future__ import annotations

import math
from typing import Any

from loralab.experiments.records import RunRecord
from loralab.experiments.report_model import (
    Configuration,
    Group,
    available_metrics,
    default_metric,
    group_key,
    group_parts,
    slugify,
    sort_key,
    unique,
)
from loralab.metrics.metric_registry import find_metric, greater_is_better


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
