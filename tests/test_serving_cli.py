"""`loralab serve` and `loralab feedback export` as commands: bad inputs exit 2 with one line
(the BAD_INPUTS table), a server with no adapters serves its --base models, and SIGTERM lets
the batch in flight finish."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serving_helpers import ServerProcess, make_adapter, running_server

from conftest import build_tiny_encoder, build_tiny_llama


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "loralab", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


# (arguments, words of the one-line message); {dir} is an existing empty folder, {file} a
# file that is not a database, {empty} an empty file, {missing} a path that does not exist
BAD_INPUTS = [
    (["serve", "{missing}"], "MODELS_DIR {missing} is not a folder"),
    (["serve", "{file}"], "is not a folder"),
    (["serve", "{dir}", "--port", "70000"], "--port 70000: expected 0..65535"),
    (["serve", "{dir}", "--max-batch-size", "0"], "must be at least 1"),
    (["serve", "{dir}", "--max-wait-ms", "soon"], "expected a number"),
    (["serve", "{dir}", "--device", "gpu"], "--device: device 'gpu': expected auto, cpu, cuda"),
    (["serve", "{dir}", "--admin-token-file", "{missing}"], "--admin-token-file"),
    (["serve", "{dir}", "--admin-token-file", "{empty}"], "is empty"),
    (["serve", "{dir}", "--base", "{missing}"], "cannot load model"),
    (["serve", "{dir}", "--feedback-db", "{dir}"], "is a folder"),
    (["serve", "{dir}", "--feedback-db", "{file}"], "is not an SQLite database"),
    (["serve", "{dir}", "--max-request-bytes", "0"], "must be at least 1"),
    (["feedback", "export", "{missing}", "--out", "{dir}/o.jsonl"],
     "feedback database not found"),
    (["feedback", "export", "{file}", "--out", "{dir}/o.jsonl"],
     "not a loralab feedback database"),
    (["feedback", "export", "{file}"], "the following arguments are required: --out"),
    (["feedback", "export", "{file}", "--out", "x", "--rating", "meh"], "invalid choice"),
]
if not __import__("torch").cuda.is_available():
    BAD_INPUTS.append((["serve", "{dir}", "--device", "cuda"], "has no CUDA GPU"))


@pytest.mark.parametrize("args,words", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, args, words):
    from loralab.cli import main

    places = {"dir": tmp_path / "models", "file": tmp_path / "notes.txt",
              "empty": tmp_path / "empty", "missing": tmp_path / "missing"}
    places["dir"].mkdir()
    places["file"].write_text("not a database\n")
    places["empty"].write_text("")
    try:
        code = main([a.format(**places) for a in args])
    except SystemExit as exc:                 # argparse's own errors (after its usage lines)
        code = exc.code
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    last = stderr.strip().splitlines()[-1]
    assert words.format(**places) in last and "Traceback" not in stderr
    assert not (places["dir"] / "o.jsonl").exists()


def test_a_user_error_from_the_real_command(tmp_path):
    result = run_cli("serve", tmp_path / "missing")
    assert result.returncode == 2
    assert result.stderr == f"loralab: error: MODELS_DIR {tmp_path / 'missing'} is not a " \
                            "folder\n"


def test_no_adapters_serves_the_base_models(tmp_path):
    tiny = build_tiny_encoder(tmp_path / "tiny-bert", "bert")
    llama = build_tiny_llama(tmp_path / "tiny-llama")
    empty = tmp_path / "models"
    empty.mkdir()
    with running_server(empty, "--base", str(tiny), "--base", str(llama)) as server:
        ids = [m["id"] for m in httpx.get(server.url + "/v1/models").json()["data"]]
        assert sorted(ids) == sorted([str(tiny), str(llama)])
        vectors = httpx.post(server.url + "/v1/embeddings",
                             json={"model": str(tiny), "input": "hello"}).json()["data"]
        assert len(vectors[0]["embedding"]) == 32
        reply = httpx.post(server.url + "/v1/completions", json={
            "model": str(llama), "prompt": "hi", "max_tokens": 3, "temperature": 0})
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] >= 1
        assert httpx.get(server.url + "/").status_code == 200
    with running_server(empty) as bare:
        assert httpx.get(bare.url + "/v1/models").json()["data"] == []


def test_sigterm_finishes_the_batch_in_flight(tmp_path):
    llama = build_tiny_llama(tmp_path / "tiny-llama")
    make_adapter(llama, tmp_path / "models" / "mlp", "causal_lm", r=8, seed=7,
                 targets=["gate_proj", "down_proj"])
    server = ServerProcess(tmp_path / "models").wait_ready()
    replies = []

    def ask():
        replies.append(httpx.post(server.url + "/v1/completions", timeout=120, json={
            "model": "mlp", "prompt": "a", "max_tokens": 240, "temperature": 0}))

    worker = threading.Thread(target=ask)
    try:
        worker.start()
        deadline = time.monotonic() + 30
        running = re.compile(r"loralab_batches_in_flight\{[^}]*\} 1\.0")
        while time.monotonic() < deadline and not running.search(   # its batch has started
                httpx.get(server.url + "/metrics").text):
            time.sleep(0.02)
        assert not replies                                    # ... and not finished
        server.process.send_signal(signal.SIGTERM)
        worker.join(120)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert server.process.wait(60) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    assert "Finished server process" in server.log.read_text()
    assert replies and replies[0].status_code == 200
    choice = replies[0].json()["choices"][0]
    assert choice["finish_reason"] == "length" and replies[0].json()["usage"][
        "completion_tokens"] == 240
