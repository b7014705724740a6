"""Feedback: acknowledged ratings survive `kill -9`; `loralab feedback export` writes rows that
`loralab train` reads directly (a real short training run for a classifier and a causal LM);
export's user errors."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys

import httpx
import pytest
from serving_helpers import ServerProcess, build_models_dir, running_server

from conftest import build_tiny_encoder, build_tiny_llama, sentiment_rows


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "loralab", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-feedback")
    tiny = build_tiny_encoder(root / "tiny-bert", "bert")
    llama = build_tiny_llama(root / "tiny-llama")
    return root, tiny, llama, build_models_dir(root, tiny, llama)


def rate(server, response_id, rating="up"):
    reply = httpx.post(server.url + "/v1/feedback", json={"response_id": response_id,
                                                          "rating": rating, "comment": "ok"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_acknowledged_feedback_survives_kill_9(setup):
    root, tiny, llama, models = setup
    db = root / "killed.sqlite"
    server = ServerProcess(models, "--feedback-db", str(db)).wait_ready()
    acknowledged = 0
    try:
        for i in range(25):
            reply = httpx.post(server.url + "/v1/classify", json={
                "adapter": "three", "inputs": [f"text number {i}"]}).json()
            rate(server, reply["id"], "up" if i % 3 else "down")
            acknowledged += 1
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM feedback").fetchone()[0] == acknowledged
    with running_server(models, "--feedback-db", str(db)) as again:
        reply = httpx.post(again.url + "/v1/classify", json={"adapter": "three",
                                                             "inputs": ["after"]}).json()
        rate(again, reply["id"])
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT adapter, kind, request, response FROM feedback "
                                  "ORDER BY id").fetchall()
    assert len(rows) == acknowledged + 1
    adapter, kind, request, response = rows[0]
    assert (adapter, kind) == ("three", "classify")
    assert json.loads(request) == {"inputs": [{"text": "text number 0"}]}
    assert json.loads(response)["results"][0]["label"] in ("x", "y", "z")


def test_exported_feedback_trains_a_classifier_and_a_causal_lm(setup, tmp_path):
    root, tiny, llama, models = setup
    db = tmp_path / "feedback.sqlite"
    texts = [r["text"] for r in sentiment_rows(40, 3)]
    with running_server(models, "--feedback-db", str(db)) as server:
        for text in texts:
            reply = httpx.post(server.url + "/v1/classify", json={
                "adapter": "lora_sentiment_bert_r4", "inputs": [text]}).json()
            rate(server, reply["id"])
        batch = httpx.post(server.url + "/api/v1/classify/batch", json={"requests": [
            {"adapter": "three", "inputs": ["good"]}, {"adapter": "ner",
                                                       "inputs": ["alice in paris"]}]}).json()
        assert rate(server, batch["id"])["stored"] == 2
        for i in range(12):
            reply = httpx.post(server.url + "/v1/completions", json={
                "model": "chat", "prompt": f"order {i} pizzas", "max_tokens": 6,
                "temperature": 0}).json()
            rate(server, reply["id"])
        reply = httpx.post(server.url + "/v1/chat/completions", json={
            "model": "chat", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4, "temperature": 0}).json()
        rate(server, reply["id"])
    out = tmp_path / "pairs.jsonl"
    result = run_cli("feedback", "export", db, "--out", out, "--adapter",
                     "lora_sentiment_bert_r4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 40 rows -> {out}"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["text"] for r in rows} == set(texts) and {r["label"] for r in rows} <= {"neg",
                                                                                     "pos"}
    train = run_cli("train", "--no-progress", "--output", tmp_path / "cls-run",
                    "--set", f"model.name={tiny}", "--set", f"data.train={out}",
                    "--set", "model.labels=[neg, pos]",
                    "--set", "training.epochs=1", "--set", "lora.r=2")
    assert train.returncode == 0, train.stderr
    assert list((tmp_path / "cls-run").glob("lora_*/adapter_model.safetensors"))

    ner = tmp_path / "ner.jsonl"
    assert run_cli("feedback", "export", db, "--out", ner, "--adapter", "ner").returncode == 0
    assert json.loads(ner.read_text())["tokens"] == ["alice", "in", "paris"]

    lm = tmp_path / "lm.jsonl"
    mixed = run_cli("feedback", "export", db, "--out", lm, "--adapter", "chat")
    assert mixed.returncode == 2 and "choose one with --kind" in mixed.stderr
    assert run_cli("feedback", "export", db, "--out", lm, "--adapter", "chat", "--kind",
                   "completion").returncode == 0
    rows = [json.loads(line) for line in lm.read_text().splitlines()]
    assert len(rows) == 12 and rows[0]["prompt"] == "order 0 pizzas" and "response" in rows[0]
    train = run_cli("train", "--no-progress", "--output", tmp_path / "lm-run",
                    "--set", "model.task=causal_lm", "--set", f"model.name={llama}",
                    "--set", f"data.train={lm}", "--set", "training.epochs=1",
                    "--set", "lora.r=2", "--set", "model.max_length=64")
    assert train.returncode == 0, train.stderr
    assert list((tmp_path / "lm-run").glob("lora_*/adapter_model.safetensors"))


def test_export_user_errors(setup, tmp_path):
    root, tiny, llama, models = setup
    missing = run_cli("feedback", "export", tmp_path / "none.sqlite", "--out", tmp_path / "o")
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("feedback database not found: "
                                           f"{tmp_path / 'none.sqlite'}")
    db = root / "killed.sqlite"
    several = run_cli("feedback", "export", db, "--out", tmp_path / "o.jsonl", "--rating",
                      "down", "--adapter", "nope")
    assert several.returncode == 2 and "no 'down' ratings for adapter 'nope'" in several.stderr
    assert not (tmp_path / "o.jsonl").exists()
