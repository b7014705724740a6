"""`loralab data slots`: intent + slot datasets (SNIPS segments, BIO tags, character spans) as
JSON extraction rows and their schema, scored by the json metric suite."""

import json
from pathlib import Path

import jsonschema
import pytest

from loralab.cli import main
from loralab.evaluation.generation.json_suite import evaluate as json_suite

from conftest import shared_data_dir

# SNIPS stores emoji as UTF-16 surrogates encoded one by one: not valid UTF-8
PIZZA = "\ud83c\udf55".encode("utf-8", "surrogatepass")


def snips_file(path, intent, utterances):
    """A SNIPS-shaped file, written as the real ones are (surrogates as raw bytes)."""
    body = json.dumps({intent: [{"data": u} for u in utterances]}, ensure_ascii=False)
    path.write_bytes(body.replace("<PIZZA>", "\x00").encode("utf-8").replace(b"\x00", PIZZA))
    return path


def seg(text, entity=None):
    return {"text": text, **({"entity": entity} if entity else {})}


@pytest.fixture
def snips(tmp_path):
    folder = tmp_path / "snips"
    folder.mkdir()
    snips_file(folder / "train_PlayMusic_full.json", "PlayMusic", [
        [seg("play "), seg("Yo Ho", "track"), seg(" by "), seg("the pops", "artist")],
        [seg("I want "), seg("Pop Perfection <PIZZA>", "playlist"), seg(" on "),
         seg("Deezer", "service")],
        [seg("play a "), seg("song", "music_item"), seg(" or an "), seg("album", "music_item")],
    ])
    snips_file(folder / "train_GetWeather_full.json", "GetWeather", [
        [seg("weather in "), seg("Paris", "city"), seg(" "), seg("tomorrow", "timeRange")],
        [seg("is it cold "), seg("now", "timeRange")],
    ])
    snips_file(folder / "validate_GetWeather.json", "GetWeather", [
        [seg("rain in "), seg("Oslo", "city"), seg("?")]])
    return folder


def run_slots(*argv):
    return main(["data", "slots", *map(str, argv)])


def read_rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_snips_segments_become_extraction_rows_and_a_schema(snips, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_slots("segments", "--train", snips / "train_*_full.json", "--validation",
                     snips / "validate_*.json", "--out", out) == 0
    assert "5 train + 1 eval utterances over 2 intents" in capsys.readouterr().out
    train, dev = read_rows(out / "train.jsonl"), read_rows(out / "eval.jsonl")
    by_message = {r["message"]: r["output"] for r in train}
    assert by_message["play Yo Ho by the pops"] == {
        "intent": "PlayMusic", "entities": {"track": "Yo Ho", "artist": "the pops"}}
    assert by_message["I want Pop Perfection \U0001f355 on Deezer"]["entities"]["playlist"] == \
        "Pop Perfection \U0001f355"
    assert by_message["play a song or an album"]["entities"] == {
        "music_item": ["song", "album"]}
    assert dev[0]["output"] == {"intent": "GetWeather", "entities": {"city": "Oslo"}}
    prompt = dev[0]["prompt"]
    assert "- GetWeather: city, timeRange" in prompt and prompt.endswith(
        "Message: rain in Oslo?\nJSON:\n")
    assert "- PlayMusic: artist, music_item, playlist, service, track" in prompt
    schema = json.loads((out / "schema.json").read_text())
    for row in train + dev:
        jsonschema.validate(row["output"], schema)
    with pytest.raises(jsonschema.ValidationError):  # a slot of another intent
        jsonschema.validate({"intent": "GetWeather", "entities": {"track": "x"}}, schema)
    with pytest.raises(jsonschema.ValidationError):  # only music_item repeats
        jsonschema.validate({"intent": "PlayMusic", "entities": {"track": ["a", "b"]}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"intent": "BookFlight", "entities": {}}, schema)
    answers = [json.dumps(r["output"]) for r in dev] + ['{"intent": "GetWeather"}']
    metrics, _ = json_suite(answers, dev + dev, schema=schema)
    assert metrics["valid_json"] == 1.0 and metrics["schema_compliance"] == 0.5
    assert metrics["intent_accuracy"] == 1.0 and metrics["json_entity_recall"] == 0.5


def test_bio_and_span_rows_give_the_same_rows(tmp_path):
    bio = tmp_path / "bio.jsonl"
    bio.write_text(json.dumps({"tokens": "weather in new york now",
                               "tags": "O O I-city I-city B-timeRange",  # IOB1 is converted
                               "intent": "GetWeather"}) + "\n")
    spans = tmp_path / "spans.jsonl"
    spans.write_text(json.dumps({"text": "weather in new york now", "intent": "GetWeather",
                                 "spans": [{"start": 11, "end": 19, "entity": "city"},
                                           {"start": 20, "end": 23, "label": "timeRange"}]})
                     + "\n")
    outputs = []
    for kind, path in (("bio", bio), ("spans", spans)):
        out = tmp_path / kind
        assert run_slots(kind, "--train", path, "--validation", path, "--out", out) == 0
        outputs.append(read_rows(out / "train.jsonl")[0]["output"])
    assert outputs[0] == outputs[1] == {"intent": "GetWeather", "entities": {
        "city": "new york", "timeRange": "now"}}


def test_bad_slot_data_names_the_file_row_and_column(tmp_path, snips, capsys):
    bio = tmp_path / "bio.jsonl"
    bio.write_text(json.dumps({"tokens": "a b", "tags": "O", "intent": "X"}) + "\n")
    assert run_slots("bio", "--train", bio, "--validation", bio, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "bio.jsonl" in err and "row 1" in err and "'tags'" in err and "2 tokens but 1" in err
    other = snips_file(tmp_path / "validate_Book.json", "BookRestaurant", [[seg("book it")]])
    assert run_slots("segments", "--train", snips / "train_*_full.json", "--validation", other,
                     "--out", tmp_path / "o") == 2
    assert "validation intent 'BookRestaurant' is not in the training data" in \
        capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.integration
def test_the_real_snips_folder(tmp_path):
    shared = shared_data_dir()
    folder = shared / "snips_2017" / "2017-06-custom-intent-engines" if shared else None
    if folder is None or not folder.is_dir():
        pytest.skip("../shared/data/snips_2017 is not here")
    out = tmp_path / "snips"
    assert run_slots("segments", "--train", folder / "*" / "train_*_full.json",
                     "--validation", folder / "*" / "validate_*.json", "--out", out) == 0
    train, dev = read_rows(out / "train.jsonl"), read_rows(out / "eval.jsonl")
    assert (len(train), len(dev)) == (13784, 700)
    assert len({r["intent"] for r in dev}) == 7
    schema = json.loads((out / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert all(validator.is_valid(r["output"]) for r in train + dev)
    assert any("\U0001f355" in r["message"] for r in train)
    assert not {m for r in train for m in r["message"] if 0xD800 <= ord(m) <= 0xDFFF}
    from loralab.config import load_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    config = load_config(examples / "json_extraction_snips_smollm2.yaml", [
        f"data.train={out / 'train.jsonl'}", f"data.validation={out / 'eval.jsonl'}",
        f"data.schema_file={out / 'schema.json'}"])
    assert config.data.metrics == ["json"]
