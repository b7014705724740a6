"""(c) of benchmarks/serving.py: generation under concurrent clients, continuous batching.

4 SmolLM2-135M adapters (r16 on q/k/v/o/gate/up/down, random non-zero B) in one MODELS_DIR;
for each client count of --gen-clients (16,64), that many concurrent clients send
--gen-per-client completions each (greedy, 32 tokens, adapter i mod 4) to `loralab serve`,
streamed, so the time to the first token (TTFT) is measured per request. Printed: generated
tokens/s, TTFT p50 / p99, latency p50 / p99, errors, and the decode steps the server ran (from
its /metrics: rows per decode step, mean and max, over the whole run and until the last request
was sent, i.e. without the drain at the end) against the number of clients. The naive
server (benchmarks/naive_server.py: `set_adapter` + `generate`, one request at a time) serves
the first client count once: its throughput does not depend on the number of clients.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
from serving_load import load_test, start, stop, write_models

PROMPTS = ["Write a haiku about the sea.", "List three prime numbers.",
           "What is the capital of France?", "Explain LoRA in one sentence."]
TOKENS = 32


def bodies(count: int) -> list[dict]:
    return [{"model": f"a{i % 4}", "prompt": PROMPTS[i % 4], "max_tokens": TOKENS,
             "temperature": 0} for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


async def streamed_load(url: str, requests: list[dict], clients: int) -> dict:
    """Every request streamed; TTFT = time to the first chunk carrying text. `busy_steps`:
    the server's decode-step counters when the last request was sent (every client had a
    request in flight until then; after it, the run drains)."""
    queue: asyncio.Queue = asyncio.Queue()
    busy_steps: tuple[int, float, str] | None = None
    for body in requests:
        queue.put_nowait({**body, "stream": True, "stream_options": {"include_usage": True}})
    ttft, latency, errors, tokens = [], [], 0, 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:
        async def worker():
            nonlocal errors, tokens, busy_steps
            while not queue.empty():
                body = queue.get_nowait()
                if queue.empty():
                    busy_steps = parse_steps((await client.get("/metrics")).text)
                started, first, used = time.perf_counter(), None, None
                try:
                    async with client.stream("POST", "/v1/completions", json=body) as reply:
                        async for line in reply.aiter_lines():
                            if not line.startswith("data: {"):
                                continue
                            chunk = json.loads(line[6:])
                            if first is None and chunk.get("choices") and \
                                    chunk["choices"][0].get("text"):
                                first = time.perf_counter()
                            used = chunk.get("usage") or used
                    ok = reply.status_code == 200 and used is not None
                except httpx.HTTPError:
                    ok = False
                errors += not ok
                if ok:
                    tokens += used["completion_tokens"]
                    latency.append(time.perf_counter() - started)
                    ttft.append((first or time.perf_counter()) - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    ms = 1000.0
    return {"requests": len(requests), "tokens_per_s": tokens / wall, "errors": errors,
            "ttft_p50": statistics.median(ttft) * ms, "ttft_p99": percentile(ttft, 0.99) * ms,
            "p50": statistics.median(latency) * ms, "p99": percentile(latency, 0.99) * ms,
            "busy_steps": busy_steps}


def ours(models: Path, workdir: Path, clients: int, per_client: int, port: int) -> dict:
    server = start([sys.executable, "-m", "loralab", "serve", str(models), "--port", str(port),
                    "--feedback-db", str(workdir / f"fb{clients}.sqlite")],
                   workdir / f"ours{clients}.log", f"http://127.0.0.1:{port}/ready")
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(streamed_load(url, bodies(4), 4))            # warm-up, not counted
        warm = steps(url)
        result = asyncio.run(streamed_load(url, bodies(clients * per_client), clients))
        count, total, top = steps(url)
        result["steps"] = count - warm[0]
        result["rows_per_step"] = (total - warm[1]) / max(1, count - warm[0])
        result["max_rows"] = top
        busy = result.pop("busy_steps") or (count, total, top)
        result["busy_rows_per_step"] = (busy[1] - warm[1]) / max(1, busy[0] - warm[0])
        result["busy_steps"] = busy[0] - warm[0]
    finally:
        stop(server)
    return result


def steps(url: str) -> tuple[int, float, str]:
    return parse_steps(httpx.get(url + "/metrics").text)


def parse_steps(text: str) -> tuple[int, float, str]:
    """(decode steps, rows summed over them, the smallest bucket holding them all), read
    from the server's loralab_batch_rows histogram (kind "generate": one per decode step)."""
    from prometheus_client.parser import text_string_to_metric_families

    count, total, buckets = 0, 0.0, []
    for family in text_string_to_metric_families(text):
        if family.name != "loralab_batch_rows":
            continue
        for sample in family.samples:
            if sample.labels.get("kind") != "generate":
                continue
            if sample.name.endswith("_count"):
                count += int(sample.value)
            elif sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
    top = min((le for le, c in buckets if c >= count), default=0.0)
    return count, total, f"{top:g}"


def naive(models: Path, workdir: Path, clients: int, per_client: int, port: int) -> dict:
    command = [sys.executable, str(Path(__file__).parent / "naive_server.py"), str(models),
               "--port", str(port), "--causal"]
    server = start(command, workdir / "naive.log", f"http://127.0.0.1:{port}/ready")
    try:
        requests = [("/v1/completions", body) for body in bodies(clients * per_client)]
        return asyncio.run(load_test(f"http://127.0.0.1:{port}", requests, clients))
    finally:
        stop(server)


def generation_benchmark(args) -> None:
    workdir = Path(args.workdir)
    models = write_models(workdir / "smollm4", 4, causal=True)
    counts = [int(c) for c in str(args.gen_clients).split(",")]
    print(f"\n(c) generation, SmolLM2-135M, 4 adapters: {args.gen_per_client} greedy "
          f"completions of {TOKENS} tokens per client, streamed; clients {counts}")
    print(f"{'server':<28} {'clients':>7} {'tokens/s':>9} {'TTFT p50':>9} {'TTFT p99':>9} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'rows/step':>9} {'errors':>6}")
    results = {}
    for clients in counts:
        r = ours(models, workdir, clients, args.gen_per_client, 8751)
        results[clients] = r
        print(f"{'loralab serve':<28} {clients:>7} {r['tokens_per_s']:>9.1f} "
              f"{r['ttft_p50']:>9.0f} {r['ttft_p99']:>9.0f} {r['p50']:>8.0f} {r['p99']:>8.0f} "
              f"{r['rows_per_step']:>9.1f} {r['errors']:>6}")
        print(f"{'':<28} {'':>7} {r['steps']} decode steps, mean {r['rows_per_step']:.1f} "
              f"rows = {r['rows_per_step'] / clients:.2f} x clients, all <= {r['max_rows']}; "
              f"until the last request was sent: {r['busy_steps']} steps, mean "
              f"{r['busy_rows_per_step']:.1f} rows = {r['busy_rows_per_step'] / clients:.2f} "
              "x clients")
    first = counts[0]
    theirs = naive(models, workdir, first, args.gen_per_client, 8752)
    print(f"{'naive (1 at a time)':<28} {first:>7} {theirs['tokens_per_s']:>9.1f} "
          f"{'-':>9} {'-':>9} {theirs['p50']:>8.0f} {theirs['p99']:>8.0f} {1.0:>9.1f} "
          f"{theirs['errors']:>6}")
    for clients, r in results.items():
        print(f"ratio at {clients} clients (tokens/s, loralab / naive at {first}): "
              f"{r['tokens_per_s'] / theirs['tokens_per_s']:.2f}x")
