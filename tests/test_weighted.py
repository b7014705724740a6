"""The weighted LoRA variant: gradient rescaling, output dropout, the label-wise regulariser."""

import json

import pytest
import torch
from peft import LoraConfig as PeftLoraConfig
from peft import get_peft_model

from loralab.config import LoraConfig, load_config
from loralab.tasks import load_adapter
from loralab.training.recipe import TrainingRecipe
from loralab.training.variants import WeightedLoRA

SCALING = 2.0  # alpha / r below


def attached(model, cfg):
    """The weighted variant's hooks on `model`'s LoRA layers."""
    hooks = WeightedLoRA(cfg)
    hooks.attach(model)
    return hooks


def lora_linear(seed=0):
    torch.manual_seed(seed)
    base = torch.nn.Sequential(torch.nn.Linear(6, 5))
    model = get_peft_model(base, PeftLoraConfig(r=3, lora_alpha=6, target_modules=["0"]))
    layer = model.base_model.model[0]
    torch.nn.init.normal_(layer.lora_B["default"].weight)  # non-zero branch output
    return model, layer


def branch_output(layer, x):
    return layer.lora_B["default"](layer.lora_A["default"](x)) * SCALING


def test_gradient_entering_the_branch_is_scaled_per_token():
    x = torch.randn(2, 4, 6)  # two examples, four tokens
    plain, layer = lora_linear()
    plain.train()
    plain(x).sum().backward()
    plain_grad_b = layer.lora_B["default"].weight.grad.clone()

    weighted, wlayer = lora_linear()
    weighted.train()
    hooks = attached(weighted, LoraConfig(method="weighted", scale_factor=0.5))
    hooks.begin_step({})
    weighted(x).sum().backward()
    # d(sum)/d(branch) is 1 everywhere, so d/d(lora_B output) is SCALING; the hook multiplies it
    # per token by 0.5 / (||b|| + eps) with b the scaled branch output of that token
    with torch.no_grad():
        b = branch_output(wlayer, x)
        factor = 0.5 / (b.norm(dim=-1, keepdim=True) + 1e-6)
        a_out = wlayer.lora_A["default"](x)
        expected = torch.einsum("bto,bti->oi", SCALING * factor.expand_as(b), a_out)
        unscaled = torch.einsum("bto,bti->oi", torch.full_like(b, SCALING), a_out)
    torch.testing.assert_close(unscaled, plain_grad_b)
    torch.testing.assert_close(wlayer.lora_B["default"].weight.grad, expected)
    assert not torch.allclose(expected, plain_grad_b)


def test_the_factor_also_scales_the_gradient_of_a():
    x = torch.randn(2, 4, 6)
    weighted, layer = lora_linear()
    weighted.train()
    hooks = attached(weighted, LoraConfig(method="weighted", scale_factor=0.5))
    hooks.begin_step({})
    weighted(x).sum().backward()
    with torch.no_grad():
        b = branch_output(layer, x)
        grad_u = SCALING * 0.5 / (b.norm(dim=-1, keepdim=True) + 1e-6) * torch.ones_like(b)
        grad_h = grad_u @ layer.lora_B["default"].weight          # [batch, tokens, r]
        expected = torch.einsum("btr,bti->ri", grad_h, x)
        unscaled = torch.einsum("btr,bti->ri", torch.full_like(b, SCALING)
                                @ layer.lora_B["default"].weight, x)
    torch.testing.assert_close(layer.lora_A["default"].weight.grad, expected)
    assert not torch.allclose(expected, unscaled)


def test_the_regulariser_gradient_does_not_pass_through_the_factor():
    """R = lambda * mean_i mean_t ||b||^2 gets exactly its own gradient (an L2 penalty)."""
    x = torch.randn(3, 4, 6)
    model, layer = lora_linear()
    model.train()
    hooks = attached(model, LoraConfig(method="weighted", lambda_reg=0.3,
                                           scale_factor=0.5))
    hooks.begin_step({})
    model(x)
    hooks.regulariser(torch.tensor([True, True, True])).backward()
    plain, plain_layer = lora_linear()
    energy = branch_output(plain_layer, x).pow(2).sum(-1).mean(-1)
    (0.3 * energy.mean()).backward()
    for name in ("lora_A", "lora_B"):
        torch.testing.assert_close(getattr(layer, name)["default"].weight.grad,
                                   getattr(plain_layer, name)["default"].weight.grad)


def test_the_hook_reads_the_scaling_when_it_runs():
    x = torch.randn(2, 4, 6)
    model, layer = lora_linear()
    model.train()
    hooks = attached(model, LoraConfig(method="weighted", lambda_reg=1.0))
    layer.scaling["default"] = 5.0  # after the hooks were registered
    hooks.begin_step({})
    model(x)
    value = hooks.regulariser(torch.tensor([True, True]))
    with torch.no_grad():
        u = layer.lora_B["default"](layer.lora_A["default"](x))
        expected = (u * 5.0).pow(2).sum(-1).mean(-1).mean()
    assert float(value.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_regulariser_is_zero_without_correct_predictions_and_grows_with_the_branch():
    model, layer = lora_linear()
    model.train()
    hooks = attached(model, LoraConfig(method="weighted", lambda_reg=0.3))
    x = torch.randn(3, 4, 6)
    mask = torch.ones(3, 4, dtype=torch.long)
    mask[2, 2:] = 0

    def reg(correct):
        hooks.begin_step({"attention_mask": mask})
        model(x)
        return hooks.regulariser(torch.tensor(correct))

    assert float(reg([False, False, False])) == 0.0
    value = reg([True, False, True])
    with torch.no_grad():
        energy = branch_output(layer, x).pow(2).sum(-1)
        per_example = torch.stack([energy[0].mean(), energy[1].mean(), energy[2, :2].mean()])
    assert float(value.detach()) == pytest.approx(0.3 * float(per_example[[0, 2]].mean()), rel=1e-5)
    value.backward()  # the regulariser carries gradient to the adapter
    assert layer.lora_A["default"].weight.grad.abs().sum() > 0
    with torch.no_grad():
        layer.lora_B["default"].weight.mul_(2)
    doubled = reg([True, False, True]).detach()
    assert float(doubled) == pytest.approx(4 * float(value.detach()), rel=1e-5)


def test_output_dropout_acts_in_training_only():
    model, _ = lora_linear()
    hooks = attached(model, LoraConfig(method="weighted", output_dropout=0.5))
    x = torch.randn(4, 8, 6)
    model.train()
    hooks.begin_step({})
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    hooks.detach()
    model.train()
    torch.testing.assert_close(model(x), model(x))


def test_weighted_training_logs_the_regulariser_and_saves_plain_lora(tiny_bert, sentiment_files,
                                                                     tmp_path):
    config = load_config(None, [
        f"model.name={tiny_bert}", f"data.train={sentiment_files[0]}",
        f"data.validation={sentiment_files[1]}", "training.epochs=4",
        "training.learning_rate=1e-2", "lora.dropout=0", "lora.r=4", "lora.method=weighted",
        "lora.scale_factor=0.5", "lora.output_dropout=0.1", "lora.lambda_reg=0.05",
        "training.logging_steps=5"])
    recipe = TrainingRecipe(config, tmp_path / "run", progress=False)
    metrics = recipe.run_all()
    lines = [json.loads(x) for x in (tmp_path / "run" / "diagnostics.jsonl").read_text()
             .splitlines() if '"eval"' not in x]
    assert lines and all(line["reg_loss"] >= 0 for line in lines)
    assert any(line["reg_loss"] > 0 for line in lines[1:])
    adapter = tmp_path / "run" / metrics["adapter"]
    peft_config = json.loads((adapter / "adapter_config.json").read_text())
    assert peft_config["peft_type"] == "LORA" and peft_config["use_dora"] is False
    lora_bs = [m.lora_B["default"] for m in recipe.model.modules() if hasattr(m, "lora_B")]
    assert lora_bs and not any(b._forward_hooks for b in lora_bs)  # removed from the trained model
    loaded = load_adapter(adapter)
    torch.testing.assert_close(loaded.model.base_model.model.bert.encoder.layer[0].attention
                               .self.query.lora_B["default"].weight.cpu(),
                               lora_bs[0].weight.detach().cpu())
