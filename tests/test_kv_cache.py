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


def test_caches_of_two_batches_join_row_wise_and_padding_columns_drop():
    from loralab.models.kv_cache import append_rows, can_merge, drop_left

    model = tiny_llama()
    long, short = torch.tensor([[5, 9, 13, 2, 40, 7]]), torch.tensor([[11, 3]])
    with torch.inference_mode():
        caches = []
        for ids in (long, short):
            cache = new_cache(model)
            model(input_ids=ids, **cache_kwargs(model, cache))
            caches.append(cache)
        assert can_merge(caches[0])
        append_rows(caches[0], caches[1])
        assert caches[0].get_seq_length() == 6
        mask = torch.tensor([[1] * 6 + [1], [0] * 4 + [1, 1] + [1]])
        step = model(input_ids=torch.tensor([[8], [8]]), attention_mask=mask,
                     position_ids=torch.tensor([[6], [2]]),
                     **cache_kwargs(model, caches[0])).logits[:, -1]
        alone = [model(input_ids=torch.cat([ids, torch.tensor([[8]])], 1)).logits[0, -1]
                 for ids in (long, short)]
        assert torch.allclose(step[0], alone[0], atol=1e-5)
        assert torch.allclose(step[1], alone[1], atol=1e-5)
        caches[0].batch_select_indices(torch.tensor([1]))
        drop_left(caches[0], 4)
        assert caches[0].get_seq_length() == 3


def test_a_sliding_window_cache_is_not_joined():
    from loralab.models.kv_cache import can_merge

    config = transformers.MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, max_position_embeddings=64,
                                        sliding_window=8)
    model = transformers.MistralForCausalLM(config).eval()
    cache = new_cache(model)
    with torch.inference_mode():
        model(input_ids=torch.tensor([[1, 2, 3]]), **cache_kwargs(model, cache))
    assert not can_merge(cache)
