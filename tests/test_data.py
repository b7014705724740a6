"""Tests for loralab.data: every format, every error message, and the real shared data sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from file_helpers import write, write_jsonl

from loralab.config import ColumnsConfig, DataConfig
from loralab.data import infer_format, load_splits, split_words, to_bio
from loralab.data.splits import holdout, sample
from loralab.errors import DataError, UserError
from loralab.tasks import get_task

CLS = get_task("sequence_classification").records
REG = get_task("regression").records
TOK = get_task("token_classification").records


def rows(n: int) -> list[dict]:
    return [{"text": f"example {i}", "label": i % 3} for i in range(n)]


# --------------------------------------------------------------------------- split_words


def test_split_words_keeps_compound_words_together():
    text = "Mail o'neil at jo.doe@mail.com: 12.5 e-mail, ok!"
    assert [w for w, _, _ in split_words(text)] == [
        "Mail", "o'neil", "at", "jo.doe@mail.com", ":", "12.5", "e-mail", ",", "ok", "!"]
    for word, start, end in split_words(text):
        assert text[start:end] == word


def test_split_words_offsets_and_trailing_punctuation():
    assert split_words("Hi  there.") == [("Hi", 0, 2), ("there", 4, 9), (".", 9, 10)]
    assert split_words("") == []


def test_infer_format():
    assert infer_format("a/b.JSONL") == "jsonl"
    assert infer_format("x.tsv") == "tsv"
    assert infer_format("x.parquet") == "parquet"
    assert infer_format("x.conll") == "conll"
    with pytest.raises(DataError, match="set data.format"):
        infer_format("eng.train")


def test_to_bio_converts_iob1_and_iobes():
    assert to_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"], file="f", row=1) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
    assert to_bio(["S-PER", "B-ORG", "E-ORG"], file="f", row=1) == ["B-PER", "B-ORG", "I-ORG"]
    with pytest.raises(DataError, match="row 3.*'PER' is not BIO"):
        to_bio(["PER"], file="f", row=3)


# --------------------------------------------------------------------------- tabular formats


def test_jsonl_classification_with_labels_as_strings(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", rows(4))
    val = write_jsonl(tmp_path / "val.jsonl", [{"sentence": "a b", "intent": "book_flight"}])
    out = load_splits(DataConfig(train=train, validation=val), CLS)
    assert set(out) == {"train", "validation"}
    assert [r["label"] for r in out["train"]] == ["0", "1", "2", "0"]
    assert out["train"][1] == {"text": "example 1", "text_pair": None, "label": "1",
                               "_src": f"{train}:2"}
    assert out["validation"][0]["label"] == "book_flight"


def test_jsonl_row_is_line_number_and_bad_json_names_it(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n')
    out = load_splits(DataConfig(train=path, validation=path), CLS)
    assert [r["_src"] for r in out["train"]] == [f"{path}:1", f"{path}:3"]
    bad = write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n{"text": \n')
    with pytest.raises(DataError, match="row 2: not valid JSON"):
        load_splits(DataConfig(train=bad, validation=path), CLS)


def test_json_list_and_data_object(tmp_path):
    listed = tmp_path / "a.json"
    listed.write_text(json.dumps(rows(3)))
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"data": [{"text": "x", "label": True}]}))
    out = load_splits(DataConfig(train=str(listed), validation=str(wrapped)), CLS)
    assert len(out["train"]) == 3 and out["train"][2]["_src"] == f"{listed}:3"
    assert out["validation"][0]["label"] == "true"


def test_json_clinc_shape_suggests_format(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": [["hi", "greet"]]}))
    with pytest.raises(DataError, match="data.format: clinc"):
        load_splits(DataConfig(train=str(path)), CLS)


def test_csv_with_quotes_and_pairs(tmp_path):
    text = 'question,question2,label\n"a, ""quoted"" one",second,1\nthird,fourth,0\n'
    path = write(tmp_path / "p.csv", text)
    out = load_splits(DataConfig(train=path, validation=path), CLS)
    assert out["train"][0] == {"text": 'a, "quoted" one', "text_pair": "second", "label": "1",
                               "_src": f"{path}:1"}


def test_tsv_keeps_quotes_and_bom(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes('\ufeffQuality\t#1 String\t#2 String\n1\t" He said\tso "\n'.encode())
    out = load_splits(DataConfig(train=str(path), validation=str(path)), CLS)
    assert out["train"][0]["text"] == '" He said'
    assert out["train"][0]["text_pair"] == 'so "'
    assert out["train"][0]["label"] == "1"


def test_tsv_wrong_field_count_names_row(tmp_path):
    path = write(tmp_path / "t.tsv", "label\ttext\n1\tok\n0\tbad\textra\n")
    with pytest.raises(DataError, match=r"t\.tsv, row 2: expected 2 fields like the header, "
                                        "found 3"):
        load_splits(DataConfig(train=path), CLS)


def test_headerless_tsv_with_column_numbers(tmp_path):
    path = write(tmp_path / "h.tsv", "x\t4.5\tfirst\tsecond\ny\t1\tthird\tfourth\n")
    cols = ColumnsConfig(text=2, text_pair=3, label=1)
    out = load_splits(DataConfig(train=path, validation=path, columns=cols), REG)
    assert [r["label"] for r in out["train"]] == [4.5, 1.0]
    assert out["train"][1]["text_pair"] == "fourth"
    assert out["train"][0]["_src"] == f"{path}:1"


def test_parquet_int_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train-0.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": [0, 1, 1]}), path)
    out = load_splits(DataConfig(train=str(tmp_path / "train-*.parquet"),
                                 validation=str(path)), CLS)
    assert [r["label"] for r in out["train"]] == ["0", "1", "1"]
    assert out["train"][2]["_src"] == f"{path}:3"


def test_regression_labels_are_floats(tmp_path):
    path = write(tmp_path / "s.tsv", "sentence1\tsentence2\tscore\na\tb\t3.800\nc\td\t0\n")
    out = load_splits(DataConfig(train=path, validation=path), REG)
    assert [r["label"] for r in out["train"]] == [3.8, 0.0]


def test_token_jsonl_with_string_tags(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [
        {"words": ["Ann", "Lee", "ran"], "ner_tags": ["I-PER", "I-PER", "O"]},
        {"words": "Paris is big", "ner_tags": "B-LOC O O"}])
    out = load_splits(DataConfig(train=path, validation=path), TOK)
    assert out["train"][0] == {"tokens": ["Ann", "Lee", "ran"], "tags": ["B-PER", "I-PER", "O"],
                               "_src": f"{path}:1"}
    assert out["train"][1]["tokens"] == ["Paris", "is", "big"]


def test_token_length_mismatch(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"tokens": ["a", "b"], "tags": ["O"]}])
    with pytest.raises(DataError, match="row 1, column 'tags': 2 tokens but 1 tags"):
        load_splits(DataConfig(train=path, validation=path), TOK)


# --------------------------------------------------------------------------- error cases


def test_missing_mapped_column_lists_available(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", rows(2))
    cfg = DataConfig(train=path, columns=ColumnsConfig(text="body"))
    with pytest.raises(DataError) as info:
        load_splits(cfg, CLS)
    assert str(info.value) == (f"file {path}, column 'body': data.columns.text names a column "
                               "that is not there; columns here: 'text', 'label'")


def test_no_text_column_found_lists_columns(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"body": "x", "label": 1}])
    with pytest.raises(DataError, match="no text column found.*columns here: 'body', 'label'"):
        load_splits(DataConfig(train=path), CLS)


def test_non_numeric_regression_label(tmp_path):
    path = write(tmp_path / "s.csv", "text,score\na,1.5\nb,high\n")
    with pytest.raises(DataError) as info:
        load_splits(DataConfig(train=path), REG)
    assert (info.value.row, info.value.column) == (2, "score")
    assert str(info.value).startswith(f"file {path}, row 2, column 'score': the label 'high' "
                                      "is not a number")


def test_empty_text(tmp_path):
    path = write(tmp_path / "e.csv", "text,label\nfine,1\n  ,0\n")
    with pytest.raises(DataError, match=r"row 2, column 'text': the text is empty"):
        load_splits(DataConfig(train=path), CLS)


def test_missing_label_in_train_but_not_in_test(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,1\nb,\n")
    with pytest.raises(DataError, match="row 2, column 'label': the label is missing"):
        load_splits(DataConfig(train=train), CLS)
    good = write(tmp_path / "good.csv", "text,label\na,1\nb,0\n")
    test = write(tmp_path / "test.csv", "index,text\n0,c\n")
    out = load_splits(DataConfig(train=good, validation=good, test=test,
                                 columns=ColumnsConfig(label="label")), CLS)
    assert out["test"] == [{"text": "c", "text_pair": None, "label": None,
                            "_src": f"{test}:1"}]
    no_label = write(tmp_path / "nolabel.csv", "text\na\n")
    with pytest.raises(DataError, match="no label column found"):
        load_splits(DataConfig(train=no_label), CLS)


def test_missing_file_names_config_key(tmp_path):
    train = write_jsonl(tmp_path / "t.jsonl", rows(3))
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found \(set by data\.validation"):
        load_splits(DataConfig(train=train, validation=missing), CLS)
    with pytest.raises(DataError, match=r"no file matches .*set by data\.test"):
        load_splits(DataConfig(train=train, test=str(tmp_path / "x-*.parquet")), CLS)


def test_empty_files(tmp_path):
    for name in ("e.tsv", "e.csv", "e.jsonl", "e.conll"):
        path = write(tmp_path / name, "")
        task = TOK if name.endswith("conll") else CLS
        with pytest.raises(DataError, match=name.replace(".", r"\.") + ": "):
            load_splits(DataConfig(train=path), task)
    header_only = write(tmp_path / "h.tsv", "text\tlabel\n")
    with pytest.raises(DataError, match="no data rows"):
        load_splits(DataConfig(train=header_only), CLS)


def test_no_source_and_bad_split_name():
    with pytest.raises(UserError, match="data.train or data.hub is required"):
        load_splits(DataConfig(), CLS)
    with pytest.raises(UserError, match="unknown split 'dev'"):
        load_splits(DataConfig(train="x.jsonl", splits={"dev": "dev"}), CLS)


def test_format_task_mismatch(tmp_path):
    path = write(tmp_path / "a.conll", "EU B-ORG\n")
    with pytest.raises(UserError, match=r"gives words with BIO tags \(token classification "
                                        r"records\): model.task sequence_classification needs"):
        load_splits(DataConfig(train=path), CLS)


# --------------------------------------------------------------------------- splits, sampling


def test_holdout_is_seeded_and_keeps_order(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", rows(100))
    cfg = DataConfig(train=path, validation_fraction=0.2, split_seed=7)
    first, again = load_splits(cfg, CLS), load_splits(cfg, CLS)
    assert first == again
    assert (len(first["train"]), len(first["validation"])) == (80, 20)
    srcs = [r["_src"] for r in first["train"] + first["validation"]]
    assert len(set(srcs)) == 100
    rows_of = [int(r["_src"].rsplit(":", 1)[1]) for r in first["validation"]]
    assert rows_of == sorted(rows_of)
    other = load_splits(cfg.model_copy(update={"split_seed": 8}), CLS)
    assert other["validation"] != first["validation"]


def test_sample_is_seeded_not_first_rows():
    records = [{"i": i} for i in range(1000)]
    picked = sample(records, 50, seed=0)
    assert len(picked) == 50 and picked == sample(records, 50, seed=0)
    assert picked != records[:50]
    assert [r["i"] for r in picked] == sorted(r["i"] for r in picked)
    assert sample(records, 5000, seed=0) is records
    train, val = holdout(records[:3], 0.01, seed=0)
    assert (len(train), len(val)) == (2, 1)


def test_max_samples_apply_to_train_and_eval(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", rows(60))
    cfg = DataConfig(train=path, validation=path, test=path, max_train_samples=10,
                     max_eval_samples=4)
    out = load_splits(cfg, CLS)
    assert [len(out[s]) for s in ("train", "validation", "test")] == [10, 4, 4]
    assert out["train"] != load_splits(DataConfig(train=path, validation=path), CLS)["train"][:10]


# --------------------------------------------------------------------------- conll


def test_conll_iob1_docstart_and_columns(tmp_path):
    text = ("-DOCSTART- -X- O O\n\nEU NNP I-ORG\nrejects VBZ O\nGerman JJ I-MISC\n\n\n"
            "Peter NNP I-PER\nBlackburn NNP I-PER\n")
    path = write(tmp_path / "eng.train", text)
    out = load_splits(DataConfig(train=path, validation=path), TOK)
    assert out["train"] == [
        {"tokens": ["EU", "rejects", "German"], "tags": ["B-ORG", "O", "B-MISC"],
         "_src": f"{path}:3"},
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"], "_src": f"{path}:8"}]
    cols = ColumnsConfig(tokens=1, tags=0)
    swapped = write(tmp_path / "s.conll", "O the\nB-LOC Rome\n")
    out = load_splits(DataConfig(train=swapped, validation=swapped, columns=cols), TOK)
    assert out["train"][0]["tokens"] == ["the", "Rome"]


def test_conll_short_line(tmp_path):
    path = write(tmp_path / "a.conll", "EU B-ORG\nlonely\n")
    with pytest.raises(DataError, match="row 2: expected at least 2"):
        load_splits(DataConfig(train=path), TOK)


# --------------------------------------------------------------------------- presidio spans


def presidio_record(text: str, spans: list[tuple[str, int, int]]) -> dict:
    return {"full_text": text, "spans": [
        {"entity_type": t, "entity_value": text[s:e], "start_position": s, "end_position": e}
        for t, s, e in spans]}


def test_presidio_spans_to_bio(tmp_path):
    text = "Call Dr. Ann O'Neil at ann@x.org today"
    data = [presidio_record(text, [("PERSON", 9, 19), ("EMAIL_ADDRESS", 23, 32),
                                   ("TITLE", 5, 8)])]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    out = load_splits(DataConfig(train=str(path), validation=str(path), format="presidio"), TOK)
    record = out["train"][0]
    assert record["tokens"] == ["Call", "Dr", ".", "Ann", "O'Neil", "at", "ann@x.org", "today"]
    assert record["tags"] == ["O", "B-TITLE", "I-TITLE", "B-PERSON", "I-PERSON", "O",
                              "B-EMAIL_ADDRESS", "O"]


def test_span_overlap_keeps_longer_and_generic_keys(tmp_path):
    row = {"text": "New York City is big",
           "spans": [{"label": "GPE", "start": 0, "end": 8},
                     {"label": "CITY", "start": 0, "end": 13},
                     {"label": "SIZE", "start": 17, "end": 20}]}
    path = write_jsonl(tmp_path / "p.jsonl", [row])
    out = load_splits(DataConfig(train=path, validation=path), TOK)  # auto: spans -> presidio
    assert out["train"][0]["tags"] == ["B-CITY", "I-CITY", "I-CITY", "O", "B-SIZE"]


def test_span_outside_text(tmp_path):
    ok = presidio_record("Ann ran", [("PERSON", 0, 3)])
    bad = {"full_text": "Ann ran", "spans": [{"entity_type": "PERSON", "start_position": 4,
                                              "end_position": 40}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps([ok, bad]))
    with pytest.raises(DataError, match=r"row 2, column 'spans': span 4-40 \(PERSON\) is "
                                        r"outside the text \(length 7\)"):
        load_splits(DataConfig(train=str(path), format="presidio"), TOK)


# --------------------------------------------------------------------------- clinc


def clinc_file(tmp_path: Path) -> str:
    data = {"train": [["book a flight", "book_flight"], ["play jazz", "play_music"],
                      ["fly me", "book_flight"]],
            "val": [["a song", "play_music"]], "test": [["to rome", "book_flight"]],
            "oos_train": [["what is love", "oos"]], "oos_val": [["meaning", "oos"]],
            "oos_test": [["why", "oos"], ["how", "oos"]]}
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_clinc_one_file_gives_three_splits_with_oos(tmp_path):
    path = clinc_file(tmp_path)
    out = load_splits(DataConfig(train=path, format="clinc"), CLS)
    assert [len(out[s]) for s in ("train", "validation", "test")] == [4, 2, 3]
    assert out["train"][-1] == {"text": "what is love", "text_pair": None, "label": "oos",
                                "_src": f"{path}[oos_train]:1"}
    assert out["validation"][0]["_src"] == f"{path}[val]:1"


def test_clinc_without_oos_and_split_override(tmp_path):
    path = clinc_file(tmp_path)
    cfg = DataConfig(train=path, format="clinc", include_oos=False,
                     splits={"validation": "test"})
    out = load_splits(cfg, CLS)
    assert [len(out[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
    assert out["validation"][0]["text"] == "to rome"
    with pytest.raises(DataError, match="no split 'dev'"):
        load_splits(DataConfig(train=path, format="clinc", splits={"test": "dev"}), CLS)


# --------------------------------------------------------------------------- hub


def test_hub_classlabel_names_and_unlabelled_test(monkeypatch):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence1": datasets.Value("string"),
                                  "sentence2": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["no", "yes"])})

    def split(labels):
        n = len(labels)
        return datasets.Dataset.from_dict(
            {"sentence1": [f"a{i}" for i in range(n)], "sentence2": [f"b{i}" for i in range(n)],
             "label": labels}, features=features)

    calls = []

    def fake_load(name, config=None):
        calls.append((name, config))
        return datasets.DatasetDict(train=split([0, 1, 1]), validation=split([1]),
                                    test=split([-1, -1]))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    out = load_splits(DataConfig(hub="glue/mrpc"), CLS)
    assert calls == [("glue", "mrpc")]
    assert [r["label"] for r in out["train"]] == ["no", "yes", "yes"]
    assert out["train"][0]["text_pair"] == "b0"
    assert [r["label"] for r in out["test"]] == [None, None]
    assert out["validation"][0]["_src"] == "hub:glue/mrpc[validation]:1"


def test_hub_failure_is_one_line_user_error(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(name, config=None):
        raise ConnectionError("Couldn't reach 'glue' on the Hub\n(OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as info:
        load_splits(DataConfig(hub="glue", hub_config="stsb"), REG)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("could not fetch hub dataset glue/stsb")
    assert "data.train" in message


# --------------------------------------------------------------------------- synthetic demo data


def test_synthetic_intent_dataset_loads(tmp_path):
    from loralab.data.synthetic import write_intent_dataset

    train, validation = write_intent_dataset(tmp_path / "d", n=120, seed=0)
    out = load_splits(DataConfig(train=str(train), validation=str(validation)), CLS)
    assert (len(out["train"]), len(out["validation"])) == (96, 24)
    assert len({r["label"] for r in out["train"]}) == 6
    again = write_intent_dataset(tmp_path / "e", n=120, seed=0)
    assert again[0].read_text() == train.read_text()
