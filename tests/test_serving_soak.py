"""Soak under change (issue 18 item 10), small: benchmarks/serving_soak.py's own functions
against a real `loralab serve` subprocess on tiny random encoders — classify + feedback load
while one adapter is unloaded and reloaded every 0.2 s and rescans run; 0 5xx, 404s only for
that adapter inside its unload windows, feedback rows = acknowledged posts after SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from serving_helpers import ServerProcess, copy_tokenizer, make_adapter

from conftest import build_tiny_encoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import serving_soak  # noqa: E402

ADAPTERS = ["s0", "s1", "s2", "s3"]
TEXTS = [("good film", None), ("a long and rather boring evening", None),
         ("bad", None), ("the plot holds together", None)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("soak")
    tiny = build_tiny_encoder(root / "tiny", "bert")
    folder = root / "models"
    for seed, name in enumerate(ADAPTERS):
        adapter = make_adapter(tiny, folder / name, "sequence_classification",
                               labels=["neg", "pos"], seed=seed,
                               modules_to_save=["pooler", "classifier"])
        copy_tokenizer(tiny, adapter)
    return folder


def test_soak_under_unload_reload_and_rescan(models, tmp_path):
    token = tmp_path / "token"
    token.write_text(serving_soak.TOKEN + "\n", encoding="utf-8")
    db = tmp_path / "feedback.sqlite"
    server = ServerProcess(models, "--feedback-db", str(db), "--admin-token-file", str(token),
                           "--device", "cpu").wait_ready()
    try:
        bodies = serving_soak.classify_bodies(ADAPTERS, TEXTS, 1000)
        # rescan_every=0: a rescan in every cycle; the admin task always finishes the cycle
        # it is in when the clients are done, so one window and one rescan at least
        soak = asyncio.run(serving_soak.run_soak(server.url, bodies, "s1", clients=8,
                                                 feedback_every=3, period=0.2,
                                                 rescan_every=0.0))
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    rows = serving_soak.feedback_rows(db)
    assert serving_soak.failures(soak, rows) == [], serving_soak.report(soak, rows)
    classify = [c for c in soak.calls if c.kind == "classify"]
    assert len(classify) == 1000
    assert len(soak.windows) >= 1 and soak.rescans >= 1      # the churn really happened
    assert rows == soak.acknowledged > 0
    assert {c.status for c in classify} <= {200, 404}
    assert all(c.adapter == "s1" for c in classify if c.status == 404)
    assert len(serving_soak.report(soak, rows)) == 5


def test_the_checks_catch_what_they_must():
    """A 404 for another adapter, one outside every window, a 500, a failed reload and a lost
    feedback row are each reported."""
    call = serving_soak.Call
    soak = serving_soak.Soak("v", windows=[(10.0, 10.5)], admin=[("unload", 200),
                                                                  ("load", 201)])
    soak.calls = [call("classify", "v", 404, 10.2, 10.3), call("classify", "v", 200, 1, 2),
                  call("feedback", "v", 200, 2, 3)]
    assert serving_soak.failures(soak, 1) == []
    assert serving_soak.in_window(call("classify", "v", 404, 9.9, 9.96), soak.windows, 0.05)
    stray, errors = "404s not for 'v' while it was unloaded", "5xx or transport errors"
    cases = [(call("classify", "w", 404, 10.2, 10.3), stray),      # another adapter
             (call("classify", "v", 404, 11.0, 11.1), stray),      # outside every window
             (call("feedback", "v", 404, 10.2, 10.3), stray),      # not a classify
             (call("classify", "v", 500, 3, 4), errors),
             (call("classify", "v", 0, 3, 4), errors),
             (call("classify", "v", 422, 3, 4), "unexpected statuses")]
    for bad, expected in cases:
        soak.calls.append(bad)
        found = serving_soak.failures(soak, 1)
        soak.calls.pop()
        assert len(found) == 1 and expected in found[0], (bad, found)
    assert "feedback rows" in serving_soak.failures(soak, 0)[0]
    soak.admin.append(("load", 409))
    assert "admin calls failed" in serving_soak.failures(soak, 1)[0]


def test_a_client_that_leaves_is_dropped_from_the_next_batch(models):
    """unless_disconnected waits on the connection (no polling): a classify request whose
    client goes while another batch runs never reaches the model; its lease is released."""
    import socket
    import threading
    import time

    import httpx
    from test_serving_load import InProcessServer

    with InProcessServer(models) as server:
        engine = server.state.registry.adapters["s0"].engine
        seen: list[int] = []
        hook = engine.model.register_forward_hook(
            lambda _m, args, kw, _o: (seen.append(kw["input_ids"].shape[0]), time.sleep(1.0)),
            with_kwargs=True)
        try:
            slow = threading.Thread(target=httpx.post, args=(server.url + "/v1/classify",),
                                    kwargs={"json": {"adapter": "s0", "inputs": ["a b"]},
                                            "timeout": 30})
            slow.start()
            time.sleep(0.3)                                    # that batch runs now
            body = b'{"adapter": "s2", "inputs": ["one", "two", "three"]}'
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(b"POST /v1/classify HTTP/1.1\r\nhost: x\r\ncontent-type: "
                             b"application/json\r\ncontent-length: " +
                             str(len(body)).encode() + b"\r\n\r\n" + body)
                time.sleep(0.2)                                # admitted, queued
            slow.join(30)
            time.sleep(0.5)
            entry = server.state.registry.adapters["s2"]
            assert entry.engine.slots.refs.get(entry.slot, 0) == 0   # lease released
        finally:
            hook.remove()
    assert seen == [1], seen              # the 3 rows of the gone client never ran
