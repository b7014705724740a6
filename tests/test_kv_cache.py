"""The decode step's cache argument: the name the model's own forward takes, on any allowed
transformers version (`cache` in recent 5.x, `past_key_values` before), and a cached decode
equals a full re-read of the sequence."""

from __future__ import annotations

import torch
import transformers

from loralab.models.kv_cache import cache_keyword, cache_kwargs, new_cache


class OlderForward(torch.nn.Module):
    """A forward signature as transformers versions before the rename wrote it."""

    def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs):
        return input_ids


def tiny_llama():
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def test_the_keyword_follows_the_forward_signature():
    model = tiny_llama()
    import inspect
    names = inspect.signature(type(model).forward).parameters
    expected = "cache" if "cache" in names else "past_key_values"
    assert cache_keyword(type(model)) == expected
    assert cache_keyword(OlderForward) == "past_key_values"
    assert set(cache_kwargs(OlderForward(), "c")) == {"past_key_values", "use_cache"}


def test_a_cached_decode_step_equals_reading_the_whole_sequence():
    model = tiny_llama()
    ids = torch.tensor([[5, 9, 13, 2, 40]])
    with torch.inference_mode():
        full = model(input_ids=ids).logits[:, -1]
        cache = new_cache(model)
        model(input_ids=ids[:, :-1], **cache_kwargs(model, cache))
        step = model(input_ids=ids[:, -1:], **cache_kwargs(model, cache)).logits[:, -1]
        fresh = model(input_ids=ids[:, -1:]).logits[:, -1]
    assert torch.allclose(step, full, atol=1e-5)
    assert not torch.allclose(fresh, full, atol=1e-3)      # the cache really carried the prefix
