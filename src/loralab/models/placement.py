"""Where a model runs and in which dtype: the one device / dtype rule for loading.

    resolve_device("auto")             cuda when there is a GPU, else cpu; "cpu" on request
    weights_dtype("auto", device)      fp32 on CPU; bf16 on CUDA (fp16 without bf16 support)
    mixed_precision("auto")            accelerate's autocast choice for training

Export and verification ask for `Placement.cpu_fp32()`; serving and prediction pass the user's
`--device`. Encoders keep fp32 weights (their heads train in fp32 under autocast); causal LMs
load in `weights_dtype` of `training.precision`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from loralab.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r}: this machine has no CUDA GPU; use cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"device {device!r}: expected auto, cpu, cuda or cuda:N") from None


def weights_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Model weights: fp32 on CPU or with precision fp32; on CUDA fp16 when asked or when the
    GPU has no bf16, else bf16."""
    if device.type != "cuda" or precision == "fp32":
        return torch.float32
    if precision == "fp16" or not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def mixed_precision(precision: str, *, fp16_ok: bool = True) -> str:
    """accelerate's mixed_precision value; `auto` is bf16 on CUDA (fp16 without bf16 support,
    unless `fp16_ok` is False: then fp32) and fp32 on CPU."""
    if precision == "auto":
        if torch.cuda.is_available():
            if torch.cuda.is_bf16_supported():
                return "bf16"
            return "fp16" if fp16_ok else "no"
        return "no"
    if precision == "fp16" and not torch.cuda.is_available():
        return "no"  # fp16 autocast on CPU is slower and less accurate than fp32
    return {"fp32": "no"}.get(precision, precision)


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype | None = None   # None: the model's own rule (see the module doc)

    @classmethod
    def resolve(cls, device: str = "auto", dtype: torch.dtype | None = None) -> Placement:
        return cls(resolve_device(device), dtype)

    @classmethod
    def cpu_fp32(cls) -> Placement:
        return cls(torch.device("cpu"), torch.float32)
