"""Sliding-window causal attention computed block by block, for LST's local encoder and decoder layers.

The local layers see `window` tokens (themselves included). A dense masked attention costs tokens^2 and a
tokens x tokens mask (576 MB per sequence at the paper's 12k local tokens); here queries are cut into
blocks of `block` (half the window) tokens, each attending to its own block and the `window - 1` keys before
it, so cost and memory grow as tokens x (block + window). The blocks become the batch of transformers' own
sdpa or eager attention function, so the kernels stay the library's; this function is registered in
transformers' `AttentionInterface` and the Llama layers call it like any other implementation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.models.llama.modeling_llama import eager_attention_forward, repeat_kv

IMPLEMENTATION_NAME = "lst_block_sliding_window"


def block_sliding_window_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    token_is_real: torch.Tensor,
    block_implementation: str = "sdpa",
    output_attentions: bool = False,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Causal attention of each query to the `module.config.sliding_window` latest real keys (itself included).

    Args:
        query: `(batch, heads, queries, head_dim)`; the queries are the last `queries` positions.
        key, value: `(batch, kv_heads, keys, head_dim)`.
        attention_mask: unused; the window and `token_is_real` define what is visible.
        token_is_real: `(batch, keys)` boolean, False for padding.
        block_implementation: "sdpa" or "eager", the library function run on the blocks.
        output_attentions: with "eager", also return the weights as a dense `(batch, heads, queries, keys)`
            tensor (zero outside each query's window). It costs queries x keys memory: for inspection only.
    Returns:
        `(batch, queries, heads, head_dim)` and the weights or None, as transformers' functions do.
    """
    if output_attentions and block_implementation != "eager":
        raise ValueError("Attention weights come from eager attention only: set attn_implementation='eager'.")
    window = module.config.sliding_window
    attend = eager_attention_forward if block_implementation == "eager" else sdpa_attention_forward
    batch, heads, num_queries, head_dim = query.shape
    num_keys = key.shape[2]
    all_values = value
    if num_queries != num_keys:  # a few new queries against cached keys: a small dense mask is enough
        keep = min(num_keys, window + num_queries - 1)  # older keys are outside every query's window
        key, value, token_is_real = key[:, :, -keep:], value[:, :, -keep:], token_is_real[:, -keep:]
        query_positions = torch.arange(keep - num_queries, keep, device=query.device)
        allowed = _window_mask(query_positions, torch.arange(keep, device=query.device), window, token_is_real)
        output, weights = attend(module, query, key, value, _as_mask(allowed[:, None], query, block_implementation),
                                 dropout=dropout, scaling=scaling)
        if output_attentions:  # older keys are outside every window: zero weight
            return _output_from_weights(F.pad(weights, (num_keys - keep, 0)), all_values)
        return output, None

    block = max(1, min(window // 2 or 1, num_queries))
    num_blocks = -(-num_queries // block)
    padded = num_blocks * block
    history = window - 1  # keys before a block's first query that the block may need
    # Keys/values with `history` positions in front (zeros, masked) and padded to whole blocks.
    key = F.pad(key, (0, 0, history, padded - num_keys))
    value = F.pad(value, (0, 0, history, padded - num_keys))
    real = F.pad(token_is_real, (history, padded - num_keys), value=False)
    span = block + history
    starts = torch.arange(num_blocks, device=query.device) * block  # in padded key coordinates
    key_index = starts[:, None] + torch.arange(span, device=query.device)  # (blocks, span)

    def blocks_of(states: torch.Tensor) -> torch.Tensor:  # (batch, h, keys, d) -> (batch * blocks, h, span, d)
        # Block b's keys are positions b * block .. b * block + span - 1 (key_index): an unfold, a view whose
        # backward is far cheaper than that of gathering by key_index.
        windows = states.unfold(2, span, block)  # (batch, h, blocks, d, span)
        return windows.permute(0, 2, 1, 4, 3).reshape(batch * num_blocks, states.shape[1], span, head_dim)

    query_blocks = F.pad(query, (0, 0, 0, padded - num_queries))
    query_blocks = query_blocks.view(batch, heads, num_blocks, block, head_dim).permute(0, 2, 1, 3, 4)
    query_blocks = query_blocks.reshape(batch * num_blocks, heads, block, head_dim)
    # Query r of block b sits at key coordinate starts[b] + history + r.
    query_positions = starts[:, None] + history + torch.arange(block, device=query.device)  # (blocks, block)
    distance = query_positions[:, :, None] - key_index[:, None, :]  # (blocks, block, span)
    in_window = (distance >= 0) & (distance < window)
    key_real = real[:, key_index]  # (batch, blocks, span)
    query_real = real.gather(1, query_positions.flatten()[None].expand(batch, -1)).view(batch, num_blocks, block)
    # Padding queries (and the block-filling tail) read only themselves, so no softmax row is empty.
    allowed = in_window[None] & (key_real[:, :, None, :] | (~query_real[..., None] & (distance == 0)))
    allowed = allowed.reshape(batch * num_blocks, 1, block, span)
    output, weights = attend(module, query_blocks, blocks_of(key), blocks_of(value),
                             _as_mask(allowed, query, block_implementation), dropout=dropout, scaling=scaling)
    output = output.reshape(batch, num_blocks * block, heads, head_dim)[:, :num_queries]
    if not output_attentions:
        return output, None
    dense = dense_attention_weights(weights, key_index.expand(batch, -1, -1), history + padded)
    return _output_from_weights(dense[:, :, :num_queries, history : history + num_keys], all_values)


def _output_from_weights(weights: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The output recomputed from the dense weights, so that gradients reach the weights a user inspects (as in
    eager attention); the result equals the blocked output."""
    value = repeat_kv(value, weights.shape[1] // value.shape[1])
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def dense_attention_weights(weights: torch.Tensor, key_index: torch.Tensor, num_keys: int) -> torch.Tensor:
    """Weights computed over gathered keys, placed at the keys' positions: `(batch, heads, queries, num_keys)`.

    Args:
        weights: `(batch * groups, heads, queries_per_group, window)`, group g's queries over its window.
        key_index: `(batch, groups, window)`, the key each window position gathered. A key gathered twice (a
            clamped index, masked) adds its weights, which are zero where masked.
    """
    batch, groups, window = key_index.shape
    heads, per_group = weights.shape[1], weights.shape[2]
    weights = weights.view(batch, groups, heads, per_group, window)
    index = key_index[:, :, None, None, :].expand_as(weights)
    dense = weights.new_zeros(batch, groups, heads, per_group, num_keys).scatter_add(-1, index, weights)
    return dense.transpose(1, 2).reshape(batch, heads, groups * per_group, num_keys)


def _window_mask(query_positions, key_positions, window, token_is_real):
    distance = query_positions[:, None] - key_positions[None, :]
    in_window = (distance >= 0) & (distance < window)
    own = distance == 0
    return in_window[None] & (token_is_real[:, None, :] | own[None])


def _as_mask(allowed: torch.Tensor, query: torch.Tensor, implementation: str) -> torch.Tensor:
    if implementation != "eager":
        return allowed
    return torch.zeros(allowed.shape, dtype=query.dtype, device=query.device).masked_fill(
        ~allowed, torch.finfo(query.dtype).min
    )


AttentionInterface.register(IMPLEMENTATION_NAME, block_sliding_window_attention)
