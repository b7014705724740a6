"""Architecture registry: default LoRA targets, presets and head modules per model family
(encoders, and the causal LMs: Llama, Mistral, Qwen2/3, Gemma, Phi-3, GPT-2).

Module names are given *relative to one encoder layer* (`attention.self.query`), because the
same suffix means different things at different depths (`output.dense` is the MLP output in
BERT, `attention.output.dense` the attention output). Unknown architectures fall back to a
name heuristic over the linear layers inside the encoder layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ArchSpec:
    attention: tuple[str, ...]
    mlp: tuple[str, ...]
    default: tuple[str, ...]
    # modules trained in full and saved with the adapter. BERT-style models put the classifier
    # on a tanh "pooler" that sentence-embedding checkpoints (MiniLM, mpnet) never trained;
    # training it is what RoBERTa's own head (dense + out_proj) does anyway.
    head: tuple[str, ...] = ("pooler", "classifier")


_BERT = ArchSpec(
    attention=("attention.self.query", "attention.self.key", "attention.self.value",
               "attention.output.dense"),
    mlp=("intermediate.dense", "output.dense"),
    default=("attention.self.query", "attention.self.value", "attention.output.dense",
             "intermediate.dense", "output.dense"),
)

ARCHITECTURES: dict[str, ArchSpec] = {
    "bert": _BERT,
    "roberta": replace(_BERT, head=("classifier",)),
    "xlm-roberta": replace(_BERT, head=("classifier",)),
    "camembert": replace(_BERT, head=("classifier",)),
    "electra": _BERT,
    "distilbert": ArchSpec(
        attention=("attention.q_lin", "attention.k_lin", "attention.v_lin",
                   "attention.out_lin"),
        mlp=("ffn.lin1", "ffn.lin2"),
        default=("attention.q_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1",
                 "ffn.lin2"),
        head=("pre_classifier", "classifier"),
    ),
    "modernbert": ArchSpec(
        attention=("attn.Wqkv", "attn.Wo"),
        mlp=("mlp.Wi", "mlp.Wo"),
        default=("attn.Wqkv", "attn.Wo", "mlp.Wi", "mlp.Wo"),
        head=("head", "classifier"),
    ),
    "mpnet": ArchSpec(
        attention=("attention.attn.q", "attention.attn.k", "attention.attn.v",
                   "attention.attn.o"),
        mlp=("intermediate.dense", "output.dense"),
        default=("attention.attn.q", "attention.attn.k", "attention.attn.v",
                 "attention.attn.o"),
    ),
    "deberta-v2": ArchSpec(
        attention=("attention.self.query_proj", "attention.self.key_proj",
                   "attention.self.value_proj", "attention.output.dense"),
        mlp=("intermediate.dense", "output.dense"),
        default=("attention.self.query_proj", "attention.self.value_proj",
                 "attention.output.dense", "intermediate.dense", "output.dense"),
        head=("pooler", "classifier"),
    ),
}

_LLAMA = ArchSpec(
    attention=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
    mlp=("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
    # QLoRA's recipe: every linear layer of the blocks
    default=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
             "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
    head=(),
)
CAUSAL_ARCHITECTURES: dict[str, ArchSpec] = {
    **{name: _LLAMA for name in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma",
                                 "gemma2", "gemma3_text", "olmo2", "granite")},
    "phi3": ArchSpec(
        attention=("self_attn.qkv_proj", "self_attn.o_proj"),
        mlp=("mlp.gate_up_proj", "mlp.down_proj"),
        default=("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj",
                 "mlp.down_proj"),
        head=(),
    ),
    "gpt2": ArchSpec(  # Conv1D layers; PEFT handles their transposed weights (fan_in_fan_out)
        attention=("attn.c_attn", "attn.c_proj"),
        mlp=("mlp.c_fc", "mlp.c_proj"),
        default=("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
        head=(),
    ),
}
ARCHITECTURES.update(CAUSAL_ARCHITECTURES)

# `encoder.layer.3.attention.self.query` -> prefix `encoder.layer.`, index 3, rest
LAYER_NAME = re.compile(r"^(?P<prefix>(?:.*\.)?(?:layer|layers|h|block|blocks))\.(?P<index>\d+)"
                        r"\.(?P<rel>.+)$")
_ATTENTION_HINT = re.compile(r"attn|attention|query|key|value|q_lin|k_lin|v_lin|qkv|\bq\b|"
                             r"\bk\b|\bv\b|\bo\b|out_lin|\b[qkvo]_proj|out_proj")


def spec_for(model_type: str) -> ArchSpec | None:
    return ARCHITECTURES.get(model_type)


def split_layer_name(name: str) -> tuple[str, int, str] | None:
    """(`prefix`, layer index, name relative to the layer) or None outside the layers."""
    match = LAYER_NAME.match(name)
    if match is None:
        return None
    return match["prefix"], int(match["index"]), match["rel"]


def preset_relative_names(model_type: str, preset: str, relative_names: set[str]) -> set[str]:
    """The relative module names that a preset selects for this architecture."""
    if preset == "all-linear":
        return set(relative_names)
    spec = spec_for(model_type)
    if spec is not None:
        chosen = {"default": spec.default, "attention": spec.attention, "mlp": spec.mlp}[preset]
        return {n for n in relative_names if n in chosen}
    attention = {n for n in relative_names if _ATTENTION_HINT.search(n.replace(".", " "))}
    if preset == "attention":
        return attention
    if preset == "mlp":
        return relative_names - attention
    return set(relative_names)  # default for an unknown architecture: every linear layer


def head_module_names(model_type: str) -> tuple[str, ...]:
    spec = spec_for(model_type)
    return spec.head if spec is not None else ("pooler", "classifier")
