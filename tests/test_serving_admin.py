"""The registry over HTTP: admin token (403 when disabled, 401 without / with a wrong token),
paths confined to MODELS_DIR (`../`, absolute paths and symlinks: 403), hot load / unload /
rescan while requests are in flight (never another adapter's answer), and a broken adapter
folder reported without stopping the server."""

from __future__ import annotations

import shutil
import threading

import httpx
import pytest
from serving_helpers import make_adapter, running_server

from conftest import build_tiny_encoder

TOKEN = "s3cret-token-for-tests"
TEXTS = ["the movie was good", "bad awful film", "john lives in paris"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-admin")
    tiny = build_tiny_encoder(root / "tiny", "bert")
    models = root / "models"
    for i, name in enumerate(["keep", "drop"]):
        make_adapter(tiny, models / name, "sequence_classification", labels=["a", "b", "c"],
                     seed=10 + i)
    spare = root / "spare"
    for i, name in enumerate(["late", "later", "outside"]):
        make_adapter(tiny, spare / name, "sequence_classification", labels=["p", "q"],
                     seed=20 + i)
    broken = models / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    return root, tiny, models, spare


def admin(server, method, path, token=TOKEN, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, server.url + path, headers=headers, timeout=60, **kwargs)


def classify(server, adapter, texts=TEXTS):
    return httpx.post(server.url + "/v1/classify", json={"adapter": adapter, "inputs": texts},
                      timeout=60)


def test_admin_endpoints_are_off_without_a_token(setup):
    root, tiny, models, spare = setup
    with running_server(models) as server:
        for method, path, body in [("POST", "/v1/adapters", {"path": "keep"}),
                                   ("DELETE", "/v1/adapters/keep", None),
                                   ("POST", "/v1/adapters/rescan", None)]:
            reply = admin(server, method, path, json=body)
            assert reply.status_code == 403
            assert "LORALAB_ADMIN_TOKEN" in reply.json()["error"]["message"]
        listing = httpx.get(server.url + "/v1/adapters").json()["data"]
        broken = next(a for a in listing if a["name"] == "broken")
        assert broken["status"] == "failed" and "not valid JSON" in broken["error"]
        assert classify(server, "keep").status_code == 200


@pytest.fixture(scope="module")
def server(setup):
    root, tiny, models, spare = setup
    token_file = root / "token.txt"
    token_file.write_text(TOKEN + "\n")
    with running_server(models, "--admin-token-file", str(token_file)) as running:
        yield running


def test_admin_needs_the_bearer_token(server):
    for token in (None, "wrong", TOKEN + "x"):
        reply = admin(server, "DELETE", "/v1/adapters/keep", token=token)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == "Bearer"
    assert classify(server, "keep").status_code == 200


def test_paths_must_stay_inside_models_dir(setup, server):
    root, tiny, models, spare = setup
    link = models / "escape"
    link.symlink_to(spare / "outside", target_is_directory=True)
    try:
        for path in ["../spare/outside", str(spare / "outside"), "escape",
                     "keep/../../spare/outside"]:
            reply = admin(server, "POST", "/v1/adapters", json={"path": path})
            assert reply.status_code == 403, (path, reply.text)
            assert "resolves outside MODELS_DIR" in reply.json()["error"]["message"]
        reply = admin(server, "POST", "/v1/adapters", json={"path": "nothing-here"})
        assert reply.status_code == 404
    finally:
        link.unlink()


def test_links_outside_models_dir_and_mismatched_weights_are_refused(setup, server):
    """A file inside an adapter folder that links outside MODELS_DIR is refused like a
    folder (403 on load, failed on rescan); weights that do not match adapter_config.json
    are listed as failed and never served (400 on load)."""
    import json

    root, tiny, models, spare = setup
    linked = models / "linked"
    linked.mkdir()
    for item in (spare / "late").iterdir():
        (linked / item.name).symlink_to(item) if item.name.endswith(".safetensors") else \
            shutil.copy(item, linked / item.name)
    wrong = models / "wrong_rank"
    shutil.copytree(spare / "later", wrong)
    config = json.loads((wrong / "adapter_config.json").read_text())
    (wrong / "adapter_config.json").write_text(json.dumps({**config, "r": config["r"] * 2}))
    try:
        reply = admin(server, "POST", "/v1/adapters", json={"path": "linked"})
        assert reply.status_code == 403 and "links outside MODELS_DIR" in reply.text
        reply = admin(server, "POST", "/v1/adapters", json={"path": "wrong_rank"})
        assert reply.status_code == 400 and "wrong_rank" in reply.text, reply.text
        result = admin(server, "POST", "/v1/adapters/rescan").json()
        assert "links outside MODELS_DIR" in result["failed"]["linked"]["error"]
        assert "wrong_rank" in result["failed"]
        listing = {a["name"]: a for a in httpx.get(server.url + "/v1/adapters").json()["data"]}
        assert listing["linked"]["status"] == listing["wrong_rank"]["status"] == "failed"
        for name in ("linked", "wrong_rank"):
            assert classify(server, name).status_code == 404
    finally:
        shutil.rmtree(linked)
        shutil.rmtree(wrong)


def hammer(server, adapter, expected, stop, errors, allowed_404=False, done=None):
    """Classify in a loop; record any answer that is not this adapter's own."""
    while not stop.is_set():
        reply = classify(server, adapter)
        if done is not None:
            done.append(reply.status_code)
        if reply.status_code == 404 and allowed_404:
            continue
        if reply.status_code != 200 or not same_answer(reply.json()["results"], expected):
            errors.append((adapter, reply.status_code, reply.text[:200]))


def same_answer(results, expected, tol=1e-5):
    """Labels exactly, numbers within float noise: a row batched with other rows may differ in
    the last digits of its scores (the batched matmul's summation order), never in its label."""
    if len(results) != len(expected):
        return False
    for got, want in zip(results, expected):
        if got.keys() != want.keys() or got["label"] != want["label"]:
            return False
        if not numbers_close(got, want, tol):
            return False
    return True


def numbers_close(got, want, tol):
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(numbers_close(got[k], want[k], tol) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(numbers_close(g, w, tol) for g, w in zip(got, want))
    if isinstance(want, float):
        return abs(got - want) <= tol
    return got == want


def test_hot_load_unload_and_rescan_under_load(setup, server):
    root, tiny, models, spare = setup
    keep = classify(server, "keep").json()["results"]
    drop = classify(server, "drop").json()["results"]
    stop, errors, done = threading.Event(), [], []
    workers = [threading.Thread(target=hammer, args=(server, "keep", keep, stop, errors)),
               threading.Thread(target=hammer, args=(server, "keep", keep, stop, errors)),
               threading.Thread(target=hammer, args=(server, "drop", drop, stop, errors, True,
                                                     done))]
    for worker in workers:
        worker.start()
    try:
        shutil.copytree(spare / "late", models / "late")
        reply = admin(server, "POST", "/v1/adapters", json={"path": "late", "name": "late"})
        assert reply.status_code == 201, reply.text
        assert reply.json()["labels"] == ["LABEL_0", "LABEL_1"] or reply.json()["labels"]
        late = classify(server, "late").json()["results"]
        assert admin(server, "DELETE", "/v1/adapters/drop").status_code == 200
        assert classify(server, "drop").status_code == 404
        shutil.copytree(spare / "later", models / "sub" / "later")
        rescanned = admin(server, "POST", "/v1/adapters/rescan").json()
        assert rescanned["loaded"] == ["later"] and "broken" in rescanned["failed"]
        later = classify(server, "later").json()["results"]   # may reuse drop's slot
        assert not same_answer(later, drop) and not same_answer(later, late)
        assert admin(server, "POST", "/v1/adapters", json={"path": "late"}).status_code == 409
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert errors == []
    assert 200 in done and 404 in done       # drop answered before, and 404 after, its unload
    assert same_answer(classify(server, "keep").json()["results"], keep)
    assert same_answer(classify(server, "late").json()["results"], late)
    assert admin(server, "DELETE", "/v1/adapters/drop").status_code == 404
