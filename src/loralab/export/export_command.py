"""`loralab export ADAPTER_DIR --format peft|merged|onnx --output DIR`.

Order of work: every check of the request (loralab.export.preflight); the reference (base +
adapter, fp32, CPU) and its outputs on the probe inputs; the merge; then, inside a temporary
folder beside DIR, the export's files, the export loaded back from them and compared with the
reference. Only a passing comparison (or --force) writes export.json and renames the folder
into place; otherwise nothing appears at DIR and the exit code is 1.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_directory, atomic_write_text
from loralab.export.fidelity import FidelityReport, compare, tolerance_for
from loralab.export.folders import library_versions, open_model, write_manifest
from loralab.export.merge import MergedModel, merge_adapter
from loralab.export.model_card import model_card
from loralab.export.outputs import ModelOutputs, run_model
from loralab.export.preflight import check_export_args
from loralab.export.probe import ProbeInputs, probe_inputs
from loralab.export.source import load_reference, run_metrics, source_identity
from loralab.models.adapter_io import write_task_files
from loralab.tasks import LoadedAdapter


@dataclass
class ExportRequest:
    adapter: Path
    fmt: str
    output: Path
    dtype: str = "fp32"
    opset: int | None = None
    inputs: Path | None = None
    atol: float | None = None
    force: bool = False
    overwrite: bool = False
    command: str = ""


class FidelityFailure(Exception):
    """The export drifted beyond tolerance: its temporary folder is discarded."""

    def __init__(self, report: FidelityReport) -> None:
        super().__init__(report.summary())
        self.report = report


def run_export(request: ExportRequest) -> int:
    check_export_args(request.adapter, request.fmt, request.output, request.dtype,
                      request.opset, request.inputs, request.atol, request.overwrite)
    identity = source_identity(request.adapter)
    loaded = load_reference(request.adapter)
    manifest = base_manifest(request, loaded, identity)
    metrics = run_metrics(request.adapter)
    if request.fmt == "peft":
        from loralab.export.peft_export import export_peft

        return export_peft(request, loaded, manifest, metrics)
    return export_model(request, loaded, manifest, metrics)


def base_manifest(request: ExportRequest, loaded: LoadedAdapter,
                  identity: dict[str, str]) -> dict[str, Any]:
    return {"format": request.fmt, "dtype": request.dtype, "task": loaded.task.name,
            "base_model": loaded.config.model.name,
            "model_type": loaded.model.get_base_model().config.model_type,
            "labels": loaded.labels, "source": identity, "command": request.command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": library_versions(),
            "notes": []}


def export_model(request: ExportRequest, loaded: LoadedAdapter, manifest: dict[str, Any],
                 metrics: dict[str, Any] | None) -> int:
    task, tokenizer = loaded.task, loaded.tokenizer
    probe = probe_inputs(task, tokenizer, loaded.labels, loaded.config, request.inputs)
    batches = probe.batches(task, tokenizer)
    reference = run_model(loaded.model, task, batches, probe.prompts(), tokenizer)
    if request.dtype != "fp32":
        warn(f"merging for {request.dtype}: the merge runs in fp32 and the merged weights are "
             f"then rounded to {request.dtype}, which moves outputs (known drift); the check "
             f"uses the {request.dtype} tolerance")
    merged = merge_adapter(loaded, request.dtype)
    loaded.model = None  # merged in place: the merged model is all that is left of it
    manifest["notes"] += [*merged.notes, *probe.notes]
    manifest["checks"], problems = merged.checks, merged.problems
    try:
        with atomic_directory(request.output) as tmp:
            write_model_files(tmp, request, merged, loaded, batches, manifest)
            del merged
            candidate = run_model(open_model(tmp, request.fmt, task), task, batches,
                                  probe.prompts(), tokenizer)
            report = checked(reference, candidate, loaded, batches, request, problems)
            record_fidelity(manifest, report, probe, reference, candidate, request.force)
            atomic_write_text(tmp / "README.md",
                              model_card(manifest, metrics, task))
            if not report.passed and not request.force:
                raise FidelityFailure(report)
            write_manifest(tmp, manifest)
    except FidelityFailure as failure:
        warn(f"the export failed its fidelity check and was not written: "
             f"{'; '.join(failure.report.failures)}", "error")
        print(f"figures: {failure.report.summary()} (on {probe.description})", file=sys.stderr)
        return 1
    if not report.passed:
        warn(f"written with --force although outside tolerance ({'; '.join(report.failures)}); "
             "export.json records the failure")
    print(f"exported {request.fmt} ({request.dtype}) -> {request.output}: {report.summary()} "
          f"on {probe.description}")
    return 0


def write_model_files(folder: Path, request: ExportRequest, merged: MergedModel,
                      loaded: LoadedAdapter, batches: list, manifest: dict[str, Any]) -> None:
    model = merged.model
    if request.fmt == "merged":
        model.save_pretrained(folder)
    else:
        from loralab.export.onnx_graph import export_onnx

        manifest["onnx"] = export_onnx(model, batches[0], loaded.task.model_kwargs, folder,
                                       request.opset)
        model.config.save_pretrained(folder)  # id2label / label2id beside the graph
    loaded.tokenizer.save_pretrained(folder)
    write_task_files(folder, loaded.config, loaded.labels, manifest["model_type"],
                     loaded.inputs)


def checked(reference: ModelOutputs, candidate: ModelOutputs, loaded: LoadedAdapter,
            batches: list, request: ExportRequest, problems: list[str]) -> FidelityReport:
    """The comparison's figures; the merge's structural problems count as failures too."""
    tolerance = tolerance_for(request.dtype, request.atol)
    report = compare(reference, candidate, loaded.task, loaded.labels, batches, tolerance,
                     loaded.tokenizer)
    report.failures += problems
    return report


def record_fidelity(manifest: dict[str, Any], report: FidelityReport, probe: ProbeInputs,
                    reference: ModelOutputs, candidate: ModelOutputs, forced: bool) -> None:
    manifest["fidelity_inputs"] = probe.description
    manifest["fidelity"] = {**report.as_dict(),
                            "reference": {"runtime": "torch (fp32, cpu)",
                                          "examples_per_second": round(reference.throughput, 2)},
                            "export": {"runtime": candidate.runtime,
                                       "examples_per_second": round(candidate.throughput, 2)}}
    manifest["forced"] = forced and not report.passed


def warn(message: str, level: str = "warning") -> None:
    print(f"loralab: {level}: {message}", file=sys.stderr)
