"""Run the app on uvicorn: `loralab serve` ends up here.

uvicorn handles SIGTERM / SIGINT gracefully: it stops accepting connections, lets the
requests in flight finish (the batch being run included), then the app's shutdown closes
the micro-batchers and the feedback writer.
"""

from __future__ import annotations

import logging

from loralab.quiet import quiet_libraries
from loralab.serving.state import ServeSettings

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
