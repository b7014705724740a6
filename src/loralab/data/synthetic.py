"""A small synthetic intent dataset for the demo when the shared data sets are not there."""

from __future__ import annotations

import json
import random
from pathlib import Path

INTENTS: dict[str, tuple[str, ...]] = {
    "book_flight": ("book a flight to {city}", "i need a plane ticket to {city} {when}",
                    "find me flights to {city}", "can you get me on a flight to {city} {when}"),
    "weather": ("what's the weather in {city} {when}", "will it rain in {city} {when}",
                "how hot is it in {city}", "do i need an umbrella in {city} {when}"),
    "play_music": ("play some {genre}", "put on {genre} music", "i want to hear {genre}",
                   "start a {genre} playlist"),
    "set_alarm": ("set an alarm for {time}", "wake me up at {time}", "alarm at {time} please",
                  "remind me at {time} to get up"),
    "restaurant": ("find a {food} restaurant in {city}", "book a table for {food} {when}",
                   "where can i eat {food} near me", "reserve dinner at a {food} place"),
    "translate": ("how do you say {word} in {language}", "translate {word} to {language}",
                  "what is {word} in {language}", "say {word} in {language}"),
}
FILLERS: dict[str, tuple[str, ...]] = {
    "city": ("paris", "tokyo", "new york", "berlin", "lima", "cairo", "oslo", "sydney"),
    "when": ("today", "tomorrow", "on friday", "next week", "tonight", "this weekend"),
    "genre": ("jazz", "rock", "classical", "hip hop", "country", "techno"),
    "time": ("6 am", "7:30", "noon", "5 pm", "midnight", "8 o'clock"),
    "food": ("thai", "italian", "sushi", "mexican", "indian", "vegan"),
    "word": ("hello", "thank you", "goodbye", "cheese", "friend", "water"),
    "language": ("french", "spanish", "german", "italian", "japanese", "korean"),
}


def intent_examples(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` {"text", "label"} rows, intents in turn, templates and fillers drawn with `seed`."""
    rng = random.Random(seed)
    names = list(INTENTS)
    rows = []
    for i in range(n):
        label = names[i % len(names)]
        template = rng.choice(INTENTS[label])
        text = template.format(**{k: rng.choice(v) for k, v in FILLERS.items()})
        rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


def write_intent_dataset(folder: str | Path, n: int = 1200, seed: int = 0,
                         validation_fraction: float = 0.2) -> tuple[Path, Path]:
    """Write train.jsonl and validation.jsonl ({"text", "label"}) under `folder`; n rows in all.

    Returns (train path, validation path). Same arguments, same files.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = intent_examples(n, seed)
    n_val = max(1, round(n * validation_fraction))
    paths = (folder / "train.jsonl", folder / "validation.jsonl")
    for path, part in zip(paths, (rows[n_val:], rows[:n_val]), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return paths
