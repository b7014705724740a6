"""Token classification: word-level BIO tags aligned to sub-tokens (first sub-token of each
word carries the tag, the others are ignored), scored at entity level with seqeval."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import DataCollatorForTokenClassification

from loralab.config import Config
from loralab.data.spans import split_words
from loralab.data.spec import RecordSpec
from loralab.errors import DataError
from loralab.metrics.scores import entity_metrics
from loralab.tasks.encoder import EncoderTask
from loralab.tasks.labels import label_entropy, row_error

IGNORE = -100


def bio_label_names(train: list[dict]) -> list[str]:
    """"O" first, then B-/I- for each entity type in alphabetical order."""
    types = sorted({t[2:] for r in train for t in r["tags"] if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def tag_spans(words: list[tuple[str, int, int]], tags: list[str],
              scores: list[float]) -> list[dict[str, Any]]:
    """Group word-level BIO tags into entity spans with character offsets."""
    spans: list[dict[str, Any]] = []
    for (_word, start, end), tag, score in zip(words, tags, scores):
        kind = tag[2:] if tag != "O" else None
        extends = spans and tag.startswith("I-") and spans[-1]["entity"] == kind \
            and spans[-1]["_open"]
        if kind is None:
            if spans:
                spans[-1]["_open"] = False
        elif extends:
            spans[-1].update(end=end, _scores=spans[-1]["_scores"] + [score])
        else:
            if spans:
                spans[-1]["_open"] = False
            spans.append({"entity": kind, "start": start, "end": end, "_scores": [score],
                          "_open": True})
    for span in spans:
        span.pop("_open")
        scores_ = span.pop("_scores")
        span["score"] = round(sum(scores_) / len(scores_), 6)
    return spans


class TokenClassificationTask(EncoderTask):
    name = "token_classification"
    default_metric = "entity_f1"
    auto_model_class = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    records = RecordSpec(name, "tagged_words")

    def prior_loss(self, encoded):
        return label_entropy([t for f in encoded for t in f.get("labels", []) if t != IGNORE])

    def metric_names(self, config, labels):
        return ["entity_f1", "entity_precision", "entity_recall", "token_accuracy", "loss"]

    def prepare_inputs(self, records, config):
        """Raw text is split into words by the same rule as span training data."""
        out = []
        for record in records:
            if record.get("tokens"):
                out.append(record)
                continue
            words = split_words(record["text"])
            out.append({**record, "tokens": [w for w, _, _ in words], "_words": words})
        return out

    def label_names(self, train: list[dict], config: Config) -> list[str]:
        names = config.model.labels or bio_label_names(train)
        if len(names) < 2:
            raise DataError("the training data has no entity tags besides 'O'")
        return names

    def encode(self, records, tokenizer, labels, max_length):
        enc = tokenizer([r["tokens"] for r in records], is_split_into_words=True,
                        truncation=True, max_length=max_length)
        index = {name: i for i, name in enumerate(labels)}
        features = []
        for i, record in enumerate(records):
            feature = {k: enc[k][i] for k in enc.keys()}
            word_ids = enc.word_ids(i)
            tags = record.get("tags")
            if tags is not None:
                unknown = next((t for t in tags if t not in index), None)
                if unknown is not None:
                    raise row_error(record, "tags", f"tag {unknown!r} is not one of the "
                                    f"labels ({', '.join(labels[:12])})")
                feature["labels"] = first_subtoken_labels(word_ids, [index[t] for t in tags])
                feature["_gold"] = list(tags)
            else:
                feature["labels"] = first_subtoken_labels(word_ids, [0] * len(record["tokens"]))
            features.append(feature)
        return features

    def collator(self, tokenizer):
        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)

    def loss(self, logits, labels):
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                               ignore_index=IGNORE)

    def example_losses(self, logits, labels):
        """Each example's mean loss over its labelled (first sub-token) positions."""
        nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE,
                              reduction="none")
        counts = (labels != IGNORE).sum(-1).clamp(min=1)
        return (nll.sum(-1) / counts).tolist()

    def correct(self, logits, labels, tolerance):
        mask = labels != IGNORE
        right = (logits.argmax(-1) == labels) | ~mask
        return right.all(dim=-1)

    def gather(self, logits, batch):
        pred = logits.argmax(-1)
        mask = batch["labels"] != IGNORE
        return [pred[i][mask[i]].tolist() for i in range(pred.shape[0])]

    def metrics(self, predictions, encoded, labels):
        gold = [f["_gold"] for f in encoded]
        predicted = [pad_tags([labels[i] for i in ids], len(g)) for ids, g in
                     zip(predictions, gold)]
        return entity_metrics(predicted, gold)

    def baseline_metrics(self, encoded, labels):
        gold = [f["_gold"] for f in encoded]
        return entity_metrics([["O"] * len(g) for g in gold], gold)

    def render(self, logits, record, feature, labels):
        mask = torch.tensor(feature["labels"]) != IGNORE
        probs = torch.softmax(logits.float()[: mask.shape[0]][mask], -1)
        best = probs.argmax(-1).tolist()
        tags = [labels[i] for i in best]
        scores = [float(probs[j, k]) for j, k in enumerate(best)]
        words = record.get("_words") or [(w, -1, -1) for w in record["tokens"]]
        entities = tag_spans(words[: len(tags)], tags, scores)
        text = record.get("text")
        for span in entities:
            if text is not None and span["start"] >= 0:
                span["text"] = text[span["start"]:span["end"]]
        return {"entities": entities, "tags": tags}

    def agreement(self, reference, candidate, labels):
        """Entity-level: F1 of the copy's entity spans against the reference's (100 when
        neither finds an entity); word level: share of words given the same tag."""
        ref_spans, cand_spans, same, words = set(), set(), 0, 0
        for i, (ref, cand) in enumerate(zip(reference, candidate)):
            ref_spans |= {(i, *span) for span in entity_spans([labels[t] for t in ref])}
            cand_spans |= {(i, *span) for span in entity_spans([labels[t] for t in cand])}
            same += sum(r == c for r, c in zip(ref, cand))
            words += max(len(ref), len(cand))
        total = len(ref_spans) + len(cand_spans)
        entity = 100.0 if total == 0 else 200.0 * len(ref_spans & cand_spans) / total
        return {"entity_agreement": entity, "label_agreement": 100.0 * same / max(words, 1)}


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of each BIO entity; an I- tag after O or another type
    starts an entity (conlleval's reading)."""
    spans: list[tuple[str, int, int]] = []
    for i, tag in enumerate(tags):
        kind = tag[2:] if tag != "O" else None
        if kind is None:
            continue
        if tag.startswith("I-") and spans and spans[-1][0] == kind and spans[-1][2] == i - 1:
            spans[-1] = (kind, spans[-1][1], i)
        else:
            spans.append((kind, i, i))
    return spans


def first_subtoken_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    out, previous = [], None
    for wid in word_ids:
        out.append(word_labels[wid] if wid is not None and wid != previous else IGNORE)
        previous = wid
    return out


def pad_tags(tags: list[str], length: int) -> list[str]:
    """Words cut off by max_length count as predicted "O" (so truncation costs recall)."""
    return tags[:length] + ["O"] * (length - len(tags))
