"""The `peft` format: a clean, self-contained adapter folder.

The adapter's config and weights are copied byte for byte (their sha256 is checked); the
tokenizer (the base model's when the adapter has none), label_mapping.json, loralab_config.yaml
and a model card are written beside them. Nothing else of the source folder comes along.
"""

from __future__ import annotations

import shutil
from typing import Any

from loralab.atomic import atomic_directory, atomic_write_text
from loralab.errors import UserError
from loralab.evaluation.gate.results import sha256_file
from loralab.export.folders import write_manifest
from loralab.export.model_card import model_card
from loralab.models.adapter_io import write_task_files
from loralab.tasks import LoadedAdapter


def export_peft(request: Any, loaded: LoadedAdapter, manifest: dict[str, Any],
                metrics: dict[str, Any] | None) -> int:
    weights = manifest["source"]["weights_file"]
    with atomic_directory(request.output) as tmp:
        for name in ("adapter_config.json", weights):
            shutil.copy2(request.adapter / name, tmp / name)
        if sha256_file(tmp / weights) != manifest["source"]["sha256"]:
            raise UserError(f"{request.adapter / weights} changed while it was copied")
        loaded.tokenizer.save_pretrained(tmp)
        write_task_files(tmp, loaded.config, loaded.labels, manifest["model_type"],
                         loaded.inputs)
        manifest["checks"] = {"weights_sha256_equal": True}
        manifest["fidelity"] = None  # the weights are the source's own bytes
        atomic_write_text(tmp / "README.md",
                          model_card(manifest, metrics, loaded.task))
        write_manifest(tmp, manifest)
    print(f"exported peft -> {request.output}: adapter weights copied unchanged "
          f"(sha256 {manifest['source']['sha256'][:12]}…)")
    return 0
