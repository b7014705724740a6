"""The mixed-adapter engine against its oracle: every row of a mixed batch equals its adapter
served alone through plain PEFT (logits within 1e-5 in fp32), for sequence classification,
regression, token classification and greedy generation, with adapters of different ranks,
target modules and label counts in one batch; hot detach, slot reuse and refusals."""

from __future__ import annotations

import json

import pytest
import torch
from serving_helpers import make_adapter, peft_alone

from loralab.config import load_config, validate_config
from loralab.errors import UserError
from loralab.serving.adapter_weights import read_adapter_weights
from loralab.serving.encoder import EncoderEngine, EncoderRow
from loralab.tasks import get_task

from conftest import build_tiny_encoder, build_tiny_llama, sentiment_rows, write_jsonl

CPU = torch.device("cpu")
TEXTS = ["the movie was good", "bad awful film", "john lives in paris", "a", "great plot",
         "it was very boring and a bad story , really", "i loved the actor", "we hated it"]
TOL = {"rtol": 0, "atol": 1e-5}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_encoder(tmp_path_factory.mktemp("serve-bert"), "bert")


@pytest.fixture(scope="module")
def seq_adapters(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("seq-adapters")
    return {
        "three": (make_adapter(tiny, root / "three", "sequence_classification",
                               labels=["x", "y", "z"], r=2, targets=["query", "value"],
                               modules_to_save=["pooler", "classifier"], seed=1), ["x", "y", "z"]),
        "two_rs": (make_adapter(tiny, root / "two_rs", "sequence_classification",
                                labels=["p", "q"], r=8, rslora=True, seed=2,
                                targets=["intermediate.dense", "output.dense"]), ["p", "q"]),
        "reg_unfrozen": (make_adapter(tiny, root / "reg", "regression", r=4, seed=3,
                                      targets=["key", "attention.output.dense"], layers=[0],
                                      modules_to_save=["classifier", "encoder.layer.1"]), None),
        "patterned": (make_adapter(tiny, root / "pat", "sequence_classification",
                                   labels=["a", "b", "c", "d"], r=4, seed=4,
                                   targets=["query", "key", "value"],
                                   rank_pattern={"key": 6}), ["a", "b", "c", "d"]),
    }


def encoded(engine, texts):
    return [dict(engine.tokenizer(t)) for t in texts]


def encoder_engine(tiny, task):
    """The serving engine on the base encoder the task builds (Task.load_serving_base)."""

    config = validate_config({"model": {"name": str(tiny), "task": task.name}})
    return EncoderEngine.for_task(config, task, None, CPU)


def peft_logits(base, path, task, labels, texts):
    import transformers

    model = peft_alone(base, path, task, labels)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_mixed_sequence_batch_equals_each_adapter_alone(tiny, seq_adapters):
    engine = encoder_engine(tiny, get_task("sequence_classification"))
    slots = {name: engine.attach(read_adapter_weights(path, engine.module_names))
             for name, (path, _) in seq_adapters.items()}
    names = list(seq_adapters)
    assignment = [names[i % len(names)] for i in range(2 * len(TEXTS))]
    texts = TEXTS * 2
    width = {n: len(lab) if lab else 1 for n, (_, lab) in seq_adapters.items()}
    rows = [EncoderRow(f, slots[n], width[n]) for f, n in zip(encoded(engine, texts), assignment)]
    got = engine.logits(rows)
    assert len(set(assignment)) == 4
    for name, (path, labels) in seq_adapters.items():
        index = [i for i, n in enumerate(assignment) if n == name]
        task = "regression" if labels is None else "sequence_classification"
        expected = peft_logits(tiny, path, task, labels, [texts[i] for i in index])
        mine = torch.stack([got[i] for i in index])
        assert mine.shape == expected.shape == (len(index), width[name])
        torch.testing.assert_close(mine, expected, **TOL)
        assert expected.abs().mean() > 0.05


def test_adapters_change_the_answer(tiny, seq_adapters):
    """The oracle could pass with every delta at zero if the adapters did nothing: they don't."""
    engine = encoder_engine(tiny, get_task("sequence_classification"))
    path, labels = seq_adapters["three"]
    slot = engine.attach(read_adapter_weights(path, engine.module_names))
    feature = encoded(engine, TEXTS[:1])[0]
    with_lora = engine.logits([EncoderRow(feature, slot, 3)])[0]
    engine.linears["bert.encoder.layer.0.attention.self.query"].clear_slot(slot)
    engine.linears["bert.encoder.layer.1.attention.self.query"].clear_slot(slot)
    without = engine.logits([EncoderRow(feature, slot, 3)])[0]
    assert (with_lora - without).abs().max() > 1e-3


def test_token_classification_mixed_batch(tiny, tmp_path):
    tags5 = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    one = make_adapter(tiny, tmp_path / "tok5", "token_classification", labels=tags5, r=4,
                       targets=["query", "value"], seed=7)
    two = make_adapter(tiny, tmp_path / "tok3", "token_classification",
                       labels=["O", "B-X", "I-X"], r=2, targets=["intermediate.dense"], seed=8)
    task = get_task("token_classification")
    engine = encoder_engine(tiny, task)
    slots = [engine.attach(read_adapter_weights(p, engine.module_names)) for p in (one, two)]
    records = [{"tokens": t.split()} for t in TEXTS[:6]]
    features = task.encode(records, engine.tokenizer, tags5, 64)
    widths = [5, 3]
    rows = [EncoderRow(f, slots[i % 2], widths[i % 2]) for i, f in enumerate(features)]
    got = engine.logits(rows)
    for k, (path, labels) in enumerate([(one, tags5), (two, ["O", "B-X", "I-X"])]):
        index = [i for i in range(len(rows)) if i % 2 == k]
        model = peft_alone(tiny, path, "token_classification", labels)
        for i in index:  # alone, one row at a time: no padding at all
            ids = torch.tensor([features[i]["input_ids"]])
            with torch.no_grad():
                expected = model(input_ids=ids).logits[0]
            torch.testing.assert_close(got[i][: ids.shape[1]], expected, **TOL)
        rendered = task.render(got[index[0]], records[index[0]], features[index[0]], labels)
        assert len(rendered["tags"]) == len(records[index[0]]["tokens"])
        assert set(rendered["tags"]) <= set(labels)


def test_embeddings_of_base_rows_and_adapter_rows(tiny, seq_adapters):
    import transformers

    engine = encoder_engine(tiny, get_task("sequence_classification"))
    path, labels = seq_adapters["two_rs"]
    slot = engine.attach(read_adapter_weights(path, engine.module_names))
    features = encoded(engine, TEXTS[:4])
    got = engine.embed([EncoderRow(f, slot if i % 2 else 0) for i, f in enumerate(features)])
    plain = transformers.AutoModel.from_pretrained(tiny).eval()
    peft = peft_alone(tiny, path, "sequence_classification", labels)
    for i, feature in enumerate(features):
        ids = torch.tensor([feature["input_ids"]])
        with torch.no_grad():
            model = peft.base_model.model.bert if i % 2 else plain
            expected = model(input_ids=ids).last_hidden_state[0].mean(0)
        torch.testing.assert_close(got[i], expected, **TOL)


def test_a_loralab_trained_adapter_serves_like_it_predicts(tiny, tmp_path):
    from loralab.tasks import load_adapter
    from loralab.training.recipe import TrainingRecipe

    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(64, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(16, 1))
    config = load_config(None, [f"model.name={tiny}", f"data.train={train}",
                                f"data.validation={dev}", "training.epochs=1", "lora.r=4",
                                "training.learning_rate=1e-2"])
    recipe = TrainingRecipe(config, tmp_path / "run", progress=False)
    adapter = tmp_path / "run" / recipe.run_all()["adapter"]
    loaded = load_adapter(adapter)
    engine = encoder_engine(tiny, loaded.task)
    slot = engine.attach(read_adapter_weights(adapter, engine.module_names))
    features = loaded.task.encode([{"text": t} for t in TEXTS], loaded.tokenizer, loaded.labels,
                                  64)
    got = engine.logits([EncoderRow(f, slot, 2) for f in features])
    for feature, mine in zip(features, got):
        with torch.no_grad():
            expected = loaded.model(input_ids=torch.tensor([feature["input_ids"]])).logits[0]
        torch.testing.assert_close(mine, expected, **TOL)


def test_detach_waits_for_in_flight_batches_and_slots_are_reused(tiny, seq_adapters):
    engine = encoder_engine(tiny, get_task("sequence_classification"))
    first, labels = seq_adapters["three"]
    slot = engine.attach(read_adapter_weights(first, engine.module_names))
    feature = encoded(engine, TEXTS[:1])[0]
    before = engine.logits([EncoderRow(feature, slot, 3)])[0]
    engine.acquire(slot)                        # a request in flight holds the slot
    engine.detach(slot)
    with pytest.raises(KeyError):
        engine.acquire(slot)                    # no new request may take it
    torch.testing.assert_close(engine.logits([EncoderRow(feature, slot, 3)])[0], before)
    engine.release(slot)                        # the last holder lets go: now it is cleared
    assert all(slot not in lin.slots_here for lin in engine.linears.values())
    second, labels2 = seq_adapters["patterned"]
    again = engine.attach(read_adapter_weights(second, engine.module_names))
    assert again == slot
    mine = engine.logits([EncoderRow(feature, again, 4)])[0]
    expected = peft_logits(tiny, second, "sequence_classification", labels2, TEXTS[:1])[0]
    torch.testing.assert_close(mine, expected, **TOL)


def test_unsupported_adapters_are_refused(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    path = make_adapter(tiny, tmp_path / "dora", "sequence_classification", labels=["a", "b"])
    config = json.loads((path / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    engine = encoder_engine(tiny, get_task("sequence_classification"))
    with pytest.raises(UserError, match="use_dora=True: DoRA adapters"):
        read_adapter_weights(path, engine.module_names)
    headless = make_adapter(tiny, tmp_path / "nohead", "sequence_classification",
                            labels=["a", "b"])
    file = headless / "adapter_model.safetensors"
    save_file({k: v for k, v in load_file(file).items() if "classifier" not in k}, file)
    with pytest.raises(UserError, match="does not save the model's 'classifier' module"):
        engine.attach(read_adapter_weights(headless, engine.module_names))
    file.write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="cannot read"):
        read_adapter_weights(headless, engine.module_names)
    assert engine.slots.used == set()


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("serve-llama"))


def test_greedy_generation_of_a_mixed_batch_equals_each_row_alone(tiny_lm, tmp_path):
    import transformers

    from loralab.serving.causal_engine import CausalEngine
    from loralab.serving.sampling import GenerationRow, Sampling

    attn = make_adapter(tiny_lm, tmp_path / "attn", "causal_lm", r=4, seed=5,
                        targets=["q_proj", "v_proj"])
    mlp = make_adapter(tiny_lm, tmp_path / "mlp", "causal_lm", r=8, seed=6, rslora=True,
                       targets=["gate_proj", "down_proj", "o_proj"])
    config = validate_config({"model": {"name": str(tiny_lm), "task": "causal_lm"}})
    engine = CausalEngine.for_task(config, get_task("causal_lm", config), None, CPU)
    slots = {p: engine.attach(read_adapter_weights(p, engine.module_names)) for p in (attn, mlp)}
    tok = engine.tokenizer
    prompts = ["hello there", "book a flight to paris", "x", "order pizza now", "abc", "hi"]
    order = [attn, mlp, None, attn, mlp, None]
    rows = [GenerationRow(tok(p)["input_ids"], slots.get(a, 0), Sampling(20, temperature=0),
                          tok, engine.eos_ids) for p, a in zip(prompts, order)]
    engine.generate(rows)
    alone = {attn: peft_alone(tiny_lm, attn, "causal_lm", None),
             mlp: peft_alone(tiny_lm, mlp, "causal_lm", None),
             None: transformers.AutoModelForCausalLM.from_pretrained(tiny_lm).eval()}
    outputs = set()
    for prompt, adapter, row in zip(prompts, order, rows):
        enc = tok(prompt, return_tensors="pt")
        out = alone[adapter].generate(**enc, max_new_tokens=20, do_sample=False,
                                      pad_token_id=tok.pad_token_id, top_k=None, top_p=None,
                                      temperature=None)
        expected = [t for t in out[0, enc["input_ids"].shape[1]:].tolist()
                    if t != tok.eos_token_id]
        assert row.token_ids == expected
        assert row.text == tok.decode(expected, skip_special_tokens=True)
        outputs.add(tuple(row.token_ids))
    assert len(outputs) == len(prompts)


def test_gpt2_conv1d_layers_serve_like_peft(tmp_path):
    """GPT-2 keeps its projections in transformers' Conv1D (weight [in, out])."""
    import transformers

    from loralab.serving.engine import MixedEngine

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=60, n_positions=64, n_embd=32, n_layer=2,
                                     n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    adapter = make_adapter(tmp_path / "gpt2", tmp_path / "lora", "causal_lm", r=4,
                           targets=["c_attn", "c_proj"], seed=3)
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "gpt2").eval()
    engine = MixedEngine(plain, CPU)
    slot = engine.attach(read_adapter_weights(adapter, engine.module_names))
    ids = torch.tensor([[1, 5, 9, 13, 2], [4, 4, 8, 15, 16]])
    with engine.rows([slot, 0]):
        mine = engine.model(input_ids=ids).logits
    expected = peft_alone(tmp_path / "gpt2", adapter, "causal_lm", None)(input_ids=ids[:1])
    torch.testing.assert_close(mine[:1], expected.logits, **TOL)
    base = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "gpt2").eval()
    torch.testing.assert_close(mine[1:], base(input_ids=ids[1:]).logits, **TOL)


def test_length_batches_limit_rows_and_padding():
    from loralab.serving.encoder import length_batches

    lengths = [10] * 20 + [40] * 20 + [12]
    batches = length_batches(lengths, max_rows=16)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 16 for b in batches)
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        padding = sum(longest - lengths[i] for i in batch) / (longest * len(batch))
        assert padding <= 0.2 or len(batch) <= 8
    assert length_batches([5, 50, 7], max_rows=64) == [[0, 2, 1]]     # few rows: one batch


def test_the_task_builds_the_served_base_with_the_adapters_head_size(tiny):
    """The served base comes from Task.load_serving_base: the adapter's own label count
    (not a fixed 2), regression's single output, fp32 weights on CPU; routes ask the engine
    (WrongRoute) instead of testing its class."""
    from loralab.serving.engine_api import WrongRoute

    def built(task_name, labels):
        task = get_task(task_name)
        config = validate_config({"model": {"name": str(tiny), "task": task_name}})
        return EncoderEngine.for_task(config, task, labels, CPU)

    three = built("sequence_classification", ["a", "b", "c"])
    assert three.model.classifier.out_features == 3
    assert {p.dtype for p in three.model.parameters()} == {torch.float32}
    assert three.required_saved == ["classifier"] or "classifier" in three.required_saved[0]
    assert built("regression", None).model.classifier.out_features == 1
    assert three.serves == "classify" and three.base_kind == "embed"
    three.require("classify", "x")
    with pytest.raises(WrongRoute, match="'x' is a text encoder model: use /v1/classify"):
        three.require("generate", "x")
