"""Size and compute accounting for LST and its Llama baseline: parameters per part, matmul FLOPs per part, and
the weights a cached decoding step reads.

FLOPs count multiply-adds of matrix products as 2 FLOPs, for one forward pass (a training step costs
about 3x). Attention scores count only the keys a query may see (causal, windowed), as the algorithm
does; embeddings lookups, norms and activations are left out, as is customary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LlamaConfig

from .configuration_lst import LSTConfig


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Parameters of an `LSTModel` or `LSTForCausalLM`, per part (and in total)."""
    backbone = getattr(model, "model", model)
    encoder = backbone.encoder
    counts = {
        "embeddings": encoder.embed_tokens.weight.numel(),
        "local_encoder": sum(p.numel() for p in encoder.parameters()) - encoder.embed_tokens.weight.numel(),
        "global_transformer": sum(p.numel() for p in backbone.global_transformer.parameters()),
        "local_decoder": sum(p.numel() for p in backbone.decoder.parameters()),
        "lm_head": model.lm_head.weight.numel() if hasattr(model, "lm_head") else 0,
    }
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


# The linear layers of LST that a cached step runs only when a patch closes: the pooling into the patch, the
# global transformer, the projection of its state for the decoder, and the decoder cross-attentions' keys and
# values of that slot (`LSTCache.cross_projections`).
_PER_PATCH_PREFIXES = ("model.encoder.query_projection", "model.encoder.pooling.", "model.encoder.patch_projection",
                       "model.global_transformer.", "model.decoder.global_projection")


def decoding_weight_reads(model: torch.nn.Module) -> list[tuple[str, tuple[int, int], float]]:
    """Every linear layer's (name, weight shape, times it runs per generated speech token) in cached decoding.

    At batch 1 a linear layer is a matrix-vector product bound by reading its weight, so this is what caps a
    model's decoding speed. For an `LSTForCausalLM` the layers that run per closed patch count
    `1 / patch_size` (static patching of a speech run); for any other model (the Llama baseline) every linear
    layer runs per token.
    """
    patch_size = model.config.patch_size if isinstance(model.config, LSTConfig) else None
    reads = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            per_patch = patch_size is not None and (
                name.startswith(_PER_PATCH_PREFIXES)
                or (".cross_attention." in name and name.endswith(("k_proj", "v_proj")))
            )
            reads.append((name, tuple(module.weight.shape), 1 / patch_size if per_patch else 1.0))
    return reads


@dataclass(frozen=True)
class SequenceShape:
    """What the FLOPs of one sequence depend on: its tokens and, for LST, its patch lengths."""

    num_tokens: int
    patch_lengths: tuple[int, ...]

    @property
    def num_patches(self) -> int:
        return len(self.patch_lengths)


def _layer_flops(positions: int, width: int, heads: int, kv_heads: int, mlp: int, keys_per_query: float) -> float:
    """One Llama block (SwiGLU MLP) over `positions` queries, each attending to `keys_per_query` keys."""
    head_dim = width // heads
    projections = positions * width * (2 * width + 2 * kv_heads * head_dim)
    scores = 2 * positions * keys_per_query * width
    return 2 * (projections + scores + 3 * positions * width * mlp)


def _causal_keys(length: int, window: int | None = None) -> float:
    """Mean number of keys a causal (optionally windowed) query sees over `length` positions."""
    if length == 0:
        return 0.0
    if window is None or window >= length:
        return (length + 1) / 2
    return (window * (window + 1) / 2 + (length - window) * window) / length


def _cross_attention_flops(queries: int, keys: int, keys_per_query: float, width: int, kv_width: int) -> float:
    return 2 * (2 * queries * width * width + 2 * keys * kv_width * width + 2 * queries * keys_per_query * width)


def lst_flops(config: LSTConfig, sequence: SequenceShape, attention_scores: bool = True) -> dict[str, float]:
    """Forward matmul FLOPs of one sequence through LST, per part.

    `attention_scores=False` leaves out the query-key and attention-value products (to compare with a
    counter of executed matmuls, which cannot know what a mask discards).
    """
    tokens, patches, lengths = sequence.num_tokens, sequence.num_patches, sequence.patch_lengths
    scores = 1.0 if attention_scores else 0.0
    local, k, size = config.local_hidden_size, config.cross_attn_k, config.local_hidden_size
    local_keys = scores * _causal_keys(tokens, config.local_attention_window)
    local_layer = _layer_flops(
        tokens, local, config.local_num_attention_heads, config.local_num_key_value_heads,
        config.local_intermediate_size, local_keys,
    )
    # Pooling: k queries per patch read the tokens of their patch window.
    window_tokens = sum(sum(lengths[max(0, p - config.cross_attn_window_encoder + 1) : p + 1]) for p in range(patches))
    pooling = 2 * patches * local * k * local + _cross_attention_flops(
        patches * k, tokens, scores * window_tokens * k / max(patches * k, 1), size, size
    )
    if k * local != config.global_hidden_size:
        pooling += 2 * patches * k * local * config.global_hidden_size
    global_ = config.global_num_layers * _layer_flops(
        patches, config.global_hidden_size, config.global_num_attention_heads, config.global_num_key_value_heads,
        config.global_intermediate_size, scores * _causal_keys(patches),
    )
    # Decoder cross-attention: keys are the k null states and k per patch; each token reads the null
    # state and up to W closed patches.
    decoder_keys = scores * k * (1 + min(config.cross_attn_window_decoder, max(patches - 1, 0)))
    decoder = 2 * patches * config.global_hidden_size * k * local + config.decoder_num_layers * (
        local_layer + _cross_attention_flops(tokens, (patches + 1) * k, decoder_keys, size, size)
    )
    return {
        "local_encoder": config.encoder_num_layers * local_layer + pooling,
        "global_transformer": global_,
        "local_decoder": decoder,
        "lm_head": 2 * tokens * local * config.vocab_size,
    }


def llama_flops(config: LlamaConfig, num_tokens: int, attention_scores: bool = True) -> dict[str, float]:
    """Forward matmul FLOPs of one sequence through a Llama model (the vanilla baseline), per part."""
    layers = config.num_hidden_layers * _layer_flops(
        num_tokens, config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
        config.intermediate_size, _causal_keys(num_tokens) if attention_scores else 0.0,
    )
    return {"transformer": layers, "lm_head": 2 * num_tokens * config.hidden_size * config.vocab_size}
