"""Run the app on uvicorn: `loralab serve` ends up here (start_server checks its arguments,
serve runs the settings).

uvicorn handles SIGTERM / SIGINT gracefully: it stops accepting connections, lets the
requests in flight finish (the batch being run included), then the app's shutdown closes
the micro-batchers and the feedback writer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from loralab.errors import UserError
from loralab.models.library_logging import quiet_libraries
from loralab.serving.server_state import ServeSettings, admin_token

GRACEFUL_SECONDS = 60


def serve(settings: ServeSettings) -> int:
    import uvicorn

    from loralab.serving.app import create_app

    quiet_libraries()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s "
                                                   "%(message)s")
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                            access_log=False, timeout_graceful_shutdown=GRACEFUL_SECONDS)
    uvicorn.Server(config).run()
    return 0


def check_serve_extra() -> None:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"loralab serve needs {', '.join(missing)}: pip install 'loralab[serve]'")


def start_server(models_dir: str, *, host: str = "127.0.0.1", port: int = 8000,
                 device: str = "auto", bases: list[str] | None = None,
                 admin_token_file: str | None = None, feedback_db: str | None = None,
                 max_batch_size: int = 64, max_wait_ms: float = 5.0,
                 max_input_chars: int = 20000, max_rows: int = 256, max_tokens: int = 2048,
                 max_request_bytes: int = 8 * 1024 * 1024, threads: int | None = None,
                 ray: bool = False, replicas: int = 2, max_adapters_per_replica: int = 8,
                 ray_address: str | None = None) -> int:
    """`loralab serve MODELS_DIR ...`: every argument checked before anything loads; with
    `ray`, the same app in Ray Serve replicas (serving/ray_serve.py)."""
    check_serve_extra()
    if ray:
        from loralab.serving.ray_serve import check_ray_serve

        check_ray_serve()
    folder = Path(models_dir)
    if not folder.is_dir():
        raise UserError(f"MODELS_DIR {folder} is not a folder")
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: expected 0..65535")
    from loralab.models.placement import resolve_device

    try:
        resolve_device(device)
    except UserError as exc:
        raise UserError(f"--device: {exc}") from None
    if threads and not ray:
        import torch

        torch.set_num_threads(threads)
    from loralab.tasks import serving_base_config

    for name in bases or []:                # a wrong --base fails now, not in the background
        serving_base_config(name)
    from loralab.serving.feedback import check_feedback_db

    check_feedback_db(Path(feedback_db) if feedback_db else folder.resolve() / "feedback.sqlite")
    settings = ServeSettings(
        models_dir=folder.resolve(), host=host, port=port, device=device,
        max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
        admin_token=admin_token(admin_token_file),
        feedback_db=Path(feedback_db) if feedback_db else None, bases=list(bases or []),
        max_input_chars=max_input_chars, max_rows=max_rows, max_tokens=max_tokens,
        max_request_bytes=max_request_bytes)
    if ray:
        from loralab.serving.ray_serve import serve_on_ray

        return serve_on_ray(settings, replicas, max_adapters_per_replica, ray_address, threads)
    return serve(settings)
