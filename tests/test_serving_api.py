"""`loralab serve` as a real subprocess: classification in `loralab predict`'s JSON shape, the
router's batch endpoint, embeddings, models, health / ready / metrics, and every class of bad
input answered with a 4xx and a one-line message while the server keeps serving."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from bad_input_cases import REQUESTS
from serving_helpers import (
    build_models_dir,
    make_adapter,
    running_server,
    write_loralab_config,
)

from loralab.commands.predict import predict_records
from loralab.tasks import load_adapter

from conftest import build_tiny_encoder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-api")
    tiny = build_tiny_encoder(root / "tiny-bert", "bert")
    models = build_models_dir(root, tiny)
    pairs = make_adapter(tiny, models / "pairs", "sequence_classification", labels=["no", "yes"],
                         seed=9)
    write_loralab_config(pairs, tiny, "sequence_classification",
                         columns={"text": "a", "text_pair": "b"})
    with running_server(models, "--base", str(tiny), "--max-rows", "40",
                        "--max-input-chars", "300", "--max-request-bytes", "20000") as running:
        running.models, running.tiny = models, tiny
        yield running


def post(server, path, body, **kwargs):
    return httpx.post(server.url + path, json=body, timeout=60, **kwargs)


def close(a, b, tol=2e-6):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float):
        return math.isclose(a, b, abs_tol=tol)
    return a == b


@pytest.mark.parametrize("adapter,folder", [("lora_sentiment_bert_r4",
                                              "run1/lora_sentiment_bert_r4"),
                                             ("three", "three"), ("score", "score"),
                                             ("ner", "ner"), ("plain_peft", "plain_peft")])
def test_classify_answers_like_loralab_predict(server, adapter, folder):
    texts = ["the movie was good", "john smith lives in paris .", "bad"]
    reply = post(server, "/v1/classify", {"adapter": adapter, "inputs": texts})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["id"].startswith("cls-") and body["adapter"] == adapter
    loaded = load_adapter(server.models / folder)
    expected = list(predict_records(loaded, [{"text": t, "text_pair": None} for t in texts]))
    assert close(body["results"], expected), (body["results"], expected)


def test_the_router_batch_endpoint_mixes_adapters(server):
    requests = [{"adapter": "three", "inputs": ["good", "bad film"]},
                {"adapter": "ner", "inputs": ["alice lives in london"]},
                {"adapter": "lora_sentiment_bert_r4", "inputs": [{"text": "great plot"}]}]
    reply = post(server, "/api/v1/classify/batch", {"requests": requests})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [r["adapter"] for r in body["responses"]] == ["three", "ner",
                                                         "lora_sentiment_bert_r4"]
    for part, request in zip(body["responses"], requests):
        alone = post(server, "/v1/classify", request).json()
        assert close(part["results"], alone["results"])
    assert body["responses"][1]["results"][0]["entities"] is not None


def test_models_adapters_embeddings_and_health(server):
    models = httpx.get(server.url + "/v1/models").json()
    by_id = {m["id"]: m for m in models["data"]}
    assert by_id["three"]["parent"] == str(server.tiny) and by_id[str(server.tiny)]["parent"] \
        is None
    listing = httpx.get(server.url + "/v1/adapters").json()
    three = next(a for a in listing["data"] if a["name"] == "three")
    assert three["rank"] == 8 and three["target_modules"] == ["intermediate.dense"]
    assert three["labels"] == ["x", "y", "z"] and three["task"] == "sequence_classification"
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    assert httpx.get(server.url + "/ready").json()["status"] == "ready"
    reply = post(server, "/v1/embeddings", {"model": str(server.tiny), "input": ["a", "b c"]})
    assert reply.status_code == 200, reply.text
    vectors = [d["embedding"] for d in reply.json()["data"]]
    assert len(vectors) == 2 and len(vectors[0]) == 32 and vectors[0] != vectors[1]


def test_metrics_count_requests_batches_and_adapters(server):
    post(server, "/v1/classify", {"adapter": "score", "inputs": ["a", "b"]})
    post(server, "/v1/classify", {"adapter": "nope", "inputs": ["a"]})
    text = httpx.get(server.url + "/metrics").text
    assert 'loralab_requests_total{route="/v1/classify",status="200"}' in text
    assert 'loralab_errors_total{route="/v1/classify",status="404"}' in text
    assert 'loralab_adapter_rows_total{adapter="score"}' in text
    assert "loralab_batch_rows_bucket" in text and 'kind="logits"' in text
    assert "loralab_request_seconds_bucket" in text
    loaded = [line for line in text.splitlines() if line.startswith("loralab_adapters_loaded")]
    assert loaded == ["loralab_adapters_loaded 6.0"]


BAD_REQUESTS = REQUESTS        # the catalogue's server rows (tests/bad_input_cases.py)


@pytest.mark.parametrize("what,path,body,status,words", BAD_REQUESTS,
                         ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_with_one_line(server, what, path, body, status, words):
    if isinstance(body, bytes):
        reply = httpx.post(server.url + path, content=body, timeout=60,
                           headers={"content-type": "application/json"})
    else:
        names = {"BASE": str(server.tiny), "PAIRS": "pairs"}
        body = json.loads(json.dumps(body).replace('"BASE"', json.dumps(names["BASE"]))
                          .replace('"PAIRS"', '"pairs"'))
        reply = post(server, path, body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words in error["message"] and "\n" not in error["message"]
    assert error["code"] == status and error["type"]
    assert post(server, "/v1/classify", {"adapter": "three", "inputs": ["a"]}).status_code == 200


def test_a_pair_adapter_answers_pairs_and_a_body_within_the_limit_passes(server):
    reply = post(server, "/v1/classify", {"adapter": "pairs", "inputs": [
        {"text": "a cat sat", "text_pair": "a cat was sitting"}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"][0]["text_pair"] == "a cat was sitting"
    body = {"adapter": "three", "inputs": ["a" * 250] * 40}          # ~10 kB of 20 kB
    assert post(server, "/v1/classify", body).status_code == 200
    big = json.dumps({"adapter": "three", "inputs": ["a" * 250] * 100}).encode()
    assert len(big) > 20000
    streamed = httpx.post(server.url + "/v1/classify", timeout=60,       # chunked: no length
                          content=(big[i:i + 4096] for i in range(0, len(big), 4096)),
                          headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "--max-request-bytes" in streamed.text


def test_malformed_json_is_a_422(server):
    reply = httpx.post(server.url + "/v1/classify", content=b"{not json",
                       headers={"content-type": "application/json"})
    assert reply.status_code == 422
    assert reply.json()["error"]["message"] == "the request body is not valid JSON"
