"""`loralab export` for causal LMs on a tiny random Llama: merged and ONNX (logits only, no KV
cache) within tolerance with equal greedy continuations, `loralab predict` generating the same
text from both folders, and a tied-embedding model kept tied with its vocabulary unchanged."""

import json

import pytest
import torch
from export_helpers import LM_OVERRIDES, make_adapter, manifest, reference_logits
from transformers import AutoModelForCausalLM, AutoTokenizer

from loralab.cli import main

from conftest import build_tiny_llama, intent_rows, write_jsonl


def build_tied_llama(folder):
    return build_tiny_llama(folder, tie_word_embeddings=True)


@pytest.fixture(scope="module")
def lm_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm-data")
    return (write_jsonl(folder / "train.jsonl", intent_rows(30, 0)),
            write_jsonl(folder / "dev.jsonl", intent_rows(12, 1)))


@pytest.fixture(scope="module")
def lm_adapter(tiny_llama, lm_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm-adapter") / "ad"
    return make_adapter(folder, tiny_llama, "causal_lm", *lm_data, *LM_OVERRIDES,
                        "eval.max_new_tokens=24", scale=0.05)


def export(adapter, out, fmt):
    return main(["export", str(adapter), "--format", fmt, "--output", str(out)])


@pytest.mark.parametrize("fmt", ["merged", "onnx"])
def test_causal_round_trip_and_predict(lm_adapter, tmp_path, fmt, capsys):
    out = tmp_path / fmt
    assert export(lm_adapter, out, fmt) == 0
    info = manifest(out)
    figures = info["fidelity"]["figures"]
    assert info["fidelity"]["passed"] and figures["next_token_agreement"] == 100.0
    assert figures["generation_match"] == 100.0 and not info["fidelity"]["failures"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = dict(tokenizer(["message: order pizza\nJSON: ", "message: hi\nJSON: {"],
                           return_tensors="pt", padding=True))
    expected = reference_logits(lm_adapter, batch)
    if fmt == "merged":
        with torch.no_grad():
            got = AutoModelForCausalLM.from_pretrained(out).eval()(**batch).logits
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out / "model.onnx"))
        assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
        assert [o.name for o in session.get_outputs()] == ["logits"]  # no KV cache outputs
        got = torch.from_numpy(session.run(None, {k: v.numpy() for k, v in batch.items()})[0])
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-4, rtol=1e-4)

    capsys.readouterr()
    texts = ["--text", "order sushi", "--text", "book a flight to paris"]
    assert main(["predict", str(lm_adapter), *texts]) == 0
    wanted = [json.loads(line)["generated"] for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(out), *texts]) == 0
    got_text = [json.loads(line)["generated"] for line in capsys.readouterr().out.splitlines()]
    assert got_text == wanted and all(wanted)


def test_tied_embeddings_stay_tied_and_the_vocabulary_is_unchanged(lm_data, tmp_path):
    base = build_tied_llama(tmp_path / "tied")
    adapter = make_adapter(tmp_path / "ad", base, "causal_lm", *lm_data, *LM_OVERRIDES,
                           "lora.preset=all-linear", scale=0.05)
    assert export(adapter, tmp_path / "out", "merged") == 0
    checks = manifest(tmp_path / "out")["checks"]
    assert checks["tied_embeddings"] is True
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    original = AutoModelForCausalLM.from_pretrained(base)
    assert merged.config.tie_word_embeddings is True
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    assert merged.model.embed_tokens.weight.shape == original.model.embed_tokens.weight.shape
    assert torch.equal(merged.model.embed_tokens.weight, original.model.embed_tokens.weight)
    assert checks["vocab_size"] == original.config.vocab_size
    exported = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert exported.get_vocab() == AutoTokenizer.from_pretrained(adapter).get_vocab()
