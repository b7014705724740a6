"""`loralab serve` fuzzed from its own OpenAPI schema (schemathesis, issue 20 item 8).

A real server on 127.0.0.1 and a free port serves a tiny encoder's adapters of every task, a
tiny causal LM's adapters and both base models; schemathesis generates requests for every
operation of `/openapi.json` (valid and invalid bodies) and checks each answer: never a 5xx,
a status the schema declares for that route, a declared content type, and a body matching
the declared schema (OpenAI's error object for every 4xx).

Bounded: MAX_EXAMPLES (40) examples per operation (13 operations), no deadline; the file
runs in well under three minutes on one core. Half of the generated model / adapter names are
replaced by served ones so that requests reach the engines instead of stopping at a 404.
Failures found here and fixed are rows of tests/bad_input_cases.py (REQUESTS).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

import zlib  # noqa: E402

import httpx  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import checks  # noqa: E402
from serving_helpers import build_models_dir, running_server  # noqa: E402

from conftest import build_tiny_encoder, build_tiny_llama  # noqa: E402

MAX_EXAMPLES = 40
TOKEN = "fuzz-admin-token"     # admin routes are fuzzed too (paths, names, rescans)
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]
ENCODER_ADAPTERS = ["three", "score", "ner", "plain_peft", "lora_sentiment_bert_r4"]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-fuzz")
    tiny = build_tiny_encoder(root / "tiny-bert", "bert")
    tiny_lm = build_tiny_llama(root / "tiny-llama")
    models = build_models_dir(root, tiny, tiny_lm)
    (root / "token").write_text(TOKEN)
    with running_server(models, "--admin-token-file", str(root / "token"),
                        "--base", str(tiny), "--base", str(tiny_lm), "--max-rows", "8",
                        "--max-tokens", "8", "--max-input-chars", "200",
                        "--max-batch-size", "8") as server:
        server.schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        server.served = {"encoder": ENCODER_ADAPTERS + [str(tiny)],
                         "causal": ["chat", "mlp", str(tiny_lm)]}
        yield server


# response_format is sent: a generated format is a 400 (type, schema) or a constrained answer
UNSUPPORTED = ("logprobs", "echo", "best_of", "suffix", "tools",
               "presence_penalty", "frequency_penalty", "max_tokens", "max_completion_tokens")


def stable_hash(value: str) -> int:
    """The same number in every process (str hashes are salted per process, which made the
    choice of aimed requests, and so the reached routes, differ from run to run)."""
    return zlib.crc32(value.encode("utf-8", "surrogatepass"))


def aim(case, served: dict[str, list[str]]) -> None:
    """Point about half of the generated requests at served models of the right kind (and,
    for generation, without the fields this server refuses), so that they reach the engines
    instead of stopping at a 404 or a 400."""
    def fix(body, generation):
        if not isinstance(body, dict) or stable_hash(repr(sorted(map(str, body)))) % 2:
            return
        names = served["causal" if generation else "encoder"]
        for key in ("model", "adapter"):
            if isinstance(body.get(key), str):
                body[key] = names[stable_hash(body[key]) % len(names)]
        if generation:
            for key in UNSUPPORTED:
                body.pop(key, None)
            body["max_tokens"] = 4
        if isinstance(body.get("requests"), list):
            for item in body["requests"]:
                fix(item, False)
    fix(case.body, "completions" in case.operation.label)


def operations(api):
    return [result.ok() for result in api.schema.get_all_operations()]


def test_every_answer_is_declared_and_never_a_5xx(api):
    ops = operations(api)
    assert len(ops) >= 13, [op.label for op in ops]
    statuses: dict[str, dict[int, int]] = {op.label: {} for op in ops}
    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def answered_as_declared(case):
            aim(case, api.served)
            response = case.call_and_validate(base_url=api.url, checks=CHECKS, timeout=30,
                                              headers={"Authorization": f"Bearer {TOKEN}"})
            seen = statuses[case.operation.label]
            seen[response.status_code] = seen.get(response.status_code, 0) + 1

        answered_as_declared()
    print(statuses)
    assert httpx.get(api.url + "/health").status_code == 200
    reached = {label for label, seen in statuses.items() if any(s < 300 for s in seen)}
    assert {"POST /v1/classify", "POST /v1/completions", "POST /v1/chat/completions",
            "POST /v1/embeddings"} <= reached, statuses
