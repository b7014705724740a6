"""The optional extras of export: the ONNX libraries (`loralab[export]`), named when one is
missing."""

from __future__ import annotations

import importlib

from loralab.errors import UserError

ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")


def require_onnx(what: str) -> None:
    """The ONNX libraries are an optional extra: name it when one is missing."""
    missing = []
    for module in ONNX_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UserError(f"{what} needs {', '.join(missing)} (not installed): "
                        "pip install 'loralab[export]'")
