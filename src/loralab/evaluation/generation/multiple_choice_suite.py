"""Multiple-choice metrics: find the answer letter in free text or chain-of-thought.

Reference per example: {"answer": "C" (or a 0-based index), "options": [text, ...],
"category": optional}. Only letters valid for the question's number of options count
(A.. for len(options), else `num_options` in the reference, else 4).

Extraction order (first rule that finds a valid letter wins):
    1. an explicit statement, the last one in the text: "the answer is (C)", "Answer: C",
       "final answer: **D**", "the answer is option B";
    2. a lone letter opening the text: "C.", "(c)", "**C**", "C) because ...", "B";
    3. the whole text is one option's text;
    4. the last standalone option letter anywhere ("I think it's B" -> B), where a capital A or I
       followed by a lower-case word ("A cat", "I think") is read as a word, not a letter;
    5. option texts (of 4 characters or more) quoted in the text: the one that occurs last,
       the longest on a tie.
Lower-case letters count only when marked as letters: "(c)", "**c**", or followed by
punctuation or the end ("c.", "c)"), so "the answer is a bit unclear" finds nothing.

Metrics (fractions 0..1): n (count), mc_accuracy, mc_extraction_rate (a letter was found),
mc_accuracy/<category> for each category present.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

_LETTER = (
    r"(?:[\(\[]\s*(?P<wrapped>[A-Za-z])\s*[\)\]]"  # (C) [c]
    r"|\*\*\s*\(?(?P<bold>[A-Za-z])\)?\s*\*\*"  # **C** **(C)**
    r"|(?P<upper>[A-Z])(?![\w'’])"  # C, but not A's or Apple
    r"|(?P<lower>[a-z])(?=\s*(?:[.):,;!?]|$)))"  # c. c) c<end>
)
_EXPLICIT = re.compile(
    r"\b(?i:answer)\**\s*"
    r"(?:(?i:is|would\s+be|will\s+be|should\s+be|must\s+be)\s*)?"
    r"[:=\-–]?\s*\**\s*(?:(?i:option|choice|letter)\s*)?" + _LETTER
)
_OPENING = re.compile(
    r"^\s*(?:[\(\[]\s*(?P<wrapped>[A-Za-z])\s*[\)\]]"
    r"|\*\*\s*\(?(?P<bold>[A-Za-z])\)?\s*\*\*"
    r"|(?P<plain>[A-Za-z])(?=\s*(?:[.):,;\-–]|$)))"
)
_STANDALONE = re.compile(r"(?<![\w'’])" + _LETTER)
_WORD_AFTER = re.compile(r"\s+([a-z]+)")
# Capital A / I followed by one of these words is still read as a letter ("A is correct").
_LETTER_VERBS = frozenset("is was seems appears looks fits matches and or".split())
# Shorter option texts ("no", "yes", "4") turn up in reasoning by chance: only a whole answer
# equal to them counts.
_MIN_QUOTED_OPTION = 4


def valid_letters(reference: Mapping[str, Any]) -> str:
    options = reference.get("options")
    count = len(options) if options else int(reference.get("num_options", 4))
    return string.ascii_uppercase[:count]


def _letter_of(match: re.Match[str]) -> str:
    return next(group for group in match.groups() if group is not None).upper()


def _reads_as_word(text: str, match: re.Match[str]) -> bool:
    """True for the article "A" or the pronoun "I" in running text ("A cat", "I think")."""
    if match.group("upper") not in ("A", "I"):
        return False
    following = _WORD_AFTER.match(text, match.end())
    return following is not None and following.group(1) not in _LETTER_VERBS


def _normalise_text(text: str) -> str:
    return " ".join(text.casefold().split()).strip(string.punctuation + " ")


def _match_option_text(text: str, options: Sequence[str], letters: str,
                       whole_only: bool) -> str | None:
    said = _normalise_text(text)
    best: tuple[int, int, str] | None = None
    for letter, option in zip(letters, options, strict=False):
        wanted = _normalise_text(str(option))
        if not wanted:
            continue
        if whole_only:
            if said == wanted:
                return letter
            continue
        if len(wanted) < _MIN_QUOTED_OPTION:
            continue
        hits = list(re.finditer(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)", said))
        if hits:
            candidate = (hits[-1].end(), len(wanted), letter)
            best = candidate if best is None or candidate > best else best
    return best[2] if best else None


def extract_choice(text: str, letters: str, options: Sequence[str] = ()) -> str | None:
    """The chosen option letter (upper case) among `letters`, or None; rules in the module doc."""
    explicit = [letter for letter in map(_letter_of, _EXPLICIT.finditer(text))
                if letter in letters]
    if explicit:
        return explicit[-1]
    opening = _OPENING.match(text)
    if opening and _letter_of(opening) in letters:
        return _letter_of(opening)
    whole = _match_option_text(text, options, letters, whole_only=True)
    if whole:
        return whole
    standalone = [_letter_of(m) for m in _STANDALONE.finditer(text)
                  if _letter_of(m) in letters and not _reads_as_word(text, m)]
    if standalone:
        return standalone[-1]
    return _match_option_text(text, options, letters, whole_only=False)


def gold_letter(answer: Any) -> str:
    """The gold answer as a letter: "c" -> "C", 2 -> "C"."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        return string.ascii_uppercase[answer]
    return str(answer).strip().upper()


def evaluate(predictions: Sequence[str], references: Sequence[Mapping[str, Any]]
             ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-example details) of generated answers against gold letters."""
    details = []
    for prediction, reference in zip(predictions, references, strict=True):
        extracted = extract_choice(prediction, valid_letters(reference),
                                   reference.get("options") or ())
        gold = gold_letter(reference["answer"])
        details.append({"extracted": extracted, "gold": gold, "correct": extracted == gold,
                        "category": reference.get("category")})
    return _aggregate(details), details


def _aggregate(details: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    n = len(details)
    metrics = {
        "n": float(n),
        "mc_accuracy": sum(d["correct"] for d in details) / n if n else 0.0,
        "mc_extraction_rate": sum(d["extracted"] is not None for d in details) / n if n else 0.0,
    }
    by_category: dict[str, list[bool]] = defaultdict(list)
    for detail in details:
        if detail["category"] is not None:
            by_category[str(detail["category"])].append(detail["correct"])
    for category in sorted(by_category):
        outcomes = by_category[category]
        metrics[f"mc_accuracy/{category}"] = sum(outcomes) / len(outcomes)
    return metrics
