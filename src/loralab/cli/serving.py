"""`loralab serve` and `loralab feedback export`."""

from __future__ import annotations

import argparse
from pathlib import Path

from loralab.cli.common import at_least


def cmd_serve(args: argparse.Namespace) -> int:
    from loralab.serving.server import start_server

    return start_server(
        args.models_dir, host=args.host, port=args.port, device=args.device, bases=args.base,
        admin_token_file=args.admin_token_file, feedback_db=args.feedback_db,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        max_input_chars=args.max_input_chars, max_rows=args.max_rows,
        max_tokens=args.max_tokens, max_request_bytes=args.max_request_bytes,
        threads=args.threads, ray=args.ray, replicas=args.replicas,
        max_adapters_per_replica=args.max_adapters_per_replica, ray_address=args.ray_address)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from loralab.serving.feedback_export import export_feedback

    written = export_feedback(Path(args.db), Path(args.out), args.adapter, args.rating,
                              args.kind)
    print(f"wrote {written} rows -> {args.out}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve every adapter under a folder: classification, "
                                     "OpenAI-compatible generation, feedback, a web page")
    p.add_argument("models_dir", metavar="MODELS_DIR",
                   help="folder searched for adapter folders (loralab's lora_* and plain PEFT)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:N")
    p.add_argument("--base", action="append", default=[], metavar="NAME",
                   help="also serve this base model alone (hub id or folder; repeatable)")
    p.add_argument("--max-batch-size", type=at_least(int), default=64,
                   help="rows per model batch (default 64)")
    p.add_argument("--max-wait-ms", type=at_least(float, 0), default=5.0,
                   help="how long a batch waits for more requests (default 5 ms)")
    p.add_argument("--admin-token-file", metavar="FILE",
                   help="file holding the bearer token of the admin endpoints (or set "
                        "LORALAB_ADMIN_TOKEN); without one they are disabled")
    p.add_argument("--feedback-db", metavar="PATH",
                   help="SQLite file for ratings (default MODELS_DIR/feedback.sqlite)")
    p.add_argument("--max-input-chars", type=at_least(int), default=20000,
                   help="longest input text accepted (default 20000 characters)")
    p.add_argument("--max-rows", type=at_least(int), default=256,
                   help="most inputs (or generated sequences) per request (default 256)")
    p.add_argument("--threads", type=at_least(int),
                   help="CPU threads for the models (default: torch's, one per core)")
    p.add_argument("--max-tokens", type=at_least(int), default=2048,
                   help="largest max_tokens a generation request may ask for (default 2048)")
    p.add_argument("--max-request-bytes", type=at_least(int), default=8 * 1024 * 1024,
                   help="largest request body accepted, refused with 413 before it is parsed "
                        "(default 8388608, 8 MiB)")
    add_ray_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("feedback", help="ratings collected by loralab serve")
    feedback_sub = p.add_subparsers(dest="feedback_command", required=True)
    q = feedback_sub.add_parser("export", help="rated responses as JSONL training data")
    q.add_argument("db", metavar="DB", help="the server's feedback database")
    q.add_argument("--out", required=True, help="JSONL file to write")
    q.add_argument("--adapter", help="only this adapter's ratings (needed when the database "
                                     "holds several)")
    q.add_argument("--rating", choices=["up", "down"], default="up",
                   help="which ratings to export (default up)")
    q.add_argument("--kind", choices=["classify", "completion", "chat"],
                   help="only ratings of this kind of response (needed when an adapter has "
                        "both completion and chat ratings)")
    q.set_defaults(func=cmd_feedback_export)


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    ray = p.add_argument_group("Ray Serve replicas (the ray-serve extra; docs/serving.md)")
    ray.add_argument("--ray", action="store_true",
                     help="serve in Ray Serve replicas behind one router, adapters multiplexed "
                          "(loaded on demand, least recently used evicted)")
    ray.add_argument("--replicas", type=at_least(int), default=2,
                     help="replicas of the engine with --ray (default 2)")
    ray.add_argument("--max-adapters-per-replica", type=at_least(int), default=8,
                     help="adapters one replica keeps loaded with --ray (default 8)")
    ray.add_argument("--ray-address", metavar="ADDRESS",
                     help="join this Ray cluster (default: RAY_ADDRESS, else a local one)")
