"""PyTorch Latent Speech-Text Transformer (LST).

Tokens (text pieces, markers, speech units) are embedded and contextualised by a small local encoder
(windowed causal self-attention). Each patch (a run of up to `patch_size` speech tokens, or a single
text/marker/special token) is pooled into one global input by cross-attention whose queries start as the
max-pool of the patch's token states. A Llama transformer runs over the patches. A small local decoder
then predicts every next token: before each of its windowed self-attention layers, each token attends to
the global states of patches that closed before its own patch (plus a learned null state, so the first
patch has something to read), which is exactly what it has at generation time.

The global and local self-attention layers are transformers' own Llama blocks (RoPE, SDPA / eager /
flash attention through the library's interface, library-made causal and sliding-window masks, gradient
checkpointing); the cross-attentions use the same attention interface with masks built here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, LlamaConfig, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast, SequenceClassifierOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (
    LlamaDecoderLayer,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    eager_attention_forward,
)
from transformers.utils import ModelOutput

from .configuration_lst import LSTConfig
from .local_attention import IMPLEMENTATION_NAME as BLOCK_SLIDING_WINDOW
from .patching import patch_ids_from_starts, static_patch_starts


@dataclass
class LSTModelOutput(ModelOutput):
    """Outputs of [`LSTModel`].

    Args:
        last_hidden_state: the local decoder's token states, `(batch, tokens, local_hidden_size)`.
        global_hidden_states: the global transformer's patch states, `(batch, patches, hidden_size)`.
        patch_ids: each token's patch index, `(batch, tokens)`.
        patch_mask: 1 for patches made of real (non-padding) tokens, `(batch, patches)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    global_hidden_states: torch.FloatTensor | None = None
    patch_ids: torch.LongTensor | None = None
    patch_mask: torch.LongTensor | None = None


def local_llama_config(config: LSTConfig) -> LlamaConfig:
    """The local encoder's and decoder's self-attention layers as a Llama shape with a sliding window."""
    local = LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.local_hidden_size,
        intermediate_size=config.local_intermediate_size,
        num_hidden_layers=config.encoder_num_layers + config.decoder_num_layers,
        num_attention_heads=config.local_num_attention_heads,
        num_key_value_heads=config.local_num_key_value_heads,
        hidden_act=config.hidden_act,
        max_position_embeddings=config.max_position_embeddings * config.max_patch_length,
        rms_norm_eps=config.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        attention_dropout=config.attention_dropout,
        initializer_range=config.initializer_range,
    )
    local.sliding_window = config.local_attention_window
    # Always the blocked sliding window; it runs config._attn_implementation (sdpa / eager) on the blocks.
    local._attn_implementation = BLOCK_SLIDING_WINDOW
    return local


class LSTCrossAttention(nn.Module):
    """Multi-head cross-attention (no RoPE), with RMSNorm on queries and keys/values, as in BLT.

    Windowed by construction: keys and values are projected once, then each group of queries (a token,
    or the k queries of a patch) gathers only the keys of its window, so the cost grows with the window,
    not with the sequence. Runs through transformers' attention interface (`config._attn_implementation`)
    with `batch x groups` as the attention batch.
    """

    def __init__(self, config: LSTConfig, key_value_size: int):
        super().__init__()
        self.config = config
        size, heads = config.local_hidden_size, config.cross_attn_num_heads
        self.num_heads, self.head_dim = heads, size // heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.num_key_value_groups = 1
        self.query_norm = LlamaRMSNorm(size, eps=config.rms_norm_eps)
        self.key_value_norm = LlamaRMSNorm(key_value_size, eps=config.rms_norm_eps)
        self.q_proj = nn.Linear(size, size, bias=False)
        self.k_proj = nn.Linear(key_value_size, size, bias=False)
        self.v_proj = nn.Linear(key_value_size, size, bias=False)
        self.o_proj = nn.Linear(size, size, bias=False)

    def forward(
        self, queries: torch.Tensor, keys_values: torch.Tensor, key_index: torch.Tensor, key_allowed: torch.Tensor
    ) -> torch.Tensor:
        """Attend from query groups to gathered keys.

        Args:
            queries: `(batch, groups, queries_per_group, size)`.
            keys_values: `(batch, keys, key_value_size)`.
            key_index: `(batch, groups, window)` indices into `keys_values` for each group.
            key_allowed: `(batch, groups, window)` boolean; every group must be allowed at least one key.
        """
        batch, groups, per_group, size = queries.shape
        window = key_index.shape[-1]
        keys_values = self.key_value_norm(keys_values)
        rows = torch.arange(batch, device=queries.device)[:, None, None]
        key = self.k_proj(keys_values).view(batch, -1, self.num_heads, self.head_dim)[rows, key_index]
        value = self.v_proj(keys_values).view(batch, -1, self.num_heads, self.head_dim)[rows, key_index]
        # (batch, groups, window, heads, head_dim) -> (batch * groups, heads, window, head_dim)
        key = key.reshape(batch * groups, window, self.num_heads, self.head_dim).transpose(1, 2)
        value = value.reshape(batch * groups, window, self.num_heads, self.head_dim).transpose(1, 2)
        query = self.q_proj(self.query_norm(queries)).view(batch * groups, per_group, self.num_heads, -1)
        query = query.transpose(1, 2)
        mask = key_allowed.reshape(batch * groups, 1, 1, window)
        implementation = self.config._attn_implementation
        if implementation == "eager":  # eager adds the mask to the scores
            mask = torch.zeros(mask.shape, dtype=query.dtype, device=query.device).masked_fill(
                ~mask, torch.finfo(query.dtype).min
            )
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        output, _ = attention(self, query, key, value, mask, dropout=0.0, scaling=self.scaling)
        return self.o_proj(output.reshape(batch, groups, per_group, size))


class LSTLocalEncoder(nn.Module):
    """Token embeddings -> windowed causal self-attention -> cross-attention pooling into patch embeddings."""

    def __init__(self, config: LSTConfig, local_config: LlamaConfig):
        super().__init__()
        self.config = config
        k, size = config.cross_attn_k, config.local_hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, size, config.pad_token_id)
        self.layers = nn.ModuleList(LlamaDecoderLayer(local_config, i) for i in range(config.encoder_num_layers))
        self.query_projection = nn.Linear(size, k * size, bias=False)
        self.pooling = LSTCrossAttention(config, size)
        self.patch_projection = (
            nn.Identity() if k * size == config.hidden_size else nn.Linear(k * size, config.hidden_size, bias=False)
        )

    def forward(self, input_ids, local_attention, position_embeddings, patch_ids, num_patches, token_is_real):
        hidden = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden = layer(hidden, position_embeddings=position_embeddings, **local_attention)
        batch, length, size = hidden.shape
        k = self.config.cross_attn_k

        # Queries start as the max over each patch's token states.
        pooled = hidden.new_full((batch, num_patches, size), float("-inf"))
        pooled = pooled.scatter_reduce(1, patch_ids[..., None].expand(-1, -1, size), hidden, "amax")
        pooled = torch.where(torch.isinf(pooled), torch.zeros_like(pooled), pooled)
        queries = self.query_projection(pooled).view(batch, num_patches, k, size)

        # The k queries of patch p read the tokens of patches p - W + 1 .. p (padding only within their own
        # patch, so that a padding patch still has a key).
        positions = torch.arange(length, device=hidden.device).expand(batch, -1)
        first = torch.full((batch, num_patches), length, device=hidden.device).scatter_reduce(1, patch_ids, positions, "amin")
        end = torch.zeros((batch, num_patches), dtype=torch.long, device=hidden.device).scatter_reduce(
            1, patch_ids, positions + 1, "amax"
        )
        empty = end == 0  # slots past a short row's last patch: read token 0, masked downstream
        first, end = first.masked_fill(empty, 0), end.masked_fill(empty, 1)
        window = self.config.cross_attn_window_encoder
        earlier = torch.arange(num_patches, device=hidden.device).sub(window - 1).clamp(min=0).expand(batch, -1)
        window_start = first.gather(1, earlier)
        span = int((end - window_start).max())
        key_index = window_start[..., None] + torch.arange(span, device=hidden.device)
        in_window = key_index < end[..., None]
        key_index = key_index.clamp(max=length - 1)
        own_patch = patch_ids.gather(1, key_index.flatten(1)).view_as(key_index) == torch.arange(
            num_patches, device=hidden.device
        )[None, :, None]
        key_allowed = in_window & (token_is_real.gather(1, key_index.flatten(1)).view_as(key_index) | own_patch)
        key_allowed = key_allowed | (empty[..., None] & (torch.arange(span, device=hidden.device) == 0))
        queries = queries + self.pooling(queries, hidden, key_index, key_allowed)
        return hidden, self.patch_projection(queries.view(batch, num_patches, k * size))


class LSTGlobalTransformer(nn.Module):
    """Llama decoder layers over patch embeddings (no token-embedding table: its inputs are patches)."""

    def __init__(self, global_config: LlamaConfig):
        super().__init__()
        self.config = global_config
        self.layers = nn.ModuleList(
            LlamaDecoderLayer(global_config, i) for i in range(global_config.num_hidden_layers)
        )
        self.norm = LlamaRMSNorm(global_config.hidden_size, eps=global_config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(global_config)

    def forward(self, patch_embeds, patch_mask, position_ids):
        mask = create_causal_mask(
            config=self.config,
            inputs_embeds=patch_embeds,
            attention_mask=patch_mask,
            past_key_values=None,
            position_ids=position_ids,
        )
        position_embeddings = self.rotary_emb(patch_embeds, position_ids)
        hidden = patch_embeds
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=position_embeddings)
        return self.norm(hidden)


class LSTLocalDecoder(nn.Module):
    """Token-level decoder: cross-attention to closed patches' global states, then windowed self-attention."""

    def __init__(self, config: LSTConfig, local_config: LlamaConfig):
        super().__init__()
        self.config = config
        k, size = config.cross_attn_k, config.local_hidden_size
        self.global_projection = nn.Linear(config.hidden_size, k * size, bias=False)
        # Read by tokens of the first patch, which has no closed patch before it.
        self.null_patch_state = nn.Parameter(torch.zeros(k, size))
        self.cross_attentions = nn.ModuleList(
            LSTCrossAttention(config, size) for _ in range(config.decoder_num_layers)
        )
        self.layers = nn.ModuleList(
            LlamaDecoderLayer(local_config, config.encoder_num_layers + i) for i in range(config.decoder_num_layers)
        )
        self.norm = LlamaRMSNorm(size, eps=config.rms_norm_eps)

    def forward(self, hidden, global_states, patch_mask, patch_ids, local_attention, position_embeddings):
        batch, num_patches, _ = global_states.shape
        k, size = self.config.cross_attn_k, self.config.local_hidden_size
        keys = self.global_projection(global_states).view(batch, num_patches * k, size)
        keys = torch.cat([self.null_patch_state.expand(batch, -1, -1), keys], dim=1)

        # A token of patch p reads the null state (keys 0..k-1) and the closed, non-padding patches
        # p - W .. p - 1 (patch j's keys sit at (j + 1) * k ..).
        window = self.config.cross_attn_window_decoder
        read = patch_ids[..., None] - window + torch.arange(window, device=hidden.device)  # (batch, tokens, W)
        readable = (read >= 0) & patch_mask.bool().gather(1, read.clamp(min=0).flatten(1)).view_as(read)
        offsets = torch.arange(k, device=hidden.device)
        key_index = ((read.clamp(min=0) + 1) * k)[..., None] + offsets  # (batch, tokens, W, k)
        key_index = torch.cat([offsets.expand(*read.shape[:2], -1), key_index.flatten(2)], dim=2)
        key_allowed = torch.cat(
            [readable.new_ones(*read.shape[:2], k), readable.repeat_interleave(k, dim=2)], dim=2
        )

        for cross_attention, layer in zip(self.cross_attentions, self.layers):
            hidden = hidden + cross_attention(hidden[:, :, None], keys, key_index, key_allowed).squeeze(2)
            hidden = layer(hidden, position_embeddings=position_embeddings, **local_attention)
        return self.norm(hidden)


class LSTPreTrainedModel(PreTrainedModel):
    config: LSTConfig
    config_class = LSTConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "LSTCrossAttention"]
    _supports_sdpa = True
    _supports_flash_attn = False  # the cross-attention masks are arbitrary, not causal or windowed
    _supports_attention_backend = True

    def get_input_embeddings(self):
        return self.base_model.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.base_model.encoder.embed_tokens = value

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, LSTLocalDecoder):
            init.normal_(module.null_patch_state, std=self.config.initializer_range)


class LSTModel(LSTPreTrainedModel):
    """The LST backbone: local encoder, global transformer over patches, local decoder."""

    def __init__(self, config: LSTConfig):
        super().__init__(config)
        self.local_config = local_llama_config(config)
        self.global_config = config.global_llama_config()
        self.encoder = LSTLocalEncoder(config, self.local_config)
        self.global_transformer = LSTGlobalTransformer(self.global_config)
        self.decoder = LSTLocalDecoder(config, self.local_config)
        self.local_rotary_emb = LlamaRotaryEmbedding(self.local_config)
        self.post_init()

    def speech_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        start, stop = self.config.speech_token_range
        return (input_ids >= start) & (input_ids < stop)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        patch_starts: torch.Tensor | None = None,
        **kwargs,
    ) -> LSTModelOutput:
        """`patch_starts` (boolean, `(batch, tokens)`) comes from the training loop's patching; by default
        speech runs are patched statically, as at inference."""
        # set_attn_implementation changes self.config; the global Llama config follows it (the local layers
        # run it inside their blocked sliding window, see local_attention.py).
        self.global_config._attn_implementation = self.config._attn_implementation
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        token_is_real = attention_mask.bool()
        if patch_starts is None:
            patch_starts = static_patch_starts(self.speech_mask(input_ids), self.config.patch_size)
        # Padding tokens are patches of their own, so they never share a patch with real tokens.
        patch_starts = patch_starts.bool() | ~token_is_real
        patch_ids = patch_ids_from_starts(patch_starts)
        num_patches = int(patch_ids.max()) + 1

        # Positions count real tokens / real patches only, so left padding does not shift them.
        token_positions = (token_is_real.long().cumsum(dim=1) - 1).clamp(min=0)
        local_attention = {"token_is_real": token_is_real, "block_implementation": self.config._attn_implementation}
        local_position_embeddings = self.local_rotary_emb(
            self.encoder.embed_tokens.weight[:1][None], token_positions
        )
        hidden, patch_embeds = self.encoder(
            input_ids, local_attention, local_position_embeddings, patch_ids, num_patches, token_is_real
        )

        patch_mask = torch.zeros(input_ids.shape[0], num_patches, dtype=torch.long, device=input_ids.device)
        patch_mask.scatter_reduce_(1, patch_ids, attention_mask.long(), "amax")
        patch_positions = (patch_mask.cumsum(dim=1) - 1).clamp(min=0)
        global_states = self.global_transformer(patch_embeds, patch_mask, patch_positions)
        # Padding patches' states are never read; zero them so nothing non-finite can travel.
        global_states = global_states * patch_mask[..., None].to(global_states.dtype)

        hidden = self.decoder(hidden, global_states, patch_mask, patch_ids, local_attention, local_position_embeddings)
        return LSTModelOutput(
            last_hidden_state=hidden, global_hidden_states=global_states, patch_ids=patch_ids, patch_mask=patch_mask
        )


class LSTForCausalLM(LSTPreTrainedModel, GenerationMixin):
    """LST with a language-modelling head over the joint vocabulary: one next-token loss on all positions."""

    _tied_weights_keys = {"lm_head.weight": "model.encoder.embed_tokens.weight"}

    def __init__(self, config: LSTConfig):
        super().__init__(config)
        self.model = LSTModel(config)
        self.lm_head = nn.Linear(config.local_hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        patch_starts: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        outputs = self.model(input_ids, attention_mask=attention_mask, patch_starts=patch_starts)
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits)


class LSTForSequenceClassification(LSTPreTrainedModel):
    """LST with a classification head on the mean of the decoder's states over non-padding tokens (SLUE-SA)."""

    def __init__(self, config: LSTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = LSTModel(config)
        self.score = nn.Linear(config.local_hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        patch_starts: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.model(input_ids, attention_mask=attention_mask, patch_starts=patch_starts).last_hidden_state
        weights = attention_mask.to(hidden.dtype)[..., None]
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        logits = self.score(pooled)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutputWithPast(loss=loss, logits=logits)


__all__ = [
    "LSTCrossAttention",
    "LSTForCausalLM",
    "LSTForSequenceClassification",
    "LSTModel",
    "LSTModelOutput",
    "LSTPreTrainedModel",
]
