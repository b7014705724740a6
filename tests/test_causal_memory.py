"""The causal LM's memory path: response positions only through lm_head, a chunk at a time, with
the same loss and gradient as the full-logits reference; evaluation likewise; gradient
checkpointing chosen from a measured estimate (training.gradient_checkpointing)."""

import pytest
import torch

from loralab.config import load_config
from loralab.data.loader import load_data
from loralab.errors import ConfigError
from loralab.models.head import OutputHead
from loralab.models.placement import Placement
from loralab.tasks import get_task
from loralab.tasks import response_loss as chunked
from loralab.tasks.response_loss import PositionTerm, response_loss

from conftest import build_tiny_llama

LOSSES = {
    "ce": "[{type: ce}]",
    "first_k_ce": "[{type: ce}, {type: first_k_ce, weight: 0.5, k: 3}]",
    "kd": "[{type: ce}, {type: kd, weight: 0.3, temperature: 2}]",
}


def built_task(model_dir, files, *extra):
    from test_causal import lm_config

    config = lm_config(model_dir, *files, *extra)
    task = get_task("causal_lm", config)
    built = task.build_model(config, None, Placement.cpu_fp32())
    return config, task, built


def random_adapter(model):
    """LoRA B starts at zero (student == teacher); give it values so every term has a
    gradient."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def one_batch(config, task, built, rows=8):
    records = load_data(config.data, task.records).splits["train"][:rows]
    features = task.encode(records, built.tokenizer, None, config.model.max_length)
    batch = task.collator(built.tokenizer)(features)
    return batch, batch.pop("labels")


@pytest.fixture(scope="module")
def tied_llama(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tied-llama"), seed=1,
                            tie_word_embeddings=True)


@pytest.mark.parametrize("term", sorted(LOSSES))
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_chunked_loss_and_gradient_equal_the_full_logits_loss(
        term, tied, tiny_llama, tied_llama, intent_lm_files, monkeypatch):
    model_dir = tied_llama if tied else tiny_llama
    config, task, built = built_task(model_dir, intent_lm_files, f"training.loss={LOSSES[term]}")
    model = built.model.train()
    random_adapter(model)
    batch, gold = one_batch(config, task, built)
    params = [p for p in model.parameters() if p.requires_grad]
    reference, parts = task.training_loss(model, batch, model(**batch, use_cache=False).logits,
                                          gold)
    expected = torch.autograd.grad(reference, params)
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 4 * len(built.tokenizer) * 7)  # 7 rows a chunk
    out = task.training_forward(model, model, batch, gold)
    found = torch.autograd.grad(out.loss, params)
    torch.testing.assert_close(out.loss, reference, rtol=1e-6, atol=1e-6)
    assert set(out.parts) == set(parts)
    for name in parts:
        torch.testing.assert_close(out.parts[name], parts[name], rtol=1e-6, atol=1e-6)
    scale = float(max(g.abs().max() for g in expected))
    assert scale > 1e-2  # the comparison is not of zeros
    for got, want in zip(found, expected):  # 1e-6 of the gradient's scale (fp32 sums)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * scale)
    if term == "kd":
        assert out.parts["kd"] > 1e-3


def test_lm_head_sees_only_response_positions_a_chunk_at_a_time(tiny_llama, intent_lm_files,
                                                               monkeypatch):
    config, task, built = built_task(tiny_llama, intent_lm_files)
    batch, gold = one_batch(config, task, built)
    seen = []
    head = built.model.get_output_embeddings()
    handle = head.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 4 * len(built.tokenizer) * 16)
    try:
        task.training_forward(built.model, built.model, batch, gold)
    finally:
        handle.remove()
    responses = int((gold[:, 1:] != -100).sum())
    assert seen[0][-2] == 0                                # the model's own call: no position
    rows = [shape[0] for shape in seen[1:]]
    assert max(rows) == 16 and sum(rows) == responses < gold.numel()


def test_a_trainable_output_layer_gets_the_plain_gradient():
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 11)
    hidden = torch.randn(9, 6, requires_grad=True)
    targets = torch.randint(0, 11, (9,))
    coef = torch.rand(9)
    plain = (coef * torch.nn.functional.cross_entropy(layer(hidden), targets,
                                                      reduction="none")).sum()
    expected = torch.autograd.grad(plain, [hidden, layer.weight, layer.bias])
    result = response_loss(hidden, targets, OutputHead(layer),
                           [PositionTerm("ce", "nll", coef)], chunk=4)
    found = torch.autograd.grad(result.total * 3.0, [hidden, layer.weight, layer.bias])
    for got, want in zip(found, expected):
        torch.testing.assert_close(got, want * 3.0, rtol=1e-6, atol=1e-6)


def test_evaluation_losses_equal_the_full_logits_losses(tiny_llama, intent_lm_files):
    from loralab.tasks.base import Task

    config, task, built = built_task(tiny_llama, intent_lm_files)
    random_adapter(built.model)
    batch, gold = one_batch(config, task, built)
    model = built.model.eval()
    with torch.no_grad():
        reference = Task.evaluation_items(task, model, batch, gold)
        found = task.evaluation_items(model, batch, gold)
    for (got_sum, got_count), got_loss in found:
        (want_sum, want_count), want_loss = reference.pop(0)
        assert got_count == want_count and got_loss == pytest.approx(want_loss, rel=1e-6)
        assert got_sum == pytest.approx(want_sum, rel=1e-6)


def saved_bytes_of(model, batch):
    params = {p.data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        if tensor.data_ptr() not in params:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    from loralab.models.head import head_inputs

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), head_inputs(model):
        model(**batch, use_cache=False)
    return sum(storages.values())


def test_activation_estimate_matches_a_measured_batch(tiny_llama):
    from loralab.models.memory import activation_bytes

    config, task, built = built_task(tiny_llama, ("t.jsonl", "d.jsonl"), "lora.dropout=0.1")
    model = built.model.train()
    ids = torch.randint(5, 90, (4, 150))
    measured = saved_bytes_of(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    estimate = activation_bytes(model, 4, 150, torch.device("cpu"), None)
    assert estimate == pytest.approx(measured, rel=0.1)


@pytest.mark.parametrize("setting", ["auto", "true", "false"])
def test_gradient_checkpointing_setting_is_applied_and_recorded(setting, tiny_llama):
    config, task, built = built_task(tiny_llama, ("t.jsonl", "d.jsonl"),
                                     f"training.gradient_checkpointing={setting}")
    record = built.memory
    base = built.model.get_base_model()
    assert record["setting"] == setting and record["attention"] == "sdpa"
    assert record["enabled"] == (setting == "true") == base.is_activation_checkpointing
    assert record["activation_mb"] > 0
    assert (record["budget_mb"] is not None) == (setting == "auto")
    note = next(n for n in built.notes if n.startswith("gradient checkpointing"))
    assert ("auto: within the budget" in note) == (setting == "auto")


def test_auto_checkpoints_as_few_layers_as_the_budget_allows():
    from loralab.models.memory import checkpointed_bytes, choose

    total, layers, layer_input = 3000.0, 30, 1.0   # 100 per layer
    assert choose("auto", total, layers, layer_input, budget=3000) is None
    assert choose("auto", total, layers, layer_input, budget=10) == 1
    every = choose("auto", total, layers, layer_input, budget=1700)
    assert every == 2 and checkpointed_bytes(total, layers, layer_input, 2) <= 1700
    assert checkpointed_bytes(total, layers, layer_input, 3) > 1700
    assert choose(True, total, layers, layer_input, None) == 1
    assert choose(False, total, layers, layer_input, None) is None


def test_checkpointed_training_step_gives_the_same_gradient(tiny_llama, intent_lm_files):
    grads = {}
    for setting in ("false", "true"):
        torch.manual_seed(0)  # the same LoRA A in both models
        config, task, built = built_task(tiny_llama, intent_lm_files, "lora.dropout=0.1",
                                         f"training.gradient_checkpointing={setting}")
        model = built.model.train()
        random_adapter(model)
        batch, gold = one_batch(config, task, built)
        torch.manual_seed(3)
        out = task.training_forward(model, model, batch, gold)
        out.loss.backward()
        grads[setting] = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    for got, want in zip(grads["true"], grads["false"]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_gradient_checkpointing_values():
    assert load_config(None, ["model.task=causal_lm"]).training.gradient_checkpointing == "auto"
    with pytest.raises(ConfigError, match=r"training\.gradient_checkpointing: expected true, "
                                          r"false or auto \(got 1\)"):
        load_config(None, ["model.task=causal_lm", "training.gradient_checkpointing=1"])
    assert load_config(None, ["training.gradient_checkpointing=false"])  # encoders: as before
    with pytest.raises(ConfigError, match="gradient_checkpointing=true is for model.task"):
        load_config(None, ["training.gradient_checkpointing=true"])
