"""Blocked sliding-window attention equals dense masked attention, for any length, window and padding."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaAttention

from lst_speech.modeling_lst.local_attention import block_sliding_window_attention


def dense_reference(query, key, value, window, token_is_real, scaling):
    """Plain softmax attention with the window / padding mask (padding queries see only themselves)."""
    num_queries, num_keys = query.shape[2], key.shape[2]
    query_positions = torch.arange(num_keys - num_queries, num_keys)
    distance = query_positions[:, None] - torch.arange(num_keys)[None, :]
    in_window = (distance >= 0) & (distance < window)
    query_real = token_is_real[:, num_keys - num_queries :]
    allowed = in_window[None] & (token_is_real[:, None, :] | (~query_real[..., None] & (distance == 0)[None]))
    scores = (query @ key.transpose(-1, -2)) * scaling
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return (scores.softmax(-1) @ value).transpose(1, 2)


def module_with_window(window: int, heads: int = 2, kv_heads: int = 2) -> LlamaAttention:
    config = LlamaConfig(hidden_size=8 * heads, num_attention_heads=heads, num_key_value_heads=kv_heads)
    config.sliding_window = window
    return LlamaAttention(config, layer_idx=0)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize(("length", "window"), [(1, 4), (7, 1), (13, 4), (16, 6), (37, 8), (20, 64)])
@pytest.mark.parametrize("padding", ["none", "left", "right"])
def test_blocked_equals_dense(implementation, length, window, padding):
    torch.manual_seed(length * 100 + window)
    batch, heads, head_dim = 3, 2, 8
    query, key, value = (torch.randn(batch, heads, length, head_dim) for _ in range(3))
    token_is_real = torch.ones(batch, length, dtype=torch.bool)
    if padding == "left":
        token_is_real[1, : length // 2] = False
    elif padding == "right":
        token_is_real[2, length - length // 3 :] = False
    scaling = 1 / math.sqrt(head_dim)
    output, _ = block_sliding_window_attention(
        module_with_window(window), query, key, value, None, token_is_real=token_is_real,
        block_implementation=implementation, scaling=scaling,
    )
    expected = dense_reference(query, key, value, window, token_is_real, scaling)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)


def test_new_queries_against_cached_keys():
    torch.manual_seed(0)
    query = torch.randn(2, 2, 3, 8)
    key, value = torch.randn(2, 2, 10, 8), torch.randn(2, 2, 10, 8)
    real = torch.ones(2, 10, dtype=torch.bool)
    real[0, :4] = False
    output, _ = block_sliding_window_attention(module_with_window(5), query, key, value, None,
                                               token_is_real=real, scaling=8**-0.5)
    torch.testing.assert_close(output, dense_reference(query, key, value, 5, real, 8**-0.5), atol=1e-5, rtol=1e-5)


def test_grouped_query_attention_heads():
    torch.manual_seed(1)
    query = torch.randn(2, 4, 11, 8)
    key, value = torch.randn(2, 2, 11, 8), torch.randn(2, 2, 11, 8)
    real = torch.ones(2, 11, dtype=torch.bool)
    output, _ = block_sliding_window_attention(module_with_window(4, heads=4, kv_heads=2), query, key, value,
                                               None, token_is_real=real, scaling=8**-0.5)
    expanded = key.repeat_interleave(2, dim=1), value.repeat_interleave(2, dim=1)
    torch.testing.assert_close(output, dense_reference(query, *expanded, 4, real, 8**-0.5), atol=1e-5, rtol=1e-5)
