"""What a task needs from the data layer: the shape of its records (`RecordSpec`).

The data layer never asks which task it serves; a task hands it a spec:
    sentences     {"text", "text_pair", "label", "_src"}; labels are class names, or numbers
                  with `numeric_labels` (regression)
    tagged_words  {"tokens", "tags", "_src"} with BIO tags
    fields        every field of a row as it is, plus `_src` (prompt / response records)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RecordKind = Literal["sentences", "tagged_words", "fields"]

KIND_TEXT = {
    "sentences": "rows with a text (and text_pair) column and a label",
    "tagged_words": "words with BIO tags",
    "fields": "prompt/response records",
}


@dataclass(frozen=True)
class RecordSpec:
    task: str                       # the task's name, for messages only
    kind: RecordKind
    numeric_labels: bool = False    # sentences whose label is a number (regression)

    def describe(self) -> str:
        if self.kind == "sentences" and self.numeric_labels:
            return "rows with a text (and text_pair) column and a numeric label"
        return KIND_TEXT[self.kind]
