"""Soak under change: classify + feedback load while an adapter is unloaded and reloaded.

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/serving_soak.py --workdir bench_out/soak

A real `loralab serve` subprocess on the 16 MiniLM-L6 adapters of benchmark (b)
(benchmarks/serving_load.py writes them), with --feedback-db and --admin-token-file.
--clients concurrent clients (32) send --requests classify requests (10,000; adapter i mod 16,
one MRPC pair each) and rate every --feedback-every'th answer (POST /v1/feedback). Meanwhile an
admin task unloads one adapter (DELETE /v1/adapters/{name}) and loads it back (POST
/v1/adapters) every --period seconds (1), and runs POST /v1/adapters/rescan every
--rescan-every seconds (5). At the end the server is SIGKILLed and the rows of the feedback
SQLite file are counted.

Checks (exit 1 when one fails): no 5xx and no transport error; every non-200 is a 404 for the
churned adapter while it was unloaded (the request's send..answer interval meets an unload
window, DELETE sent .. reload answered, with --grace seconds either side); every admin call
succeeds; feedback rows in the database = feedback posts acknowledged with 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TOKEN = "soak-admin-token"


@dataclass
class Call:
    kind: str           # "classify" or "feedback"
    adapter: str
    status: int         # 0: transport error
    sent: float         # time.monotonic() before sending / after the answer
    answered: float


@dataclass
class Soak:
    """What the clients and the admin task saw."""
    victim: str
    calls: list[Call] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)   # unload .. reloaded
    admin: list[tuple[str, int]] = field(default_factory=list)         # (what, status)
    rescans: int = 0
    seconds: float = 0.0

    @property
    def acknowledged(self) -> int:
        return sum(c.kind == "feedback" and 200 <= c.status < 300 for c in self.calls)


# ---------------------------------------------------------------------------- the load
def classify_bodies(adapters: list[str], texts: list[tuple[str, str | None]],
                    count: int) -> list[dict]:
    """Request i: adapter i mod len(adapters), text (pair) i mod len(texts)."""
    bodies = []
    for i in range(count):
        text, pair = texts[i % len(texts)]
        item = {"text": text, "text_pair": pair} if pair is not None else text
        bodies.append({"adapter": adapters[i % len(adapters)], "inputs": [item]})
    return bodies


async def client_worker(client: httpx.AsyncClient, queue: asyncio.Queue, soak: Soak,
                        feedback_every: int) -> None:
    while not queue.empty():
        index, body = queue.get_nowait()
        sent = time.monotonic()
        try:
            reply = await client.post("/v1/classify", json=body)
            status = reply.status_code
        except httpx.HTTPError:
            status = 0
        soak.calls.append(Call("classify", body["adapter"], status, sent, time.monotonic()))
        if status != 200 or not feedback_every or index % feedback_every:
            continue
        sent = time.monotonic()
        try:
            rated = await client.post("/v1/feedback", json={
                "response_id": reply.json()["id"], "rating": "up" if index % 2 else "down"})
            status = rated.status_code
        except httpx.HTTPError:
            status = 0
        soak.calls.append(Call("feedback", body["adapter"], status, sent, time.monotonic()))


async def admin_task(client: httpx.AsyncClient, soak: Soak, stop: asyncio.Event,
                     period: float, rescan_every: float) -> None:
    """Unload and reload `soak.victim` every `period` s; a rescan every `rescan_every` s."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    last_rescan = time.monotonic()
    while not stop.is_set():
        cycle = time.monotonic()
        started = time.monotonic()
        gone = await client.delete(f"/v1/adapters/{soak.victim}", headers=auth)
        soak.admin.append(("unload", gone.status_code))
        await asyncio.sleep(period / 2)
        back = await client.post("/v1/adapters", headers=auth, json={"path": soak.victim})
        soak.admin.append(("load", back.status_code))
        soak.windows.append((started, time.monotonic()))
        if time.monotonic() - last_rescan >= rescan_every:
            rescanned = await client.post("/v1/adapters/rescan", headers=auth)
            ok = rescanned.status_code == 200 and not rescanned.json()["failed"] \
                and not rescanned.json()["loaded"]
            soak.admin.append(("rescan", 200 if ok else rescanned.status_code or 599))
            soak.rescans += 1
            last_rescan = time.monotonic()
        await asyncio.sleep(max(0.0, period - (time.monotonic() - cycle)))


async def run_soak(url: str, bodies: list[dict], victim: str, clients: int = 32,
                   feedback_every: int = 4, period: float = 1.0,
                   rescan_every: float = 5.0) -> Soak:
    soak = Soak(victim)
    queue: asyncio.Queue = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:
        admin = asyncio.ensure_future(admin_task(client, soak, stop, period, rescan_every))
        started = time.monotonic()
        await asyncio.gather(*(client_worker(client, queue, soak, feedback_every)
                               for _ in range(clients)))
        soak.seconds = time.monotonic() - started
        stop.set()
        await admin       # ends after its cycle: the victim is loaded again
    return soak


# ---------------------------------------------------------------------------- the checks
def in_window(call: Call, windows: list[tuple[float, float]], grace: float) -> bool:
    return any(call.sent <= end + grace and call.answered >= start - grace
               for start, end in windows)


def failures(soak: Soak, feedback_rows: int | None, grace: float = 0.05) -> list[str]:
    """One line per failed check (empty: every check passed)."""
    found = []
    errors = [c for c in soak.calls if c.status >= 500 or c.status == 0]
    if errors:
        found.append(f"{len(errors)} responses 5xx or transport errors "
                     f"({Counter(c.status for c in errors)})")
    stray = [c for c in soak.calls if c.status == 404 and
             (c.kind != "classify" or c.adapter != soak.victim
              or not in_window(c, soak.windows, grace))]
    if stray:
        found.append(f"{len(stray)} 404s not for {soak.victim!r} while it was unloaded "
                     f"(first: {stray[0]})")
    other = [c for c in soak.calls if c.status not in (0, 200, 404) and c.status < 500]
    if other:
        found.append(f"{len(other)} unexpected statuses ({Counter(c.status for c in other)})")
    wanted = {"unload": 200, "load": 201, "rescan": 200}
    bad = [(what, status) for what, status in soak.admin if status != wanted[what]]
    if bad:
        found.append(f"{len(bad)} admin calls failed (first: {bad[0]})")
    if not soak.windows:
        found.append("the adapter was never unloaded (the run ended before the first cycle)")
    if feedback_rows is not None and feedback_rows != soak.acknowledged:
        found.append(f"{feedback_rows} feedback rows in the database, {soak.acknowledged} "
                     "feedback posts acknowledged")
    return found


def feedback_rows(db: Path) -> int:
    with sqlite3.connect(str(db)) as connection:
        return connection.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]


def report(soak: Soak, rows: int | None) -> list[str]:
    classify = [c for c in soak.calls if c.kind == "classify"]
    latencies = sorted(c.answered - c.sent for c in classify)
    by_status = {kind: dict(sorted(Counter(c.status for c in soak.calls
                                           if c.kind == kind).items()))
                 for kind in ("classify", "feedback")}
    victim_404 = sum(c.status == 404 for c in classify)
    lines = [
        f"{len(soak.calls)} responses in {soak.seconds:.1f} s ({len(classify)} classify, "
        f"{len(soak.calls) - len(classify)} feedback): {len(classify) / soak.seconds:.1f} "
        "classify/s",
        f"classify by status: {by_status['classify']}; feedback by status: "
        f"{by_status['feedback']}",
        f"unload/reload cycles of {soak.victim!r}: {len(soak.windows)}, rescans: "
        f"{soak.rescans}; 404s (all for {soak.victim!r} inside an unload window unless "
        f"reported below): {victim_404}",
        f"classify latency p50 {statistics.median(latencies) * 1000:.1f} ms, p99 "
        f"{latencies[int(0.99 * (len(latencies) - 1))] * 1000:.1f} ms",
        f"feedback: {soak.acknowledged} posts acknowledged 2xx, {rows} rows in the database "
        "after SIGKILL"]
    return lines


# ---------------------------------------------------------------------------- the script
def start_server(models: Path, workdir: Path, port: int) -> tuple[subprocess.Popen, Path]:
    from serving_load import start

    db = workdir / "soak-feedback.sqlite"
    for leftover in workdir.glob("soak-feedback.sqlite*"):
        leftover.unlink()
    token = workdir / "admin-token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    process = start([sys.executable, "-m", "loralab", "serve", str(models), "--port",
                     str(port), "--feedback-db", str(db), "--admin-token-file", str(token)],
                    workdir / "soak-serve.log", f"http://127.0.0.1:{port}/ready")
    return process, db


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--feedback-every", type=int, default=4,
                        help="rate every Nth answered request (0: no feedback)")
    parser.add_argument("--period", type=float, default=1.0, help="seconds per unload/reload")
    parser.add_argument("--rescan-every", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=0.05)
    parser.add_argument("--port", type=int, default=8761)
    parser.add_argument("--workdir", default="bench_out/soak")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.clients < 1:
        print("serving_soak: --requests and --clients must be at least 1", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from serving import mrpc_pairs
    from serving_load import write_models

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    models = write_models(workdir / "minilm16", 16, causal=False)
    adapters = [f"a{i}" for i in range(16)]
    bodies = classify_bodies(adapters, list(mrpc_pairs(408)), args.requests)
    print(f"{args.clients} clients, {args.requests} classify requests over 16 MiniLM-L6 "
          f"adapters, feedback on every {args.feedback_every}th; 'a3' unloaded + reloaded "
          f"every {args.period} s, rescan every {args.rescan_every} s; load average "
          f"{loadavg()}", flush=True)
    process, db = start_server(models, workdir, args.port)
    try:
        soak = asyncio.run(run_soak(f"http://127.0.0.1:{args.port}", bodies, "a3",
                                    args.clients, args.feedback_every, args.period,
                                    args.rescan_every))
    finally:
        kill(process)
    rows = feedback_rows(db)
    for line in report(soak, rows):
        print(line)
    failed = failures(soak, rows, args.grace)
    for line in failed:
        print(f"FAIL: {line}")
    print(f"{'FAILED' if failed else 'all checks passed'}; load average {loadavg()}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
