"""The real `openai` client against `loralab serve`: /v1/models, /v1/completions and
/v1/chat/completions, non-streaming and streaming, n / seed / stop / usage, errors in
OpenAI's shape, concurrent requests of different adapters in one decode batch (each equal
to that adapter generating alone through plain PEFT), and a disconnected stream dropped."""

from __future__ import annotations

import re
import threading

import httpx
import openai
import pytest
import torch
import transformers
from serving_helpers import build_models_dir, peft_alone, running_server

from conftest import build_tiny_encoder, build_tiny_llama


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-openai")
    tiny = build_tiny_encoder(root / "tiny-bert", "bert")
    llama = build_tiny_llama(root / "tiny-llama")
    models = build_models_dir(root, tiny, llama)
    with running_server(models, "--max-wait-ms", "40") as running:
        running.models, running.llama = models, llama
        running.client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused",
                                       max_retries=0, timeout=120)
        yield running


def greedy_alone(server, adapter, prompt, max_tokens, chat=False):
    """The oracle: the adapter alone through plain PEFT, transformers' generate, greedy."""
    tok = transformers.AutoTokenizer.from_pretrained(server.llama)
    model = peft_alone(server.llama, server.models / adapter, "causal_lm", None) if adapter \
        else transformers.AutoModelForCausalLM.from_pretrained(server.llama).eval()
    if chat:
        prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=not chat)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, top_k=None,
                             top_p=None, temperature=None, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_models_list_adapters_with_their_parent(server):
    models = {m.id: m for m in server.client.models.list().data}
    assert models["chat"].model_extra["parent"] == str(server.llama)
    assert models[str(server.llama)].model_extra["parent"] is None
    assert "three" in models


def test_completion_equals_the_adapter_alone(server):
    reply = server.client.completions.create(model="chat", prompt="hello there",
                                             max_tokens=12, temperature=0)
    assert reply.choices[0].text == greedy_alone(server, "chat", "hello there", 12)
    assert reply.choices[0].finish_reason in ("length", "stop")
    tok = transformers.AutoTokenizer.from_pretrained(server.llama)
    assert reply.usage.completion_tokens <= 12
    assert reply.usage.prompt_tokens == len(tok("hello there")["input_ids"])
    assert reply.id.startswith("cmpl-")


def test_streamed_completion_equals_the_whole_one(server):
    whole = server.client.completions.create(model="mlp", prompt="order pizza",
                                             max_tokens=16, temperature=0)
    chunks = list(server.client.completions.create(model="mlp", prompt="order pizza",
                                                   max_tokens=16, temperature=0, stream=True))
    assert len(chunks) > 2
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_chat_with_the_adapters_template_streaming_and_usage(server):
    reply = server.client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "book a flight"}], max_tokens=10,
        temperature=0)
    text = reply.choices[0].message.content
    assert text == greedy_alone(server, "chat", "book a flight", 10, chat=True)
    stream = server.client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "book a flight"}], max_tokens=10,
        temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens


def test_n_seed_and_stop(server):
    def sample():
        return [c.text for c in server.client.completions.create(
            model="chat", prompt="abc", max_tokens=8, temperature=1.0, top_p=0.9, n=3,
            seed=7).choices]

    first = sample()
    assert first == sample() and len(first) == 3 and len(set(first)) > 1
    greedy = server.client.completions.create(model="chat", prompt="abc", max_tokens=12,
                                              temperature=0).choices[0].text
    stop = greedy[3:5]
    cut = server.client.completions.create(model="chat", prompt="abc", max_tokens=12,
                                           temperature=0, stop=[stop]).choices[0]
    assert cut.text == greedy[: greedy.find(stop)] and cut.finish_reason == "stop"


def test_errors_come_in_openai_shape(server):
    with pytest.raises(openai.NotFoundError) as info:
        server.client.completions.create(model="nope", prompt="a", max_tokens=2)
    assert "unknown adapter or model 'nope'" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="logprobs is not supported"):
        server.client.completions.create(model="chat", prompt="a", max_tokens=2, logprobs=2)
    with pytest.raises(openai.BadRequestError, match="use /v1/classify"):
        server.client.chat.completions.create(model="three", messages=[
            {"role": "user", "content": "a"}])
    with pytest.raises(openai.APIStatusError) as info:
        server.client.completions.create(model="chat", prompt=" ", max_tokens=2)
    assert info.value.status_code == 422 and "prompt 1 is empty" in str(info.value)


def test_concurrent_requests_share_a_decode_batch(server):
    jobs = [("chat", "hello"), ("mlp", "book a flight"), (str(server.llama), "xyz"),
            ("chat", "order now"), ("mlp", "hi")]
    answers: dict[int, str] = {}

    def ask(i, model, prompt):
        answers[i] = server.client.completions.create(
            model=model, prompt=prompt, max_tokens=10, temperature=0).choices[0].text

    threads = [threading.Thread(target=ask, args=(i, m, p)) for i, (m, p) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for i, (model, prompt) in enumerate(jobs):
        adapter = None if model == str(server.llama) else model
        assert answers[i] == greedy_alone(server, adapter, prompt, 10), (model, prompt)
    metrics = httpx.get(server.url + "/metrics").text
    sizes = re.findall(r'loralab_batch_rows_bucket\{engine="[^"]*",kind="generate",le="1.0"\} '
                       r'(\d+)', metrics)
    total = re.findall(r'loralab_batch_rows_count\{engine="[^"]*",kind="generate"\} (\d+)',
                       metrics)
    assert int(total[0]) > int(sizes[0])    # at least one decode batch held several rows


def test_a_disconnected_stream_stops_generating(server):
    def tokens():
        text = httpx.get(server.url + "/metrics").text
        found = re.search(r'loralab_generated_tokens_total\{model="mlp"\} (\d+)', text)
        return float(found.group(1)) if found else 0.0

    before = tokens()
    with httpx.stream("POST", server.url + "/v1/completions", timeout=60, json={
            "model": "mlp", "prompt": "a", "max_tokens": 240, "temperature": 0,
            "stream": True}) as reply:
        lines = reply.iter_lines()
        for _ in range(3):
            next(lines)
    ok = server.client.completions.create(model="mlp", prompt="b", max_tokens=2,
                                          temperature=0)
    assert ok.choices[0].text is not None
    assert tokens() - before < 240          # greedy "a" on mlp runs 240 tokens if left alone
