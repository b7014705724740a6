"""A synthetic multiple-choice dataset in three subjects, for trying subject "specialists"
(one adapter per category) offline: `loralab data synth multiple-choice`.

Rows: {"id", "category", "question", "options": [4 strings], "answer": "A".."D"}, the
multiple_choice format's fields. Subjects: arithmetic (sums, products, differences), units
(length, mass, time conversions) and capitals (a fixed table of countries). Deterministic by
seed; the correct option's position is uniform over A-D.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_text

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "Poland": "Warsaw", "Austria": "Vienna", "Hungary": "Budapest",
    "Sweden": "Stockholm", "Norway": "Oslo", "Finland": "Helsinki", "Denmark": "Copenhagen",
    "Greece": "Athens", "Ireland": "Dublin", "Japan": "Tokyo", "China": "Beijing",
    "India": "New Delhi", "Egypt": "Cairo", "Kenya": "Nairobi", "Canada": "Ottawa",
    "Mexico": "Mexico City", "Brazil": "Brasilia", "Argentina": "Buenos Aires",
    "Peru": "Lima", "Chile": "Santiago", "Australia": "Canberra", "Turkey": "Ankara",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "Morocco": "Rabat",
}
UNITS = [("kilometres", "metres", 1000), ("metres", "centimetres", 100),
         ("kilograms", "grams", 1000), ("hours", "minutes", 60), ("minutes", "seconds", 60),
         ("days", "hours", 24), ("litres", "millilitres", 1000)]
LETTERS = "ABCD"


def arithmetic(rng: random.Random) -> tuple[str, int, list[int]]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op, value = rng.choice([("+", a + b), ("-", a - b), ("x", a * b)])
    wrong = {value + d for d in (-10, -2, -1, 1, 2, 10)} - {value}
    return f"What is {a} {op} {b}?", value, rng.sample(sorted(wrong), 3)


def units(rng: random.Random) -> tuple[str, int, list[int]]:
    big, small, factor = rng.choice(UNITS)
    amount = rng.randint(2, 12)
    value = amount * factor
    wrong = {amount * f for f in (10, 60, 100, 1000, 24) if f != factor} - {value}
    return f"How many {small} are in {amount} {big}?", value, rng.sample(sorted(wrong), 3)


def capitals(rng: random.Random) -> tuple[str, str, list[str]]:
    country = rng.choice(sorted(CAPITALS))
    value = CAPITALS[country]
    wrong = rng.sample(sorted(set(CAPITALS.values()) - {value}), 3)
    return f"What is the capital of {country}?", value, wrong


SUBJECTS = {"arithmetic": arithmetic, "units": units, "capitals": capitals}


def make_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        category = rng.choice(sorted(SUBJECTS))
        question, value, wrong = SUBJECTS[category](rng)
        if question in seen and len(seen) < n * 4:
            continue
        seen.add(question)
        options = [str(w) for w in wrong]
        position = rng.randrange(4)
        options.insert(position, str(value))
        rows.append({"id": f"mc-{len(rows):05d}", "category": category, "question": question,
                     "options": options, "answer": LETTERS[position]})
    return rows


def write_multiple_choice_dataset(out_dir: Path, n: int, seed: int,
                                  eval_fraction: float = 0.2) -> dict[str, Any]:
    """train.jsonl and eval.jsonl (written atomically); returns paths and row counts."""
    import json

    rows = make_rows(n, seed)
    n_eval = min(n - 1, max(1, round(n * eval_fraction)))
    paths = {"train": Path(out_dir) / "train.jsonl", "eval": Path(out_dir) / "eval.jsonl"}
    for name, part in (("eval", rows[:n_eval]), ("train", rows[n_eval:])):
        atomic_write_text(paths[name], "".join(json.dumps(r) + "\n" for r in part))
    return {**paths, "n_train": n - n_eval, "n_eval": n_eval,
            "categories": sorted({r["category"] for r in rows})}
