"""MLflow's tracking URI: the one rule for which store a run (or a study's parent run) uses,
and the check that a local store can be written before training starts."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from loralab.atomic import check_writable_dir
from loralab.config import Config

REMOTE = ("http", "https", "databricks", "databricks-uc", "uc")


def tracking_uri(config: Config) -> str:
    """training.tracking_uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the
    working folder (MLflow's file store is in maintenance mode; a path or file: URI still
    works)."""
    uri = config.training.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def local_folder(uri: str) -> Path | None:
    """The folder a local store writes into (None: a remote server, not checked here)."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).resolve().parent  # //// : absolute
    parsed = urlparse(uri)
    if parsed.scheme in REMOTE:
        return None
    if parsed.scheme == "file":
        return Path(parsed.path)
    return Path(uri) if not parsed.scheme or len(parsed.scheme) == 1 else None


def check_tracking_uri(uri: str) -> None:
    """Refuse (exit 2, one line) a local store that cannot be written."""
    folder = local_folder(uri)
    if folder is None:
        return
    check_writable_dir(folder, what="training.tracking_uri")
    if not uri.startswith("sqlite:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for by name
