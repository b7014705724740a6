"""Export folders: what is in them, export.json, and opening one as a model.

    merged   config.json + model.safetensors (plain transformers), tokenizer files
    onnx     model.onnx (+ model.onnx.data for big models), config.json, tokenizer files
    peft     adapter_config.json + adapter_model.safetensors, tokenizer files
  all three  label_mapping.json and loralab_config.yaml (as in an adapter folder), README.md,
             and export.json, written last: a folder with export.json is a finished export
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import transformers

from loralab.atomic import atomic_write_json
from loralab.config import Config, parse_yaml, validate_config
from loralab.errors import UserError
from loralab.models.adapter_io import CONFIG_FILE, LABELS_FILE
from loralab.tasks import LoadedAdapter, Task, get_task

MODEL_EXPORT_MANIFEST = "export.json"
VERIFY_FILE = "verify.json"
ONNX_FILE = "model.onnx"
MODEL_FORMATS = ("merged", "onnx")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MODEL_EXPORT_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"{path}: not valid JSON") from None
    return manifest if isinstance(manifest, dict) else None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """export.json, last; every file of the folder is made readable like any new file (some
    writers, e.g. transformers' weight shards, create theirs owner-only)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~mask)
    atomic_write_json(folder / MODEL_EXPORT_MANIFEST, manifest)


def export_format(folder: Path) -> str | None:
    """merged / onnx / peft from export.json, else from the files (an export made elsewhere)."""
    manifest = read_manifest(folder)
    if manifest and manifest.get("format"):
        return str(manifest["format"])
    if (folder / ONNX_FILE).is_file():
        return "onnx"
    if (folder / "adapter_config.json").is_file():
        return "peft"
    if (folder / "config.json").is_file() and any(folder.glob("model*.safetensors")):
        return "merged"
    return None


def is_model_export(folder: Path) -> bool:
    """A merged or ONNX export (a peft export is an adapter folder and loads as one)."""
    return folder.is_dir() and export_format(folder) in MODEL_FORMATS


def export_metadata(folder: Path) -> tuple[Config, str, list[str] | None]:
    """(config, task name, labels) from the export's label_mapping.json and loralab_config.yaml."""
    if not (folder / LABELS_FILE).is_file():
        raise UserError(f"{folder}: no {LABELS_FILE}, so the task and labels are unknown; "
                        "give the source adapter with --against")
    mapping = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
    raw: dict[str, Any] = {}
    if (folder / CONFIG_FILE).is_file():
        raw = parse_yaml((folder / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    raw.setdefault("model", {})
    raw["model"].setdefault("name", mapping.get("base_model") or str(folder))
    raw["model"]["task"] = mapping["task"]
    return validate_config(raw), mapping["task"], mapping.get("labels")


def open_model(folder: Path, fmt: str, task: Task) -> Any:
    """The export's model, called like a transformers model (eval mode, CPU)."""
    if fmt == "onnx":
        from loralab.export.onnx_model import OnnxModel

        return OnnxModel(folder / ONNX_FILE)
    if fmt == "peft":
        from loralab.export.source import load_reference

        return load_reference(folder).model
    auto_cls = getattr(transformers, task.auto_model_class)
    try:
        return auto_cls.from_pretrained(str(folder), dtype="auto").eval()
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{folder}: cannot load the merged model: {first}") from None


def open_tokenizer(folder: Path, fallback: Any = None) -> Any:
    from loralab.models.tokenizer import ensure_pad_token

    if not (folder / "tokenizer_config.json").is_file():
        if fallback is None:
            raise UserError(f"{folder}: no tokenizer files")
        return fallback
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    ensure_pad_token(tokenizer)
    return tokenizer


def load_export(folder: str | Path) -> LoadedAdapter:
    """A merged or ONNX export, shaped like a loaded adapter (for `loralab predict`)."""
    folder = Path(folder)
    fmt = export_format(folder)
    if fmt == "onnx":
        from loralab.export.extras import require_onnx

        require_onnx("an ONNX export")
    config, task_name, labels = export_metadata(folder)
    task = get_task(task_name, config)
    inputs = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8")).get("inputs")
    return LoadedAdapter(open_model(folder, fmt, task), open_tokenizer(folder), task, labels,
                         config, folder, inputs)


def library_versions() -> dict[str, str]:
    from loralab.training.run_folder import library_versions as training_versions

    versions = training_versions()
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return versions
