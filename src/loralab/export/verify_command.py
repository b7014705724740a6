"""`loralab verify EXPORT_DIR [--against ADAPTER_DIR]`: an export checked against its source on
its own, for exports made earlier or elsewhere.

The source is --against (any adapter folder, a plain PEFT one trained elsewhere too), else the
adapter export.json names. Both run on the same probe inputs; the table and verify.json (written
atomically into EXPORT_DIR) carry the figures and each runtime's throughput. Exit 0 within
tolerance, 1 outside it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json
from loralab.errors import UserError
from loralab.export.extras import require_onnx
from loralab.export.fidelity import FidelityReport, compare, format_figure, tolerance_for
from loralab.export.folders import (
    VERIFY_FILE,
    export_format,
    library_versions,
    open_model,
    open_tokenizer,
    read_manifest,
)
from loralab.export.outputs import ModelOutputs, run_model
from loralab.export.preflight import (
    RUNTIMES,
    check_adapter_folder,
    check_choice,
    check_inputs_file,
    check_tolerance,
    check_writable,
)
from loralab.export.probe import probe_inputs
from loralab.export.source import load_reference, source_identity
from loralab.metrics.metric_registry import display_name

TORCH_DTYPE_NAMES = {"float16": "fp16", "bfloat16": "bf16"}


def check_verify_args(folder: Path, against: Path | None, inputs: Path | None,
                      atol: float | None, runtime: str | None) -> tuple[str, Path, str]:
    """(format, source adapter, runtime), or a UserError before anything is loaded."""
    if not folder.is_dir():
        raise UserError(f"EXPORT_DIR {folder}: no such folder")
    fmt = export_format(folder)
    if fmt is None:
        raise UserError(f"{folder} is not an export folder (no export.json, model.onnx, "
                        "config.json with model.safetensors, or adapter_config.json)")
    manifest = read_manifest(folder) or {}
    recorded = (manifest.get("source") or {}).get("path")
    if against is None and not recorded:
        raise UserError(f"{folder}: export.json names no source adapter; give --against "
                        "ADAPTER_DIR")
    source = against or Path(recorded)
    if against is None and not source.is_dir():
        raise UserError(f"the source adapter {source} recorded in export.json is not here; "
                        "give --against ADAPTER_DIR")
    check_adapter_folder(source, "--against")
    expected = "onnxruntime" if fmt == "onnx" else "torch"
    if runtime is not None:
        check_choice(runtime, RUNTIMES, "--runtime")
        if runtime != expected:
            raise UserError(f"--runtime {runtime}: a {fmt} export runs on {expected}")
    if expected == "onnxruntime":
        require_onnx("verifying an ONNX export")
    check_inputs_file(inputs)
    check_tolerance(atol)
    check_writable(folder, f"{VERIFY_FILE} in")
    return fmt, source, expected


def export_dtype(folder: Path) -> str:
    manifest = read_manifest(folder) or {}
    if manifest.get("dtype"):
        return str(manifest["dtype"])
    config = folder / "config.json"
    if config.is_file():
        stored = json.loads(config.read_text(encoding="utf-8"))
        name = stored.get("dtype") or stored.get("torch_dtype")
        return TORCH_DTYPE_NAMES.get(str(name), "fp32")
    return "fp32"


def run_verify(export_dir: str, against: str | None, inputs: str | None, atol: float | None,
               runtime: str | None) -> int:
    folder = Path(export_dir)
    inputs_path = Path(inputs) if inputs else None
    fmt, source, runtime = check_verify_args(folder, Path(against) if against else None,
                                             inputs_path, atol, runtime)
    loaded = load_reference(source)
    task, labels = loaded.task, loaded.labels
    tokenizer = open_tokenizer(folder, fallback=loaded.tokenizer)
    probe = probe_inputs(task, tokenizer, labels, loaded.config, inputs_path)
    batches = probe.batches(task, tokenizer)
    reference = run_model(loaded.model, task, batches, probe.prompts(), tokenizer)
    loaded.model = None
    candidate = run_model(open_model(folder, fmt, task), task, batches, probe.prompts(),
                          tokenizer.eos_token_id)
    dtype = export_dtype(folder)
    report = compare(reference, candidate, task, labels, batches, tolerance_for(dtype, atol),
                     tokenizer)
    print(table(reference, candidate, report))
    identity = source_identity(source)
    recorded = ((read_manifest(folder) or {}).get("source") or {}).get("sha256")
    atomic_write_json(folder / VERIFY_FILE, {
        "export": str(folder.resolve()), "format": fmt, "dtype": dtype, "runtime": runtime,
        "against": identity,
        "same_source_as_export": None if recorded is None else recorded == identity["sha256"],
        "inputs": probe.description, "notes": probe.notes, **throughputs(reference, candidate),
        "fidelity": report.as_dict(), "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    state = "passed" if report.passed else "FAILED: " + "; ".join(report.failures)
    print(f"verify {state} on {probe.description} -> {folder / VERIFY_FILE}")
    return 0 if report.passed else 1


def throughputs(reference: ModelOutputs, candidate: ModelOutputs) -> dict[str, Any]:
    return {"reference_examples_per_second": round(reference.throughput, 2),
            "export_examples_per_second": round(candidate.throughput, 2)}


def table(reference: ModelOutputs, candidate: ModelOutputs, report: FidelityReport) -> str:
    names = list(report.figures)
    header = ["runtime", "examples", *[display_name(n) for n in names], "throughput"]
    rows = [["torch fp32 (source)", str(reference.examples), *["-"] * len(names),
             f"{reference.throughput:.1f} ex/s"],
            [candidate.runtime + " (export)", str(candidate.examples),
             *[format_figure(n, report.figures[n]) for n in names],
             f"{candidate.throughput:.1f} ex/s"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])
