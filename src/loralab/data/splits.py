"""Seeded validation hold-out and seeded sub-sampling; both keep rows in their file order."""

from __future__ import annotations

import random
from typing import Any

from loralab.config import DataConfig
from loralab.errors import DataError

Records = list[dict[str, Any]]


def holdout(records: Records, fraction: float, seed: int) -> tuple[Records, Records]:
    """(train, validation): round(fraction * n) rows, at least 1, chosen by a seeded shuffle.

    Records with a `_group` (e.g. a SQuAD article) go to one side together; see holdout_groups.
    """
    n = len(records)
    if n < 2:
        raise DataError(f"cannot split a validation set off {n} training row(s); give "
                        "data.validation")
    n_val = min(max(1, round(n * fraction)), n - 1)
    if any(r.get("_group") is not None for r in records):
        chosen = holdout_groups(records, n_val, seed)
    else:
        order = list(range(n))
        random.Random(seed).shuffle(order)
        chosen = set(order[:n_val])
    train = [r for i, r in enumerate(records) if i not in chosen]
    validation = [r for i, r in enumerate(records) if i in chosen]
    return train, validation


def holdout_groups(records: Records, target: int, seed: int) -> set[int]:
    """Indices of whole groups holding about `target` rows, the groups taken in seeded order.

    A record without `_group` is a group of its own. Going through the shuffled groups, a group
    is taken when it brings the count closer to `target` and leaves train rows; at least one
    group is taken, so validation is never empty.
    """
    groups: dict[Any, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(_group_key(record, i), []).append(i)
    if len(groups) < 2:
        raise DataError(f"cannot split a validation set off {len(records)} training rows: they "
                        "are all one group (_group), which is never split; give data.validation")
    members = list(groups.values())
    random.Random(seed).shuffle(members)
    chosen: list[int] = []
    for rows in members:
        if len(chosen) + len(rows) / 2 < target and len(chosen) + len(rows) < len(records):
            chosen.extend(rows)
    if not chosen:
        chosen = min(members, key=len)
    return set(chosen)


def _group_key(record: dict[str, Any], index: int) -> tuple[str, Any]:
    group = record.get("_group")
    if group is None:
        return ("row", index)
    try:
        hash(group)
    except TypeError:
        group = repr(group)
    return ("group", group)


def sample(records: Records, limit: int | None, seed: int) -> Records:
    """`limit` rows chosen by a seeded shuffle (not the first ones), in their original order."""
    if limit is None or limit >= len(records):
        return records
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:limit])]


def finish_splits(splits: dict[str, Records], cfg: DataConfig) -> dict[str, Records]:
    """Hold out validation when there is none, then apply max_train/max_eval_samples."""
    train = splits["train"]
    validation = splits.get("validation")
    if validation is None:
        train, validation = holdout(train, cfg.validation_fraction, cfg.split_seed)
    out = {"train": sample(train, cfg.max_train_samples, cfg.split_seed),
           "validation": sample(validation, cfg.max_eval_samples, cfg.split_seed)}
    if "test" in splits:
        out["test"] = sample(splits["test"], cfg.max_eval_samples, cfg.split_seed)
    return out
