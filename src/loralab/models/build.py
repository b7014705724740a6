"""Build the model to train: pretrained encoder + task head + PEFT LoRA adapter.

The head (and any newly initialised module, and unfrozen top layers) goes into PEFT's
`modules_to_save`, so it is saved inside the adapter folder and restored by plain
`PeftModel.from_pretrained` — the classifier head is never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from transformers.pytorch_utils import Conv1D

from loralab.config import Config, LoraConfig
from loralab.errors import ConfigError
from loralab.models.allocator import return_freed_memory
from loralab.models.architectures import head_module_names, preset_relative_names, split_layer_name
from loralab.models.causal import check_quantization, load_causal_model, load_causal_tokenizer
from loralab.models.memory import apply_checkpointing
from loralab.models.placement import Placement
from loralab.models.sources import model_load_error, resolve_model_source
from loralab.models.tokenizer import load_tokenizer


@dataclass
class BuiltModel:
    model: PeftModel
    tokenizer: Any
    model_type: str
    target_modules: list[str]
    modules_to_save: list[str]
    unfrozen_layers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory: dict[str, Any] | None = None  # causal LMs: the gradient checkpointing choice


def load_base_model(config: Config, auto_class: str, head: dict[str, Any],
                    dtype: torch.dtype = torch.float32):
    """The pretrained model with a task head (`auto_class`, sized by `head`); also the names of
    newly initialised modules."""
    model_cfg = config.model
    auto_cls = getattr(transformers, auto_class)
    kwargs: dict[str, Any] = {"revision": model_cfg.revision,
                              "trust_remote_code": model_cfg.trust_remote_code, **head}
    source = resolve_model_source(model_cfg.name)
    try:
        logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
        model, info = auto_cls.from_pretrained(source, output_loading_info=True, dtype=dtype,
                                               **kwargs)
    except (OSError, ValueError) as exc:
        raise model_load_error(model_cfg.name, exc) from None
    return model, new_module_names(model, info.get("missing_keys", []))


def new_module_names(model: torch.nn.Module, missing_keys: list[str]) -> list[str]:
    """The top-most modules all of whose parameters were newly initialised (the head)."""
    missing = set(missing_keys)
    modules = dict(model.named_modules())

    def fully_new(name: str) -> bool:
        params = [f"{name}.{p}" for p, _ in modules[name].named_parameters()]
        return bool(params) and all(p in missing for p in params)

    found: set[str] = set()
    for key in missing:
        name = key.rpartition(".")[0]
        if name not in modules or not fully_new(name):
            continue
        while "." in name and fully_new(name.rpartition(".")[0]):
            name = name.rpartition(".")[0]
        found.add(name)
    return sorted(n for n in found if not any(n.startswith(o + ".") for o in found))


LINEAR_TYPES = (torch.nn.Linear, Conv1D)  # GPT-2 keeps its projections in Conv1D


def layer_linear_names(model: torch.nn.Module) -> dict[str, tuple[str, int, str]]:
    """Every linear layer inside the blocks: full name -> (prefix, index, relative name)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, LINEAR_TYPES):
            parts = split_layer_name(name)
            if parts is not None:
                out[name] = parts
    return out


def select_layers(layers: int | list[int] | str, depth: int, notes: list[str]) -> list[int]:
    """`all`, the top N layers (an int), or explicit indices (negative counts from the top)."""
    if layers == "all":
        return list(range(depth))
    if isinstance(layers, int):
        if layers > depth:
            notes.append(f"lora.layers={layers} is more than the model's {depth} layers; "
                         f"adapting all {depth}")
        return list(range(max(depth - layers, 0), depth))
    chosen = []
    for index in layers:
        if not -depth <= index < depth:
            raise ConfigError(f"lora.layers: layer {index} does not exist; the model has "
                              f"{depth} layers (0..{depth - 1})")
        chosen.append(index % depth)
    return sorted(set(chosen))


def resolve_targets(model: torch.nn.Module, lora: LoraConfig, model_type: str,
                    skip_layers: set[int], notes: list[str]) -> list[str]:
    """Full module names to adapt, from target_modules or the preset, and the layer selector."""
    linear = layer_linear_names(model)
    if not linear:
        return unlayered_targets(model, lora, notes)
    relative = {rel for _, _, rel in linear.values()}
    if lora.target_modules:
        wanted = set()
        for target in lora.target_modules:
            hits = {r for r in relative if r == target or r.endswith("." + target)}
            if not hits:
                raise ConfigError(
                    f"lora.target_modules: {target!r} matches no linear layer of this model; "
                    f"its linear layers are: {', '.join(sorted(relative))}")
            wanted |= hits
    else:
        wanted = preset_relative_names(model_type, lora.preset, relative)
    depth = max(index for _, index, _ in linear.values()) + 1
    layers = set(select_layers(lora.layers, depth, notes)) - skip_layers
    targets = [n for n, (_, index, rel) in linear.items() if rel in wanted and index in layers]
    if not targets:
        raise ConfigError("lora: the target modules and lora.layers select no layer to adapt")
    return targets


def check_rank(model: torch.nn.Module, targets: list[str], r: int) -> None:
    """A LoRA rank above a target's smaller dimension adds parameters and no capacity."""
    modules = dict(model.named_modules())
    sizes = {name: min(layer_shape(modules[name])) for name in targets}
    name, smallest = min(sizes.items(), key=lambda item: item[1])
    if r > smallest:
        raise ConfigError(f"lora.r={r} is larger than the smallest adapted layer's dimension "
                          f"({smallest}, {name}); choose lora.r <= {smallest}")


def layer_shape(module: torch.nn.Module) -> tuple[int, int]:
    """(in, out) features of a Linear or a GPT-2 Conv1D."""
    weight = module.weight
    return (weight.shape[1], weight.shape[0]) if isinstance(module, torch.nn.Linear) \
        else (weight.shape[0], weight.shape[1])


def unlayered_targets(model: torch.nn.Module, lora: LoraConfig, notes: list[str]) -> list[str]:
    """Models whose blocks are not `...layer.N...` (e.g. ALBERT's shared layers): match the
    given target_modules as name suffixes over all linear layers, or take them all."""
    if lora.layers != "all":
        raise ConfigError("lora.layers: this model has no numbered encoder layers "
                          "(`...layer.N...`) to select from; leave lora.layers at all")
    linear = [n for n, m in model.named_modules() if isinstance(m, LINEAR_TYPES)]
    heads = ("classifier", "pooler", "pre_classifier", "score", "qa_outputs")
    linear = [n for n in linear if not any(part in heads for part in n.split("."))]
    if lora.target_modules:
        chosen = [n for n in linear if any(n == t or n.endswith("." + t)
                                           for t in lora.target_modules)]
        missing = [t for t in lora.target_modules
                   if not any(n == t or n.endswith("." + t) for n in linear)]
        if missing:
            raise ConfigError(f"lora.target_modules: {missing[0]!r} matches no linear layer of "
                              f"this model; its linear layers are: {', '.join(linear)}")
        return chosen
    notes.append("no numbered encoder layers found: lora.preset is ignored and every linear "
                 "layer outside the head is adapted")
    return linear


def top_layer_names(model: torch.nn.Module, count: int) -> tuple[list[str], set[int]]:
    """Names and indices of the top `count` encoder layers (for unfreezing)."""
    if count == 0:
        return [], set()
    layers = {(prefix, index) for prefix, index, _ in layer_linear_names(model).values()}
    depth = max(index for _, index in layers) + 1
    if count > depth:
        raise ConfigError(f"training.unfreeze_top_layers={count} but the model has only "
                          f"{depth} layers")
    chosen = sorted((p, i) for p, i in layers if i >= depth - count)
    return [f"{p}.{i}" for p, i in chosen], {i for _, i in chosen}


def head_modules(model: torch.nn.Module, model_type: str, new_modules: list[str]) -> list[str]:
    """The task head's modules (and any other newly initialised module)."""
    heads = [name for name, _ in model.named_modules() if name and any(
        name == h or name.endswith("." + h) for h in head_module_names(model_type))]
    return sorted(set(heads) | set(new_modules))


def build_encoder_model(config: Config, auto_class: str, peft_task_type: str,
                        head: dict[str, Any]) -> BuiltModel:
    """An encoder with its task head and a LoRA adapter (or, with lora.enabled=false, the
    frozen encoder whose head alone trains)."""
    tokenizer = load_tokenizer(config.model.name, revision=config.model.revision,
                               trust_remote_code=config.model.trust_remote_code)
    base, new_modules = load_base_model(config, auto_class, head)
    model_type = base.config.model_type
    if not config.lora.enabled:
        return head_only_model(base, tokenizer, model_type, new_modules, config)
    notes: list[str] = []
    unfrozen, unfrozen_index = top_layer_names(base, config.training.unfreeze_top_layers)
    targets = resolve_targets(base, config.lora, model_type, unfrozen_index, notes)
    check_rank(base, targets, config.lora.r)
    modules_to_save = head_modules(base, model_type, new_modules) + unfrozen
    model = get_peft_model(base, peft_lora_config(config, peft_task_type, targets,
                                                  modules_to_save))
    # record the name the user gave (a hub id), not the local folder it resolved to
    model.peft_config["default"].base_model_name_or_path = config.model.name
    set_unfrozen_trainable(model, unfrozen, False)
    saved = sorted(set(model.peft_config["default"].modules_to_save or []))
    return BuiltModel(model, tokenizer, model_type, targets, saved, unfrozen, notes)


def peft_lora_config(config: Config, peft_task_type: str, targets: list[str],
                     modules_to_save: list[str] | None = None) -> PeftLoraConfig:
    lora = config.lora
    return PeftLoraConfig(task_type=peft_task_type, r=lora.r, lora_alpha=lora.alpha,
                          lora_dropout=lora.dropout, target_modules=targets,
                          modules_to_save=modules_to_save or None,
                          use_rslora=lora.use_rslora, use_dora=lora.use_dora)


def set_unfrozen_trainable(model: PeftModel, layer_names: list[str], trainable: bool) -> int:
    """Switch the trainable copies of the unfrozen top layers on or off; returns #params."""
    count = 0
    for name, param in model.named_parameters():
        if "modules_to_save" in name and any(f"{layer}.modules_to_save." in name
                                             for layer in layer_names):
            param.requires_grad_(trainable)
            count += param.numel()
    return count


def head_only_model(base: torch.nn.Module, tokenizer: Any, model_type: str,
                    new_modules: list[str], config: Config) -> BuiltModel:
    """The no-LoRA baseline: the pretrained encoder frozen, only the task head trained.

    PEFT cannot wrap a model with nothing to adapt, so this is the plain transformers model;
    a baseline run reports metrics but saves no adapter.
    """
    if config.training.unfreeze_top_layers:
        raise ConfigError("lora.enabled=false trains the head only; set "
                          "training.unfreeze_top_layers to 0")
    heads = head_modules(base, model_type, new_modules)
    for name, param in base.named_parameters():
        param.requires_grad_(any(name.startswith(h + ".") for h in heads))
    notes = ["lora.enabled=false: the encoder is frozen and only the task head "
             f"({', '.join(heads)}) is trained; no adapter is saved"]
    return BuiltModel(base, tokenizer, model_type, [], heads, [], notes)


def build_causal_model(config: Config, placement: Placement | None = None) -> BuiltModel:
    """A causal LM with a LoRA adapter (no head to save); with lora.enabled=false the base
    model as it is (the baseline of a grid: evaluated, not trained)."""
    check_quantization(config)
    if config.training.unfreeze_top_layers:
        raise ConfigError("training.unfreeze_top_layers is for encoder tasks; for a causal LM "
                          "adapt more layers with lora.layers / lora.preset instead")
    tokenizer = load_causal_tokenizer(config)
    base = load_causal_model(config, placement=placement)
    model_type = base.config.model_type
    if not config.lora.enabled:
        base.requires_grad_(False)
        note = "lora.enabled=false: the base model is evaluated as it is, without training"
        return BuiltModel(base, tokenizer, model_type, [], [], [], [note])
    notes: list[str] = []
    targets = resolve_targets(base, config.lora, model_type, set(), notes)
    check_rank(base, targets, config.lora.r)
    model = get_peft_model(base, peft_lora_config(config, "CAUSAL_LM", targets))
    model.peft_config["default"].base_model_name_or_path = config.model.name
    memory = checkpointing(model, config, notes)
    return BuiltModel(model, tokenizer, model_type, targets, [], [], notes, memory)


def checkpointing(model: PeftModel, config: Config, notes: list[str]) -> dict[str, Any]:
    """Gradient checkpointing as training.gradient_checkpointing chooses; the choice is noted
    and returned for metrics.json."""
    device = next(model.parameters()).device
    if device.type == "cpu":
        return_freed_memory()  # RSS follows the live tensors (loralab.models.allocator)
    choice = apply_checkpointing(model, config, device)
    notes.append(choice.note(config.training.batch_size, config.model.max_length))
    return choice.record()


def build_causal_adapters(named: list[tuple[str, Config]],
                          placement: Placement | None = None) -> list[BuiltModel]:
    """One causal LM, loaded once, with one LoRA adapter per (name, config): PEFT's
    multi-adapter model (`get_peft_model` for the first, `add_adapter` for the others). Every
    adapter's targets and rank are checked on the plain base before any is added. The
    BuiltModels share the model; `model.set_adapter(name)` makes one active and trainable
    (PEFT switches requires_grad: only the active adapter's weights train)."""
    first = named[0][1]
    check_quantization(first)
    tokenizer = load_causal_tokenizer(first)
    base = load_causal_model(first, placement=placement)
    model_type = base.config.model_type
    plans = []
    for name, config in named:
        if not config.lora.enabled:
            raise ConfigError(f"adapters: {name}: lora.enabled=false trains no adapter")
        notes: list[str] = []
        targets = resolve_targets(base, config.lora, model_type, set(), notes)
        check_rank(base, targets, config.lora.r)
        plans.append((name, config, targets, notes))
    name, config, targets, _ = plans[0]
    model = get_peft_model(base, peft_lora_config(config, "CAUSAL_LM", targets),
                           adapter_name=name)
    for name, config, targets, _ in plans[1:]:
        model.add_adapter(name, peft_lora_config(config, "CAUSAL_LM", targets))
    for name, config, _, _ in plans:
        model.peft_config[name].base_model_name_or_path = config.model.name
    model.set_adapter(plans[0][0])
    shared: list[str] = []
    largest = max((config for _, config in named),
                  key=lambda c: c.training.batch_size * c.model.max_length)
    memory = checkpointing(model, largest, shared)
    return [BuiltModel(model, tokenizer, model_type, targets, [], [], notes + shared, memory)
            for _, _, targets, notes in plans]
