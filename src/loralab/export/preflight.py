"""Argument and folder checks for `export` and `verify`, run before anything is loaded or written:
a bad request costs a one-line error (exit 2), never a half-made folder."""

from __future__ import annotations

import os
from pathlib import Path

from loralab.errors import UserError
from loralab.export.extras import require_onnx
from loralab.export.folders import MODEL_EXPORT_MANIFEST

FORMATS = ("peft", "merged", "onnx")
DTYPES = ("fp32", "fp16", "bf16")
RUNTIMES = ("onnxruntime", "torch")
MIN_OPSET = 18  # the dynamo exporter writes opset 18 or newer


def check_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise UserError(f"{option}: unknown value {value!r}; choose {', '.join(choices)}")


def check_adapter_folder(path: Path, option: str = "ADAPTER_DIR") -> None:
    from loralab.tasks import read_adapter_metadata

    if not path.is_dir():
        raise UserError(f"{option} {path}: no such folder")
    read_adapter_metadata(path)  # a UserError naming what is missing


def check_writable(folder: Path, what: str) -> None:
    """`folder` (or its nearest existing parent) accepts new files."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{what} {folder}: cannot write there ({probe} is not a writable "
                        "folder)")


def check_output(output: Path, adapter: Path, overwrite: bool) -> None:
    """A new or empty folder, or (with --overwrite) a finished export; never the source."""
    target, source = output.resolve(), adapter.resolve()
    if target == source or target in source.parents:
        raise UserError(f"--output {output}: that would replace the adapter folder itself; "
                        "choose another folder")
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: is a file, not a folder")
    if output.is_dir() and (output / MODEL_EXPORT_MANIFEST).is_file():
        if not overwrite:
            raise UserError(f"--output {output} already holds a finished export "
                            f"({MODEL_EXPORT_MANIFEST}); choose another folder or pass --overwrite")
    elif output.is_dir() and any(output.iterdir()):
        raise UserError(f"--output {output} holds other files (it is not an export); choose a "
                        "new or empty folder")
    check_writable(output.parent, "--output")


def check_export_args(adapter: Path, fmt: str, output: Path, dtype: str, opset: int | None,
                      inputs: Path | None, atol: float | None, overwrite: bool) -> None:
    check_choice(fmt, FORMATS, "--format")
    check_choice(dtype, DTYPES, "--dtype")
    if fmt == "peft" and dtype != "fp32":
        raise UserError("--dtype is for merged and onnx exports: a peft export copies the "
                        "adapter's weights as they are")
    if opset is not None and (fmt != "onnx" or opset < MIN_OPSET):
        raise UserError(f"--opset is for --format onnx, {MIN_OPSET} or newer (the dynamo "
                        f"exporter's range); got {opset}")
    if fmt == "onnx" and dtype == "bf16":
        raise UserError("--format onnx --dtype bf16: ONNX Runtime's CPU provider has no bf16 "
                        "kernels to check the graph with; export fp16 or fp32")
    check_tolerance(atol)
    check_inputs_file(inputs)
    check_adapter_folder(adapter)
    check_output(output, adapter, overwrite)
    if fmt == "onnx":
        require_onnx("--format onnx")


def check_tolerance(atol: float | None) -> None:
    if atol is not None and not atol > 0:
        raise UserError(f"--atol must be a positive number, got {atol}")


def check_inputs_file(inputs: Path | None) -> None:
    if inputs is not None and not inputs.is_file():
        raise UserError(f"--inputs {inputs}: file not found")
