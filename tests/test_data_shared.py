"""The data loaders on the real public datasets in ../shared/data (skipped when absent)."""

from __future__ import annotations

import json

import pytest

from loralab.config import DataConfig
from loralab.data import load_splits, split_words
from loralab.tasks import get_task

CLS = get_task("sequence_classification").records
REG = get_task("regression").records
TOK = get_task("token_classification").records


@pytest.mark.integration
def test_real_mrpc(shared):
    mrpc = shared / "glue" / "MRPC"
    cfg = DataConfig(train=str(mrpc / "train.tsv"), validation=str(mrpc / "dev.tsv"),
                     test=str(mrpc / "test.tsv"))
    out = load_splits(cfg, CLS)
    assert [len(out[s]) for s in ("train", "validation", "test")] == [3667, 408, 1725]
    assert {r["label"] for r in out["train"] + out["validation"]} == {"0", "1"}
    assert all(r["label"] is None for r in out["test"])
    assert out["validation"][0]["text_pair"].startswith('" The foodservice pie business')
    assert sum('"' in r["text"] + r["text_pair"] for r in out["train"]) > 100


@pytest.mark.integration
def test_real_stsb(shared):
    stsb = shared / "glue" / "STS-B"
    out = load_splits(DataConfig(train=str(stsb / "train.tsv"), validation=str(stsb / "dev.tsv")),
                      REG)
    labels = [r["label"] for r in out["train"]]
    assert len(labels) == 5749 and len(out["validation"]) == 1500
    assert all(isinstance(x, float) and 0.0 <= x <= 5.0 for x in labels)
    assert out["train"][0]["label"] == 5.0 and out["train"][0]["text_pair"]


@pytest.mark.integration
def test_real_conll(shared):
    path = shared / "conll2003" / "conll2003" / "eng.train"
    out = load_splits(DataConfig(train=str(path), validation=str(path.with_suffix(".testa"))),
                      TOK)
    assert len(out["train"]) == 14041 and len(out["validation"]) == 3250
    first = out["train"][0]
    assert first["tokens"][:3] == ["EU", "rejects", "German"]
    assert first["tags"][:3] == ["B-ORG", "O", "B-MISC"]
    kinds = set()
    for record in out["train"]:
        prev = "O"
        for tag in record["tags"]:
            assert tag == "O" or tag[:2] in ("B-", "I-")
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:]
            kinds.add(tag[2:])
            prev = tag
    assert kinds == {"", "PER", "ORG", "LOC", "MISC"}


@pytest.mark.integration
def test_real_presidio(shared):
    path = shared / "presidio_synth" / "data" / "synth_dataset_v2.json"
    out = load_splits(DataConfig(train=str(path), format="presidio"), TOK)
    records = out["train"] + out["validation"]
    assert len(records) == 1500
    by_row = {int(r["_src"].rsplit(":", 1)[1]): r for r in records}
    raw = json.loads(path.read_text(encoding="utf-8"))
    for row in (1, 250, 777, 1500):
        item, record = raw[row - 1], by_row[row]
        words = split_words(item["full_text"])
        assert [w for w, _, _ in words] == record["tokens"]
        span = max(item["spans"], key=lambda s: s["end_position"] - s["start_position"])
        first = next(i for i, (_, s, e) in enumerate(words)
                     if s < span["end_position"] and span["start_position"] < e)
        assert record["tags"][first] == "B-" + span["entity_type"]
    assert by_row[1]["tags"][by_row[1]["tokens"].index("Persint")] == "B-ORGANIZATION"


@pytest.mark.integration
def test_real_clinc(shared):
    path = shared / "clinc150" / "data" / "data_full.json"
    out = load_splits(DataConfig(train=str(path), format="clinc"), CLS)
    assert [len(out[s]) for s in ("train", "validation", "test")] == [15100, 3100, 5500]
    assert len({r["label"] for r in out["train"]}) == 151
    sampled = load_splits(DataConfig(train=str(path), format="clinc", max_train_samples=300),
                          CLS)
    assert len({r["label"] for r in sampled["train"]}) > 100  # not the first 300 (sorted)


@pytest.mark.integration
def test_real_prompt_injection(shared):
    raw = shared / "prompt_injections_deepset" / "data" / "raw"
    cfg = DataConfig(train=str(raw / "train-*.parquet"), test=str(raw / "test-*.parquet"))
    out = load_splits(cfg, CLS)
    assert len(out["train"]) + len(out["validation"]) == 546
    assert len(out["test"]) == 116
    assert {r["label"] for r in out["train"]} == {"0", "1"}
