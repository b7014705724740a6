"""Tests for causal_lm data: generic records, squad, mbpp, multiple_choice, data.filter and the
group-aware validation hold-out (tiny hand-written files only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from file_helpers import write, write_jsonl

from loralab.config import ColumnsConfig, DataConfig
from loralab.data import load_splits, mbpp_prompt_examples, read_file
from loralab.data.choice import answer_letter
from loralab.data.formats import file_format
from loralab.data.mbpp import mbpp_split_of, split_mbpp
from loralab.data.splits import holdout
from loralab.errors import DataError, UserError
from loralab.tasks import get_task

LM = get_task("causal_lm").records
CLS = get_task("sequence_classification").records


def write_json(path: Path, data: object) -> str:
    return write(path, json.dumps(data))


# --------------------------------------------------------------------------- generic records


def test_jsonl_rows_keep_all_fields(tmp_path):
    rows = [{"question": "q1", "context": "c1", "meta": {"n": 1}, "tags": ["a"], "score": 2.5},
            {"question": "q2", "response": "r2"}]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    cfg = DataConfig(train=path, validation=path, columns=ColumnsConfig(text="nope"))
    out = load_splits(cfg, LM)
    assert out["train"][0] == {**rows[0], "_src": f"{path}:1"}
    assert out["train"][1] == {**rows[1], "_src": f"{path}:2"}


def test_csv_tsv_parquet_rows_as_records(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = write(tmp_path / "t.csv", 'prompt,response\n"a, b",c\nd,e\n')
    tsv = write(tmp_path / "t.tsv", 'prompt\tresponse\n"x\ty"\n')
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"prompt": ["p"], "n": [3], "opts": [["u", "v"]]}), parquet)
    out = load_splits(DataConfig(train=csv, validation=tsv, test=str(parquet)), LM)
    assert out["train"] == [{"prompt": "a, b", "response": "c", "_src": f"{csv}:1"},
                            {"prompt": "d", "response": "e", "_src": f"{csv}:2"}]
    assert out["validation"] == [{"prompt": '"x', "response": 'y"', "_src": f"{tsv}:1"}]
    assert out["test"] == [{"prompt": "p", "n": 3, "opts": ["u", "v"],
                            "_src": f"{parquet}:1"}]


def test_list_rows_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [["a", "b"]])
    with pytest.raises(DataError, match=r"t\.jsonl: rows must be objects with named fields"):
        load_splits(DataConfig(train=path), LM)


def test_encoder_formats_refused_for_causal(tmp_path):
    path = write(tmp_path / "a.conll", "EU B-ORG\n")
    with pytest.raises(UserError, match="data.format conll gives words with BIO tags .*: "
                                        "model.task causal_lm needs prompt/response records"):
        load_splits(DataConfig(train=path), LM)


@pytest.mark.parametrize("fmt", ["squad", "mbpp", "multiple_choice"])
def test_causal_formats_refused_for_encoder_tasks(tmp_path, fmt):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": 1}])
    with pytest.raises(UserError, match=f"data.format {fmt} gives prompt/response records "
                                        r"\(causal LM records\): model.task "
                                        "sequence_classification needs"):
        load_splits(DataConfig(train=path, format=fmt), CLS)


def test_hub_rows_keep_all_fields_and_mc_format(monkeypatch):
    datasets = pytest.importorskip("datasets")
    rows = {"question": ["2+2?", "3+3?"], "choices": [["3", "4"], ["6", "5"]],
            "answer": [1, 0], "subject": ["math", "math"]}

    def fake_load(name, config=None):
        return datasets.DatasetDict(train=datasets.Dataset.from_dict(rows),
                                    validation=datasets.Dataset.from_dict(rows))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    out = load_splits(DataConfig(hub="org/mc"), LM)
    assert out["train"][0] == {"question": "2+2?", "choices": ["3", "4"], "answer": 1,
                               "subject": "math", "_src": "hub:org/mc[train]:1"}
    out = load_splits(DataConfig(hub="org/mc", format="multiple_choice"), LM)
    assert [(r["options"], r["answer"]) for r in out["validation"]] == [
        (["3", "4"], "B"), (["6", "5"], "A")]


# --------------------------------------------------------------------------- squad


def squad(articles: list[tuple[str, list[tuple[str, list[dict]]]]], version: str = "1.1") -> dict:
    """SQuAD JSON from [(title, [(context, [qa, ...]), ...]), ...]."""
    return {"version": version, "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs]}
        for title, paragraphs in articles]}


def qa(qid: str, question: str, *answers: str, **extra) -> dict:
    return {"id": qid, "question": question,
            "answers": [{"text": a, "answer_start": 0} for a in answers], **extra}


def test_squad_v1_one_record_per_question(tmp_path):
    data = squad([("Rome", [("Rome is old.", [qa("q1", "Is Rome old?", "old", "old", "yes")]),
                            ("It has cats.", [qa("q2", "What?", "cats")])]),
                  ("Oslo", [("Oslo is cold.", [qa("q3", "How?", "cold")])])])
    path = write_json(tmp_path / "dev.json", data)
    out = load_splits(DataConfig(train=path, validation=path), LM)  # auto-detected
    assert out["train"][0] == {
        "id": "q1", "title": "Rome", "context": "Rome is old.", "question": "Is Rome old?",
        "answers": ["old", "yes"], "answer": "old", "_src": f"{path}:1", "_group": "Rome"}
    assert [r["_src"].rsplit(":", 1)[1] for r in out["train"]] == ["1", "2", "3"]
    assert [r["_group"] for r in out["train"]] == ["Rome", "Rome", "Oslo"]
    assert [r["id"] for r in load_splits(DataConfig(train=path, validation=path,
                                                    format="squad"), LM)["train"]] == [
        "q1", "q2", "q3"]


def test_squad_v2_impossible_questions_kept_without_answers(tmp_path):
    impossible = {"id": "q2", "question": "Who?", "answers": [], "is_impossible": True,
                  "plausible_answers": [{"text": "Ann", "answer_start": 0}]}
    data = squad([("T", [("Ann ran.", [qa("q1", "Who ran?", "Ann", is_impossible=False),
                                       impossible])])], version="v2.0")
    path = write_json(tmp_path / "v2.json", data)
    out = load_splits(DataConfig(train=path, validation=path, format="squad"), LM)
    assert [(r["answers"], r["answer"]) for r in out["train"]] == [(["Ann"], "Ann"), ([], "")]


def test_squad_not_detected_with_explicit_json_or_other_tasks(tmp_path):
    path = write_json(tmp_path / "d.json", squad([("T", [("c", [qa("q1", "Q?", "a")])])]))
    out = load_splits(DataConfig(train=path, validation=path, format="json"), LM)
    assert set(out["train"][0]) == {"title", "paragraphs", "_src"}
    assert file_format(Path(path), DataConfig(), LM).name == "json"


def test_squad_errors_name_file_row_and_place(tmp_path):
    bad_q = squad([("T", [("c", [qa("q1", "ok?", "a"), {"id": "q2", "question": 5}])])])
    path = write_json(tmp_path / "bad.json", bad_q)
    with pytest.raises(DataError) as info:
        load_splits(DataConfig(train=path, format="squad"), LM)
    assert str(info.value) == (f"file {path}, row 2, column 'data[0].paragraphs[0].qas[1]."
                               "question': expected text, found int")
    no_text = squad([("T", [("c", [{"id": "q", "question": "Q?", "answers": [{"start": 1}]}])])])
    path = write_json(tmp_path / "bad2.json", no_text)
    with pytest.raises(DataError, match=r"row 1, column '.*qas\[0\]\.answers': answer 1 has no"):
        load_splits(DataConfig(train=path, format="squad"), LM)
    path = write_json(tmp_path / "bad3.json", {"data": [{"title": "T", "paragraphs": 3}]})
    with pytest.raises(DataError, match=r"column 'data\[0\]\.paragraphs': expected a list"):
        load_splits(DataConfig(train=path, format="squad"), LM)


# --------------------------------------------------------------------------- group hold-out


def grouped(sizes: list[int]) -> list[dict]:
    return [{"i": i, "_group": f"g{g}"} for g, size in enumerate(sizes) for i in range(size)]


def test_holdout_keeps_groups_whole_and_is_seeded():
    records = grouped([5, 3, 8, 2, 6, 4, 7, 5, 3, 7])  # 50 rows in 10 groups
    train, validation = holdout(records, 0.2, seed=1)
    assert len(train) + len(validation) == 50
    assert {r["_group"] for r in train}.isdisjoint({r["_group"] for r in validation})
    assert 6 <= len(validation) <= 14
    assert (train, validation) == holdout(records, 0.2, seed=1)
    others = {tuple(sorted({r["_group"] for r in holdout(records, 0.2, seed=s)[1]}))
              for s in range(6)}
    assert len(others) > 1
    order = [records.index(r) for r in validation]
    assert order == sorted(order)


def test_holdout_rows_without_group_are_groups_of_one():
    records = grouped([10]) + [{"i": i} for i in range(10)]
    for seed in range(5):
        train, validation = holdout(records, 0.1, seed=seed)
        # 2 rows wanted: the 10-row group would overshoot, so two single rows go
        assert len(validation) == 2 and all("_group" not in r for r in validation)
        assert sum(r.get("_group") == "g0" for r in train) == 10


def test_holdout_one_big_group_never_empties_a_side():
    train, validation = holdout(grouped([30, 2]), 0.1, seed=0)
    assert len(validation) == 2 and len(train) == 30
    train, validation = holdout(grouped([30, 40]), 0.1, seed=0)
    assert len(validation) in (30, 40) and train
    with pytest.raises(DataError, match="all one group"):
        holdout(grouped([4]), 0.5, seed=0)


def test_squad_holdout_keeps_articles_whole(tmp_path):
    articles = [(f"T{a}", [(f"c{a}", [qa(f"q{a}-{i}", "Q?", "x") for i in range(a % 3 + 1)])])
                for a in range(12)]
    path = write_json(tmp_path / "s.json", squad(articles))
    cfg = DataConfig(train=path, validation_fraction=0.25, split_seed=3)
    out = load_splits(cfg, LM)
    assert out == load_splits(cfg, LM)
    assert {r["title"] for r in out["train"]}.isdisjoint({r["title"] for r in out["validation"]})
    assert len(out["train"]) + len(out["validation"]) == 24


# --------------------------------------------------------------------------- mbpp


def mbpp_row(task_id: int, **extra) -> dict:
    return {"text": f"Write task {task_id}.", "code": "def f(x):\r\n\treturn x\r\n",
            "task_id": task_id, "test_setup_code": "", "test_list": ["assert f(1) == 1"],
            "challenge_test_list": [], **extra}


def write_mbpp(path: Path, ids: list[int]) -> str:
    # like the upstream file: CRLF line endings and no final newline
    return write(path, "\r\n".join(json.dumps(mbpp_row(i)) for i in ids))


def test_mbpp_records_normalise_newlines(tmp_path):
    path = write_mbpp(tmp_path / "tasks.jsonl", [601, 602])
    out = load_splits(DataConfig(train=path, validation=path, format="mbpp"), LM)
    assert out["train"][0] == {
        "text": "Write task 601.", "code": "def f(x):\n\treturn x\n", "task_id": 601,
        "test_setup_code": "", "test_list": ["assert f(1) == 1"], "challenge_test_list": [],
        "_src": f"{path}:1"}
    assert out["train"][1]["_src"] == f"{path}:2"


def test_mbpp_split_rule_scaled_down():
    ranges = {"prompt": (1, 2), "test": (3, 10), "validation": (11, 12), "train": (13, 20)}
    records = [{"task_id": i, "_src": f"f:{i}"} for i in range(1, 21)]
    splits = split_mbpp(records, ranges)
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "validation": 2, "test": 8}
    assert [r["task_id"] for r in splits["validation"]] == [11, 12]
    assert [r["task_id"] for r in mbpp_prompt_examples(records[::-1], ranges)] == [1, 2]
    assert mbpp_split_of(5) == "prompt" and mbpp_split_of(510) == "test"
    assert mbpp_split_of(511) == "validation" and mbpp_split_of(974) == "train"
    with pytest.raises(DataError, match=r"file f, row 21, column 'task_id': task_id 21 is "
                                        "outside the standard MBPP splits"):
        split_mbpp(records + [{"task_id": 21, "_src": "f:21"}], ranges)


def test_mbpp_standard_splits_from_one_file(tmp_path):
    ids = [1, 10, 11, 300, 510, 511, 600, 601, 974, 700]
    path = write_mbpp(tmp_path / "mbpp.jsonl", ids)  # auto-detected by name
    out = load_splits(DataConfig(train=path), LM)
    assert {s: [r["task_id"] for r in out[s]] for s in out} == {
        "train": [601, 974, 700], "validation": [511, 600], "test": [11, 300, 510]}
    records = read_file(Path(path), DataConfig(), LM, "train")
    assert [r["task_id"] for r in mbpp_prompt_examples(records)] == [1, 10]


def test_mbpp_explicit_files_used_as_given(tmp_path):
    train = write_mbpp(tmp_path / "mbpp_train.jsonl", [1, 700])
    test = write_mbpp(tmp_path / "mbpp_test.jsonl", [12])
    out = load_splits(DataConfig(train=train, test=test), LM)
    assert len(out["train"]) + len(out["validation"]) == 2
    assert [r["task_id"] for r in out["test"]] == [12]


def test_mbpp_detected_only_by_name_and_for_causal(tmp_path):
    assert file_format(Path("x/MBPP_full.jsonl"), DataConfig(), LM).name == "mbpp"
    assert file_format(Path("x/mbpp.json"), DataConfig(), LM).name == "json"
    assert file_format(Path("x/tasks.jsonl"), DataConfig(), LM).name == "jsonl"
    plain = write_mbpp(tmp_path / "tasks.jsonl", [1, 2, 700])
    out = load_splits(DataConfig(train=plain, validation=plain), LM)
    assert out["train"][0]["code"] == "def f(x):\r\n\treturn x\r\n"  # generic: as written


def test_mbpp_bad_rows(tmp_path):
    path = write_jsonl(tmp_path / "mbpp.jsonl", [mbpp_row(700), {**mbpp_row(701), "task_id": "x"}])
    with pytest.raises(DataError, match=r"row 2, column 'task_id': task_id 'x' is not a whole"):
        load_splits(DataConfig(train=path), LM)
    path = write_jsonl(tmp_path / "mbpp.jsonl", [mbpp_row(700, test_list="assert 1")])
    with pytest.raises(DataError, match=r"row 1, column 'test_list': expected a list"):
        load_splits(DataConfig(train=path), LM)


# --------------------------------------------------------------------------- multiple choice


def test_mc_answers_normalised_from_letter_index_and_text(tmp_path):
    options = ["red", "green", "blue", "grey"]
    answers = ["C", "c", "(B)", 3, 0, "blue", " Green ", "2", 1.0]
    rows = [{"question": f"q{i}", "options": options, "answer": a, "category": "colour"}
            for i, a in enumerate(answers)]
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    out = load_splits(DataConfig(train=path, validation=path, format="multiple_choice"), LM)
    assert [r["answer"] for r in out["train"]] == ["C", "C", "B", "D", "A", "C", "B", "C", "B"]
    assert out["train"][0] == {"question": "q0", "options": options, "answer": "C",
                               "category": "colour", "_src": f"{path}:1"}


def test_mc_answer_letter_rules():
    where = {"file": "f", "row": 1, "column": "answer"}
    assert answer_letter("A", ["B", "A"], **where) == "A"  # a letter wins over option text
    assert answer_letter("2", ["1", "2", "3"], **where) == "B"  # option text before index
    assert answer_letter("2", ["x", "y", "z"], **where) == "C"
    with pytest.raises(DataError, match="'E' is not one of the 4 options: give a letter A-D, "
                                        "a 0-based index 0-3"):
        answer_letter("E", ["a", "b", "c", "d"], **where)
    with pytest.raises(DataError):
        answer_letter(True, ["a", "b"], **where)


def test_mc_csv_letter_columns_and_option_prefix(tmp_path):
    csv = write(tmp_path / "mc.csv", "question,A,B,C,D,answer,category\n"
                                     "Sky?,red,blue,green,,B,physics\nSea?,wet,dry,hot,cold,3,x\n")
    out = load_splits(DataConfig(train=csv, validation=csv, format="multiple_choice"), LM)
    first, second = out["train"]
    assert first["options"] == ["red", "blue", "green"] and first["answer"] == "B"
    assert first["category"] == "physics" and first["_src"] == f"{csv}:1"
    assert second["options"] == ["wet", "dry", "hot", "cold"] and second["answer"] == "D"
    tsv = write(tmp_path / "mc.tsv", "question\toption_a\toption_b\tanswer\nQ?\tyes\tno\tno\n")
    out = load_splits(DataConfig(train=tsv, validation=tsv, format="multiple_choice"), LM)
    assert (out["train"][0]["options"], out["train"][0]["answer"]) == (["yes", "no"], "B")


def test_mc_errors_name_file_row_and_column(tmp_path):
    rows = [{"question": "a?", "options": ["x", "y"], "answer": "A"},
            {"question": "b?", "options": ["x", "y"], "answer": "maybe"}]
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_splits(DataConfig(train=path, format="multiple_choice"), LM)
    assert (info.value.file, info.value.row, info.value.column) == (path, 2, "answer")
    assert str(info.value).startswith(f"file {path}, row 2, column 'answer': the answer 'maybe'")
    gap = write(tmp_path / "gap.csv", "question,A,B,C,answer\nQ?,x,,z,A\n")
    with pytest.raises(DataError, match=r"row 1, column 'B': option B is empty"):
        load_splits(DataConfig(train=gap, format="multiple_choice"), LM)
    none = write(tmp_path / "none.csv", "question,answer\nQ?,A\n")
    with pytest.raises(DataError, match="no options found"):
        load_splits(DataConfig(train=none, format="multiple_choice"), LM)


def test_mc_answer_optional_only_in_test(tmp_path):
    rows = [{"question": "a?", "options": {"B": "y", "A": "x"}}]
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    good = write_jsonl(tmp_path / "ok.jsonl", [{"question": "a?", "options": ["x", "y"],
                                                "answer": 1}])
    cfg = DataConfig(train=good, validation=good, test=path, format="multiple_choice")
    out = load_splits(cfg, LM)
    assert (out["test"][0]["options"], out["test"][0]["answer"]) == (["x", "y"], None)
    with pytest.raises(DataError, match="row 1, column 'answer': the answer is missing"):
        load_splits(DataConfig(train=path, format="multiple_choice"), LM)


# --------------------------------------------------------------------------- data.filter


def category_rows() -> list[dict]:
    cats = ["biology", "law", "biology", "math", "law", "biology"]
    return [{"question": f"q{i}", "category": c, "level": i % 2} for i, c in enumerate(cats)]


def test_filter_value_and_list_in_every_split(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", category_rows())
    cfg = DataConfig(train=path, validation=path, test=path, filter={"category": "biology"})
    out = load_splits(cfg, LM)
    assert [r["question"] for r in out["train"]] == ["q0", "q2", "q5"]
    assert [r["question"] for r in out["test"]] == ["q0", "q2", "q5"]
    cfg = DataConfig(train=path, validation=path, filter={"category": ["law", "math"],
                                                         "level": 1})
    assert [r["question"] for r in load_splits(cfg, LM)["validation"]] == ["q1", "q3"]


def test_filter_applies_before_holdout_and_matches_csv_text(tmp_path):
    path = write(tmp_path / "t.csv", "prompt,level\n" + "".join(f"p{i},{i % 4}\n"
                                                                for i in range(40)))
    out = load_splits(DataConfig(train=path, filter={"level": 3}, validation_fraction=0.2), LM)
    assert (len(out["train"]), len(out["validation"])) == (8, 2)
    assert all(r["level"] == "3" for r in out["train"] + out["validation"])


def test_filter_errors(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", category_rows())
    with pytest.raises(DataError) as info:
        load_splits(DataConfig(train=path, filter={"subject": "law"}), LM)
    assert str(info.value) == ("data.filter: no record has the field 'subject'; the records' "
                               "fields are: question, category, level")
    with pytest.raises(DataError, match=r"data.filter \{category: 'chemistry'\} keeps none of "
                                        r"the 6 train rows; category values there: 'biology' "
                                        r"\(3\), 'law' \(2\), 'math' \(1\)"):
        load_splits(DataConfig(train=path, filter={"category": "chemistry"}), LM)


def test_filter_on_encoder_records(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": f"t{i}", "label": i % 3}
                                              for i in range(9)])
    out = load_splits(DataConfig(train=path, validation=path, filter={"label": [0, 2]}), CLS)
    assert [r["label"] for r in out["train"]] == ["0", "2"] * 3
