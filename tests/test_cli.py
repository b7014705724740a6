"""The `loralab` command as a user meets it: config show, train -> eval -> predict, errors."""

import json
import subprocess
import sys

import pytest
import yaml

from loralab.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "loralab", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_config_show_prints_the_resolved_config_with_overrides(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("lora:\n  r: 8\n")
    assert main(["config", "show", str(path), "--set", "training.epochs=1"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["lora"]["r"] == 8 and shown["training"]["epochs"] == 1
    assert shown["lora"]["alpha"] == 32


def test_user_errors_exit_2_with_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lora:\n  alpah: 8\n")
    result = run_cli("config", "show", path)
    assert result.returncode == 2
    assert result.stderr.strip() == \
        "loralab: error: lora.alpah: unknown key; did you mean lora.alpha?"
    assert "Traceback" not in result.stderr


def test_data_error_names_file_row_and_column(tiny_bert, tmp_path, capsys):
    train = tmp_path / "train.csv"
    train.write_text("text,label\ngood film,4.5\nbad film,lots\n")
    code = main(["train", "--no-progress", "--output", str(tmp_path / "run"),
                 "--set", f"model.name={tiny_bert}", "--set", "model.task=regression",
                 "--set", f"data.train={train}", "--set", f"data.validation={train}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert str(train) in err and "row 2" in err and "'label'" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.fixture
def trained_run(tiny_bert, sentiment_files, tmp_path, capsys):
    config = tmp_path / "sentiment.yaml"
    config.write_text(yaml.safe_dump({
        "name": "sentiment",
        "model": {"name": str(tiny_bert)},
        "lora": {"r": 4, "dropout": 0.0},
        "training": {"epochs": 8, "learning_rate": 5e-3, "batch_size": 16},
        "data": {"train": str(sentiment_files[0]), "validation": str(sentiment_files[1])},
    }))
    run = tmp_path / "run"
    assert main(["train", str(config), "--output", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("done: sentiment accuracy=")
    return run, run / "lora_sentiment_bert_r4"


def test_train_eval_predict(trained_run, sentiment_files, tmp_path, capsys):
    run, adapter = trained_run
    trained = json.loads((run / "metrics.json").read_text())["best"]
    assert main(["eval", str(adapter), "--output", str(tmp_path / "ev"), "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["accuracy"] == pytest.approx(trained["accuracy"])
    assert json.loads((tmp_path / "ev" / "lora_results.json").read_text())["examples"] == 100

    assert main(["eval", str(adapter), "--split", "train", "--no-progress",
                 "--set", "data.max_eval_samples=10"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["examples"] == 10

    assert main(["predict", str(adapter), "--text", "the film was wonderful",
                 "--text", "it was awful and boring"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["text"] for x in lines] == ["the film was wonderful", "it was awful and boring"]
    assert all(x["label"] in ("neg", "pos") and 0.5 <= x["confidence"] <= 1 for x in lines)
    assert all(sum(x["scores"].values()) == pytest.approx(1, abs=1e-5) for x in lines)

    listing = tmp_path / "inputs.txt"
    listing.write_text("a good movie\n\na bad movie\n")
    assert main(["predict", str(adapter), "--file", str(listing)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["predict", str(adapter), "--file", str(sentiment_files[1])]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 100


def test_finished_run_is_not_overwritten_by_accident(trained_run, capsys):
    run, _ = trained_run
    code = main(["train", str(run / "config.yaml"), "--output", str(run), "--no-progress"])
    assert code == 2
    assert "already holds a finished run" in capsys.readouterr().err


def test_predict_entities_and_regression_values(tiny_bert, ner_files, sentiment_files,
                                                tmp_path, capsys):
    common = [f"model.name={tiny_bert}", "lora.dropout=0", "training.learning_rate=1e-2",
              "training.epochs=15", "training.batch_size=16"]
    args = ["train", "--no-progress", "--output", str(tmp_path / "ner")]
    for item in [*common, "model.task=token_classification", "name=ner",
                 f"data.train={ner_files[0]}", f"data.validation={ner_files[1]}"]:
        args += ["--set", item]
    assert main(args) == 0
    capsys.readouterr()
    text = "alice lives in paris and works at acme corp"
    assert main(["predict", str(tmp_path / "ner" / "lora_ner_bert_r16"), "--text", text]) == 0
    line = json.loads(capsys.readouterr().out)
    found = {(e["entity"], e["text"], e["start"], e["end"]) for e in line["entities"]}
    assert ("LOC", "paris", 15, 20) in found
    assert len(line["tags"]) == len(text.split())

    args = ["train", "--no-progress", "--output", str(tmp_path / "reg")]
    for item in [*common, "model.task=regression", "name=score", "data.columns.label=score",
                 f"data.train={sentiment_files[0]}", f"data.validation={sentiment_files[1]}"]:
        args += ["--set", item]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "reg" / "lora_score_bert_r16"),
                 "--text", "good"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out)["value"], float)


def test_predict_argument_errors(trained_run, capsys):
    _, adapter = trained_run
    assert main(["predict", str(adapter)]) == 2
    assert "give --text" in capsys.readouterr().err
    assert main(["predict", str(adapter.parent / "nope"), "--text", "x"]) == 2
    assert "not an adapter folder" in capsys.readouterr().err


def test_eval_refuses_an_unlabelled_split(trained_run, tmp_path, capsys):
    _, adapter = trained_run
    unlabelled = tmp_path / "test.jsonl"
    unlabelled.write_text('{"text": "a good film"}\n{"text": "a bad film"}\n')
    code = main(["eval", str(adapter), "--split", "test", "--no-progress",
                 "--set", f"data.test={unlabelled}"])
    assert code == 2
    assert "the 'test' split has no labels" in capsys.readouterr().err
