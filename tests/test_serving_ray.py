"""`loralab serve --ray`: loralab's engine in 2 Ray Serve replicas with adapter multiplexing,
on a local Ray instance started by the real CLI. Every one of 8 adapters answers exactly as a
single `loralab serve` does, adapters load on demand on the replica that receives them, a
replica never holds more than --max-adapters-per-replica, and a replica killed with SIGKILL is
replaced by Ray while requests keep being answered."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
from serving_helpers import make_adapter, running_server
from test_serving_admin import same_answer

from conftest import build_tiny_encoder

pytest.importorskip("ray.serve", reason="the ray-serve extra is not installed")
pytestmark = pytest.mark.slow

TEXTS = ["the movie was good", "bad awful film"]
ADAPTERS = [f"a{i}" for i in range(8)]
LIMIT = 3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-ray")
    tiny = build_tiny_encoder(root / "tiny", "bert")
    models = root / "models"
    for i, name in enumerate(ADAPTERS):
        make_adapter(tiny, models / name, "sequence_classification",
                     labels=["p", "q", "r"][: 2 + i % 2], seed=100 + i)
    return models


def classify(url, adapter):
    return httpx.post(url + "/v1/classify", json={"adapter": adapter, "inputs": TEXTS},
                      timeout=120)


@pytest.fixture(scope="module")
def single(models):
    with running_server(models) as server:
        return {name: classify(server.url, name).json()["results"] for name in ADAPTERS}


def replica_of(reply):
    tag = reply.headers["x-loralab-replica"]
    loaded = [n for n in reply.headers["x-loralab-loaded"].split(",") if n]
    return tag, loaded


def test_replicas_answer_like_one_server_and_multiplex_adapters(models, single):
    args = ("--ray", "--replicas", "2", "--max-adapters-per-replica", str(LIMIT),
            "--threads", "1")
    with running_server(models, *args) as server:
        seen: dict[str, set[str]] = {}
        for _ in range(2):
            for name in ADAPTERS:
                reply = classify(server.url, name)
                assert reply.status_code == 200, reply.text
                assert same_answer(reply.json()["results"], single[name]), name
                tag, loaded = replica_of(reply)
                assert name in loaded and len(loaded) <= LIMIT, (name, loaded)
                seen.setdefault(tag, set()).update(loaded)
        assert len(seen) == 2                          # both replicas served
        assert sum(len(names) for names in seen.values()) >= len(ADAPTERS)
        listing = httpx.get(server.url + "/v1/models", timeout=30).json()["data"]
        assert {m["id"] for m in listing} == set(ADAPTERS)
        unknown = classify(server.url, "nope")
        assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
        admin = httpx.delete(server.url + "/v1/adapters/a0", timeout=30)
        assert admin.status_code == 400 and "on demand" in admin.json()["error"]["message"]

        tag, _ = replica_of(classify(server.url, "a1"))
        os.kill(int(tag.rsplit("/", 1)[1]), signal.SIGKILL)
        answered, failed, deadline = 0, 0, time.monotonic() + 120
        tags = set()
        while time.monotonic() < deadline and (len(tags) < 2 or answered < 16):
            for name in ADAPTERS[:4]:
                try:
                    reply = classify(server.url, name)
                except httpx.HTTPError:
                    failed += 1
                    continue
                if reply.status_code == 200 and same_answer(reply.json()["results"],
                                                            single[name]):
                    answered += 1
                    tags.add(replica_of(reply)[0])
                else:
                    failed += 1
        print(f"after the SIGKILL: {answered} answered, {failed} failed, replicas {tags}")
        assert tag not in tags and len(tags) == 2      # the dead replica was replaced
        assert answered >= 16
