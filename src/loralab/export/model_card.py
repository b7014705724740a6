"""The README.md model card written into every export folder."""

from __future__ import annotations

from typing import Any

from loralab.metrics.metric_registry import display_name
from loralab.tasks import Task

HOW_TO_LOAD = {
    "peft": "```python\nfrom peft import PeftModel\nfrom transformers import {auto}\n\n"
            "base = {auto}.from_pretrained(\"{base}\"{head})\n"
            "model = PeftModel.from_pretrained(base, \"PATH\")\n```",
    "merged": "```python\nfrom transformers import {auto}, AutoTokenizer\n\n"
              "model = {auto}.from_pretrained(\"PATH\")   # no PEFT needed\n"
              "tokenizer = AutoTokenizer.from_pretrained(\"PATH\")\n```",
    "onnx": "```python\nimport onnxruntime\n\nsession = onnxruntime.InferenceSession("
            "\"PATH/model.onnx\")\nlogits = session.run([\"logits\"], dict(tokenizer(texts, "
            "return_tensors=\"np\", padding=True)))[0]\n```",
}


def metric_lines(metrics: dict[str, Any] | None) -> list[str]:
    if not metrics:
        return ["No run folder metrics (the adapter does not sit in a loralab run folder)."]
    lines = ["| split | metric | value |", "|---|---|---|"]
    for split in ("best", "test"):
        for name, value in (metrics.get(split) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                lines.append(f"| {'validation' if split == 'best' else split} | "
                             f"{display_name(name)} | {value:.4f} |")
    return lines if len(lines) > 2 else ["The run folder's metrics.json holds no scores."]


def model_card(manifest: dict[str, Any], metrics: dict[str, Any] | None, task: Task) -> str:
    """The README.md of an export; `task` says how its model loads (Auto class, head size)."""
    labels = manifest.get("labels")
    fmt = manifest["format"]
    size = task.head_kwargs(labels).get("num_labels") if fmt == "peft" else None
    head = f", num_labels={size}" if size else ""
    fidelity = manifest.get("fidelity")
    lines = [
        f"# {manifest['task']} export ({fmt}, {manifest.get('dtype', 'fp32')})", "",
        f"- base model: `{manifest['base_model']}`",
        f"- task: {manifest['task']}",
        f"- labels: {', '.join(labels) if labels else 'none'}",
        f"- source adapter: `{manifest['source']['path']}` "
        f"(sha256 `{manifest['source']['sha256'][:16]}…`)",
        f"- made by: `{manifest['command']}`", "",
        "## Metrics of the training run", "", *metric_lines(metrics), "",
    ]
    if fidelity:
        state = "passed" if fidelity["passed"] else "FAILED (written with --force)"
        lines += ["## Fidelity check", "",
                  f"Against the source (base + adapter, PyTorch fp32, CPU) on "
                  f"{manifest['fidelity_inputs']}: {state}.", ""]
        lines += [f"- {display_name(k)}: {v:.6g}" for k, v in fidelity["figures"].items()]
        lines.append("")
    lines += ["## Loading", "", HOW_TO_LOAD[fmt].format(auto=task.auto_model_class,
                                                         base=manifest["base_model"],
                                                         head=head), ""]
    if manifest.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in manifest["notes"]], ""]
    return "\n".join(lines)
