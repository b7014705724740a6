"""`loralab serve` and `loralab feedback export`: argparse wiring (handlers import lazily)."""

from __future__ import annotations

import argparse
from pathlib import Path

from loralab.errors import UserError


def positive(kind: type, minimum: float = 1):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value
    return parse


def check_serve_extra() -> None:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"loralab serve needs {', '.join(missing)}: pip install 'loralab[serve]'")


def cmd_serve(args: argparse.Namespace) -> int:
    check_serve_extra()
    from loralab.serving.server import serve
    from loralab.serving.state import ServeSettings, admin_token

    models_dir = Path(args.models_dir)
    if not models_dir.is_dir():
        raise UserError(f"MODELS_DIR {models_dir} is not a folder")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: expected 0..65535")
    from loralab.models.placement import resolve_device

    try:
        resolve_device(args.device)
    except UserError as exc:
        raise UserError(f"--device: {exc}") from None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from loralab.serving.registry import base_config

    for name in args.base:                    # a wrong --base fails now, not in the background
        base_config(name)
    settings = ServeSettings(
        models_dir=models_dir.resolve(), host=args.host, port=args.port, device=args.device,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        admin_token=admin_token(args.admin_token_file),
        feedback_db=Path(args.feedback_db) if args.feedback_db else None,
        bases=list(args.base), max_input_chars=args.max_input_chars, max_rows=args.max_rows,
        max_tokens=args.max_tokens)
    return serve(settings)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from loralab.serving.feedback_export import export_feedback

    written = export_feedback(Path(args.db), Path(args.out), args.adapter, args.rating,
                              args.kind)
    print(f"wrote {written} rows -> {args.out}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="serve every adapter under a folder: classification, "
                                     "OpenAI-compatible generation, feedback, a web page")
    p.add_argument("models_dir", metavar="MODELS_DIR",
                   help="folder searched for adapter folders (loralab's lora_* and plain PEFT)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:N")
    p.add_argument("--base", action="append", default=[], metavar="NAME",
                   help="also serve this base model alone (hub id or folder; repeatable)")
    p.add_argument("--max-batch-size", type=positive(int), default=64,
                   help="rows per model batch (default 64)")
    p.add_argument("--max-wait-ms", type=positive(float, 0), default=5.0,
                   help="how long a batch waits for more requests (default 5 ms)")
    p.add_argument("--admin-token-file", metavar="FILE",
                   help="file holding the bearer token of the admin endpoints (or set "
                        "LORALAB_ADMIN_TOKEN); without one they are disabled")
    p.add_argument("--feedback-db", metavar="PATH",
                   help="SQLite file for ratings (default MODELS_DIR/feedback.sqlite)")
    p.add_argument("--max-input-chars", type=positive(int), default=20000,
                   help="longest input text accepted (default 20000 characters)")
    p.add_argument("--max-rows", type=positive(int), default=256,
                   help="most inputs (or generated sequences) per request (default 256)")
    p.add_argument("--threads", type=positive(int),
                   help="CPU threads for the models (default: torch's, one per core)")
    p.add_argument("--max-tokens", type=positive(int), default=2048,
                   help="largest max_tokens a generation request may ask for (default 2048)")
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
