"""Load tests of benchmarks/serving.py: real servers as subprocesses, real HTTP clients.

(b) http:     16 MiniLM-L6 adapters (r16, random non-zero B, own heads) in one MODELS_DIR;
              --clients concurrent clients (32) send --requests classify requests (10,000),
              each one MRPC pair for adapter i mod 16, to `loralab serve` and then to the naive
              server (benchmarks/naive_server.py: one request at a time, PEFT set_adapter),
              started the same way; requests/s, p50/p99 latency, errors, and the ratio.
(c) generate: 4 SmolLM2-135M adapters (r16 on q/k/v/o/gate/up/down); --gen-clients (16)
              concurrent clients send --gen-requests (64) greedy completions of 32 tokens;
              generated tokens/s, latency, the decode batch sizes the server reached (from its
              /metrics), against the naive server.
The client runs on the same machine as the server (2 cores here): both servers pay for it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def write_models(folder: Path, count: int, causal: bool) -> Path:
    from serving import MINILM, MINILM_HEADS, MINILM_TARGETS, peft_with_adapters

    if folder.is_dir() and len(list(folder.glob("*/adapter_config.json"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if causal:
        from loralab.config import validate_config
        from loralab.models.causal import load_causal_model

        name = "HuggingFaceTB/SmolLM2-135M-Instruct"
        base = load_causal_model(validate_config({"model": {"name": name,
                                                            "task": "causal_lm"}}))
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                   "down_proj"]
        peft = peft_with_adapters(base, count, targets, None, "CAUSAL_LM")
    else:
        import transformers

        from loralab.models.sources import resolve_model_source

        name = MINILM
        base = transformers.AutoModelForSequenceClassification.from_pretrained(
            resolve_model_source(name), num_labels=2)
        peft = peft_with_adapters(base, count, MINILM_TARGETS, MINILM_HEADS, "SEQ_CLS")
    for i in range(count):
        adapter = f"a{i}"
        peft.peft_config[adapter].base_model_name_or_path = name
        tmp = folder / ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        peft.save_pretrained(str(tmp), selected_adapters=[adapter], save_embedding_layers=False)
        shutil.move(str(next(tmp.rglob("adapter_config.json")).parent), str(folder / adapter))
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def start(command: list[str], log: Path, ready: str, timeout: float = 600):
    handle = open(log, "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"not ready: {log.read_text()[-2000:]}")


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


async def load_test(url: str, bodies: list[tuple[str, dict]], clients: int) -> dict:
    latencies: list[float] = []
    errors = 0
    tokens = 0
    queue: asyncio.Queue = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:
        async def worker():
            nonlocal errors, tokens
            while not queue.empty():
                path, body = queue.get_nowait()
                started = time.perf_counter()
                try:
                    reply = await client.post(path, json=body)
                    ok = reply.status_code == 200
                    if ok and "usage" in reply.json():
                        tokens += reply.json()["usage"]["completion_tokens"]
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(bodies), "seconds": wall, "rps": len(bodies) / wall,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1000, "errors": errors,
            "tokens": tokens, "tokens_per_s": tokens / wall, "latencies": latencies}


def batch_sizes(url: str, kind: str) -> str:
    text = httpx.get(url + "/metrics").text
    count = re.search(rf'loralab_batch_rows_count{{engine="[^"]*",kind="{kind}"}} (\S+)', text)
    total = re.search(rf'loralab_batch_rows_sum{{engine="[^"]*",kind="{kind}"}} (\S+)', text)
    buckets = re.findall(rf'loralab_batch_rows_bucket{{engine="[^"]*",kind="{kind}",'
                         rf'le="([^"]+)"}} (\S+)', text)
    if not count:
        return "no batches"
    n = float(count.group(1))
    top = next((le for le, c in buckets if float(c) == n), "?")
    return f"{int(n)} batches, mean {float(total.group(1)) / n:.1f} rows, all <= {top} rows"


def run_pair(models: Path, bodies, clients: int, workdir: Path, causal: bool, kind: str):
    port = 8741
    ours = start([sys.executable, "-m", "loralab", "serve", str(models), "--port", str(port),
                  "--feedback-db", str(workdir / "fb.sqlite")], workdir / "ours.log",
                 f"http://127.0.0.1:{port}/ready")
    try:
        mine = asyncio.run(load_test(f"http://127.0.0.1:{port}", bodies, clients))
        mine["batches"] = batch_sizes(f"http://127.0.0.1:{port}", kind)
    finally:
        stop(ours)
    naive_cmd = [sys.executable, str(Path(__file__).parent / "naive_server.py"), str(models),
                 "--port", str(port + 1), *(["--causal"] if causal else [])]
    naive = start(naive_cmd, workdir / "naive.log", f"http://127.0.0.1:{port + 1}/ready")
    try:
        theirs = asyncio.run(load_test(f"http://127.0.0.1:{port + 1}", bodies, clients))
    finally:
        stop(naive)
    return mine, theirs


def merged(parts: list[dict]) -> dict:
    """One result of load_test over several chunks (latencies: the chunks' medians and p99s
    weighted by requests would be wrong, so they are recomputed from the raw lists)."""
    latencies = sorted(x for p in parts for x in p["latencies"])
    wall = sum(p["seconds"] for p in parts)
    requests = sum(p["requests"] for p in parts)
    tokens = sum(p["tokens"] for p in parts)
    return {"requests": requests, "seconds": wall, "rps": requests / wall,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
            "errors": sum(p["errors"] for p in parts), "tokens": tokens,
            "tokens_per_s": tokens / wall}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_interleaved(models: Path, bodies, clients: int, workdir: Path, chunks: int = 5,
                    port: int = 8741):
    """Both servers up at once (the idle one costs no CPU); the requests in `chunks` parts,
    each sent to loralab serve and then to the naive server (order alternating), so both
    meet the same load from the machine's other jobs."""
    ours = start([sys.executable, "-m", "loralab", "serve", str(models), "--port", str(port),
                  "--feedback-db", str(workdir / "fb.sqlite")], workdir / "ours.log",
                 f"http://127.0.0.1:{port}/ready")
    naive = None
    try:
        naive = start([sys.executable, str(Path(__file__).parent / "naive_server.py"),
                       str(models), "--port", str(port + 1)], workdir / "naive.log",
                      f"http://127.0.0.1:{port + 1}/ready")
        urls = {"ours": f"http://127.0.0.1:{port}", "naive": f"http://127.0.0.1:{port + 1}"}
        parts: dict[str, list[dict]] = {"ours": [], "naive": []}
        size = -(-len(bodies) // chunks)
        pids = {"ours": ours.pid, "naive": naive.pid}
        cpu = {"ours": 0.0, "naive": 0.0}
        for i in range(chunks):
            chunk = bodies[i * size:(i + 1) * size]
            for name in (("ours", "naive") if i % 2 == 0 else ("naive", "ours")):
                used = cpu_seconds(pids[name])
                parts[name].append(asyncio.run(load_test(urls[name], chunk, clients)))
                cpu[name] += cpu_seconds(pids[name]) - used
        mine, theirs = merged(parts["ours"]), merged(parts["naive"])
        mine["batches"] = batch_sizes(urls["ours"], "logits")
        for result, name in ((mine, "ours"), (theirs, "naive")):
            result["cpu_ms"] = 1000 * cpu[name] / result["requests"]
    finally:
        stop(ours)
        if naive is not None:
            stop(naive)
    return mine, theirs


def show(title: str, mine: dict, theirs: dict, rate: str) -> None:
    print(f"\n{title}")
    print(f"{'server':<34} {'req/s':>8} {'tokens/s':>9} {'p50 ms':>8} {'p99 ms':>9} "
          f"{'errors':>6}")
    for name, r in (("loralab serve", mine), ("naive (1 at a time, set_adapter)", theirs)):
        print(f"{name:<34} {r['rps']:>8.1f} {r['tokens_per_s']:>9.1f} {r['p50']:>8.1f} "
              f"{r['p99']:>9.1f} {r['errors']:>6}")
    print(f"ratio ({rate}): {mine[rate] / theirs[rate]:.2f}x; loralab batches: "
          f"{mine['batches']}; {mine['requests']} requests")


def plain_headroom(pairs: list[tuple[str, str]], rows: int = 64) -> float:
    """Plain MiniLM-L6 (no adapter) rows/s at batch `rows` over rows/s one pair at a time:
    the figure printed before (an upper bound that ignores LoRA on both sides)."""
    import transformers
    from serving import MINILM, interleaved

    from loralab.models.sources import resolve_model_source

    source = resolve_model_source(MINILM)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(source).eval()
    chosen = pairs[:rows]
    singles = [tokenizer(a, b, return_tensors="pt") for a, b in chosen]
    batch = tokenizer([a for a, _ in chosen], [b for _, b in chosen], padding=True,
                      return_tensors="pt")
    with torch.inference_mode():
        seconds = interleaved({"one": lambda: [model(**s) for s in singles],
                               "batch": lambda: model(**batch)}, rounds=3)
    return seconds["one"] / seconds["batch"]


def batching_headroom(models: Path, bodies: list[tuple[str, dict]], batch: int,
                      rows: int = 64, rounds: int = 7) -> dict[str, float]:
    """In-process, the same `rows` requests (16 adapters mixed) through the two servers'
    compute paths, no HTTP: loralab's engine (the route's per-request encode, then
    EncoderEngine.run on batches of `batch` rows, what `batch` clients can fill) against the
    naive server's classify_one (set_adapter + tokenise + forward, one request at a time).
    Returns rows/s of each and their ratio: the most batching can give this server here."""
    import naive_server

    from loralab.serving.adapter_registry import AdapterRegistry

    registry = AdapterRegistry(models, torch.device("cpu"), 64)
    registry.rescan()
    chosen = [body for _, body in bodies[:rows]]
    model, tokenizer = naive_server.load(models, causal=False)

    def ours() -> None:
        for start in range(0, rows, batch):
            engine_rows = []
            for body in chosen[start:start + batch]:
                entry = registry.adapters[body["adapter"]]
                records = [{"text": i["text"], "text_pair": i.get("text_pair")}
                           for i in body["inputs"]]
                features = entry.info.task.encode(records, entry.tokenizer, entry.info.labels,
                                                  entry.info.config.model.max_length)
                engine_rows += entry.engine.make_rows("classify", features, entry.slot,
                                                      entry.info.width)
            entry.engine.run("logits", engine_rows)

    def naive() -> None:
        for body in chosen:
            naive_server.classify_one(model, tokenizer, body)

    wall, cpu = timed_rounds({"ours": ours, "naive": naive}, rounds)
    return {"ours": rows / wall["ours"], "naive": rows / wall["naive"],
            "ratio": wall["naive"] / wall["ours"], "cpu_ratio": cpu["naive"] / cpu["ours"]}


def timed_rounds(variants: dict, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall seconds and median process CPU seconds per call, round-robin after three
    warm-up passes (CPU time moves less than wall time when other jobs take the cores)."""
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for _ in range(3):           # the naive path runs slow for its first passes (measured)
            for fn in variants.values():
                fn()
        for _ in range(rounds):
            for name, fn in variants.items():
                started, used = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - used)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def http_benchmark(args) -> None:
    from serving import mrpc_pairs

    sys.path.insert(0, str(Path(__file__).parent))
    workdir = Path(args.workdir)
    models = write_models(workdir / "minilm16", 16, causal=False)
    pairs = mrpc_pairs(408)
    bodies = [("/v1/classify", {"adapter": f"a{i % 16}", "inputs": [
        {"text": pairs[i % len(pairs)][0], "text_pair": pairs[i % len(pairs)][1]}]})
        for i in range(args.requests)]
    print(f"torch {torch.__version__}; {args.clients} clients, {args.requests} requests over "
          f"16 adapters, one MRPC pair each; load average {loadavg()}")
    mine, theirs = run_interleaved(models, bodies, args.clients, workdir, port=args.port)
    show("(b) HTTP classify, MiniLM-L6, 16 adapters", mine, theirs, "rps")
    print(f"server CPU per request (all its threads; moves less than wall time with other "
          f"jobs on the machine): loralab {mine['cpu_ms']:.1f} ms, naive "
          f"{theirs['cpu_ms']:.1f} ms = {theirs['cpu_ms'] / mine['cpu_ms']:.2f}x; load average "
          f"after the HTTP runs: {loadavg()}")
    batch = min(args.clients, 64)
    head = batching_headroom(models, bodies, batch)
    ratio = mine["rps"] / theirs["rps"]
    print(f"batching headroom (in-process, same 64 requests, no HTTP): loralab's engine at "
          f"batch {batch} {head['ours']:.1f} rows/s vs the naive server's classify_one one at "
          f"a time {head['naive']:.1f} rows/s = {head['ratio']:.2f}x (CPU time: "
          f"{head['cpu_ratio']:.2f}x); load average {loadavg()}")
    print(f"HTTP ratio / headroom: {ratio:.2f} / {head['ratio']:.2f} = "
          f"{ratio / head['ratio']:.2f} (target >= 0.85)")
    plain = plain_headroom(pairs)
    print(f"(plain base model, no LoRA, batch 64 vs one pair at a time: {plain:.2f}x; "
          f"ratio / that = {ratio / plain:.2f}); load average {loadavg()}")


def generation_benchmark(args) -> None:
    workdir = Path(args.workdir)
    models = write_models(workdir / "smollm4", 4, causal=True)
    prompts = ["Write a haiku about the sea.", "List three prime numbers.",
               "What is the capital of France?", "Explain LoRA in one sentence."]
    bodies = [("/v1/completions", {"model": f"a{i % 4}", "prompt": prompts[i % 4],
                                   "max_tokens": 32, "temperature": 0})
              for i in range(args.gen_requests)]
    print(f"\n{args.gen_clients} clients, {args.gen_requests} completions of 32 tokens "
          "over 4 SmolLM2 adapters, greedy")
    mine, theirs = run_pair(models, bodies, args.gen_clients, workdir, True, "generate")
    show("(c) generation, SmolLM2-135M, 4 adapters", mine, theirs, "tokens_per_s")
