"""causal_lm data loaders on the real XQuAD and MBPP files in ../shared/data (skipped when
absent)."""

from __future__ import annotations

import pytest

from loralab.config import DataConfig
from loralab.data import load_splits, mbpp_prompt_examples, read_file
from loralab.tasks import get_task

LM = get_task("causal_lm").records


@pytest.mark.integration
def test_real_xquad(shared):
    path = shared / "xquad_en" / "xquad.en.json"
    out = load_splits(DataConfig(train=str(path)), LM)  # format auto: detected as squad
    records = out["train"] + out["validation"]
    assert len(records) == 1190
    assert all(r["answers"] and r["answer"] == r["answers"][0] for r in records)
    assert all(r["answer"] in r["context"] for r in records)
    assert len({r["id"] for r in records}) == 1190
    for seed in (0, 1, 2):
        split = load_splits(DataConfig(train=str(path), split_seed=seed), LM)
        train_titles = {r["title"] for r in split["train"]}
        val_titles = {r["title"] for r in split["validation"]}
        assert train_titles.isdisjoint(val_titles)
        assert len(train_titles | val_titles) == 48
        assert 60 <= len(split["validation"]) <= 200


@pytest.mark.integration
def test_real_mbpp(shared):
    path = shared / "mbpp" / "mbpp.jsonl"
    out = load_splits(DataConfig(train=str(path)), LM)  # format auto: detected by the name
    assert [len(out[s]) for s in ("train", "validation", "test")] == [374, 90, 500]
    ranges = {s: (min(r["task_id"] for r in out[s]), max(r["task_id"] for r in out[s]))
              for s in out}
    assert ranges == {"train": (601, 974), "validation": (511, 600), "test": (11, 510)}
    records = out["train"] + out["validation"] + out["test"]
    assert not any("\r" in r["code"] or "\r" in r["test_setup_code"] for r in records)
    assert all(r["test_list"] and r["text"] for r in records)
    prompt = mbpp_prompt_examples(read_file(path, DataConfig(), LM, "train"))
    assert [r["task_id"] for r in prompt] == list(range(1, 11))
