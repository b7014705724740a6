"""The merged model as an ONNX graph, through torch.onnx.export's dynamo exporter.

The graph takes the tokenizer's tensors (input_ids, attention_mask and, where the tokenizer
makes them, token_type_ids), int64, with dynamic batch and sequence axes, and returns one
output, `logits`. For causal LMs that is the whole-sequence logits without a KV cache
(`use_cache=False`, the task's model_kwargs): every generated token re-reads the prompt.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from loralab.errors import UserError

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
ONNX_FILE = "model.onnx"
EXTERNAL_DATA_BYTES = 1 << 30  # larger graphs keep their weights in model.onnx.data


class LogitsOnly(torch.nn.Module):
    """forward(input_ids, attention_mask, token_type_ids) -> logits, nothing else."""

    def __init__(self, model: torch.nn.Module, model_kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.model_kwargs = dict(model_kwargs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids}
        inputs = {k: v for k, v in given.items() if v is not None}
        return self.model(**inputs, **self.model_kwargs).logits


def trace_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Graph inputs for tracing: at least 2 rows and 3 positions (size-1 axes would be fixed)."""
    inputs = {k: batch[k] for k in INPUT_NAMES if k in batch}
    rows, width = inputs["input_ids"].shape
    if rows < 2:
        inputs = {k: v.repeat(2, 1) for k, v in inputs.items()}
    if width < 3:
        pad = {"input_ids": 0, "attention_mask": 0, "token_type_ids": 0}
        inputs = {k: torch.nn.functional.pad(v, (0, 3 - width), value=pad[k])
                  for k, v in inputs.items()}
    return inputs


def export_onnx(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                model_kwargs: dict[str, Any], folder: Path, opset: int | None) -> dict[str, Any]:
    """Write folder/model.onnx (and model.onnx.data for big models); returns what was made."""
    import onnx

    inputs = trace_batch(batch)
    axes = {name: {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
            for name in inputs}
    wrapper = LogitsOnly(model, model_kwargs).eval()
    try:
        with quiet_exporter():
            program = torch.onnx.export(wrapper, (), kwargs=inputs, dynamo=True,
                                        dynamic_shapes=axes, input_names=list(inputs),
                                        output_names=["logits"], opset_version=opset,
                                        verbose=False)
    except Exception as exc:  # the exporter raises many types; the user needs its first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"torch.onnx.export could not convert this model: {first}") from None
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    external = size > EXTERNAL_DATA_BYTES
    with quiet_exporter():
        program.save(str(folder / ONNX_FILE), external_data=external)
    graph = onnx.load(str(folder / ONNX_FILE), load_external_data=False)
    opsets = {o.domain or "ai.onnx": o.version for o in graph.opset_import}
    return {"file": ONNX_FILE, "inputs": list(inputs), "outputs": ["logits"],
            "opset": opsets.get("ai.onnx"), "external_data": external,
            "dynamic_axes": {"0": "batch", "1": "sequence"}, "kv_cache": False}


@contextlib.contextmanager
def quiet_exporter():
    """The exporter prints progress to stdout and logs missing-torchvision warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
