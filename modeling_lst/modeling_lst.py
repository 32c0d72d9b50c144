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

import functools
import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, LlamaConfig, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast, SequenceClassifierOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    eager_attention_forward,
)
from transformers.utils import ModelOutput, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .cache_lst import LSTCache
from .configuration_lst import PRESETS, LSTConfig
from .input_checks import check_causal_lm_labels, check_class_labels, check_same_shape, check_token_ids
from .loading_checks import checked_load
from .local_attention import IMPLEMENTATION_NAME as BLOCK_SLIDING_WINDOW
from .local_attention import dense_attention_weights
from .patching import patch_ids_from_starts, static_patch_starts

logger = logging.get_logger(__name__)

HIDDEN_STATES_DOC = """
        hidden_states: with `output_hidden_states`, the local decoder's token states: its input (the encoder's
            output) and the output of each decoder layer, `decoder_num_layers + 1` tensors of
            `(batch, tokens, local_hidden_size)`; the last is `last_hidden_state` (after the final norm), as in
            every transformers model.
        encoder_hidden_states: with `output_hidden_states`, the output of each local encoder layer,
            `encoder_num_layers` tensors of `(batch, tokens, local_hidden_size)`; the last is the decoder's input,
            `hidden_states[0]`. (transformers' recorder prepends a module's input for `hidden_states` only.)
        global_hidden_states: with `output_hidden_states`, the output of each global transformer layer before
            the final norm, `global_num_layers` tensors of `(batch, slots, global_hidden_size)`. In a cached step they
            cover the patch that closed at that token, and are empty when none did.
        attentions: with `output_attentions` (eager attention only), each local decoder layer's self-attention
            weights, `decoder_num_layers` tensors of `(batch, local_num_attention_heads, tokens, tokens)`, zero
            outside each token's window of `local_attention_window` tokens.
        cross_attentions: each decoder layer's weights over the global patch states, `(batch, cross_attn_num_heads,
            tokens, (1 + slots) * cross_attn_k)`: keys 0..k-1 are the learned null state, slot s's k keys follow at
            (s + 1) * k.
        encoder_attentions: each local encoder layer's self-attention weights, as `attentions`.
        encoder_cross_attentions: the pooling cross-attention, one tensor `(batch, cross_attn_num_heads,
            slots * cross_attn_k, tokens)`: the k queries of each patch over the tokens it reads.
        global_attentions: each global layer's weights, `(batch, global_num_attention_heads, slots, slots)`.
        In a cached step the queries are the new token (or the closing patch) and the keys all that came before;
        `cross_attentions`' keys are then the cache's slots, of which `cache.slot_is_real` marks the real ones."""

# The per-part states and weights the heads pass on from the backbone (see HIDDEN_STATES_DOC).
RECORDED_FIELDS = ("hidden_states", "encoder_hidden_states", "global_hidden_states", "attentions", "cross_attentions",
                   "encoder_attentions", "encoder_cross_attentions", "global_attentions")


@dataclass
class LSTModelOutput(ModelOutput):
    __doc__ = """Outputs of [`LSTModel`].

    With `return_dict=False`, the tuple holds the fields that are set, in this order (the library's:
    `last_hidden_state` first, then `cache`).

    Args:
        last_hidden_state: the local decoder's token states, `(batch, tokens, local_hidden_size)`.
        cache: the generation cache, when `use_cache` (see `LSTCache`). `output.past_key_values` still reads it,
            with transformers' deprecation warning.
        last_global_hidden_state: the global transformer's patch states after its final norm, zero at padding
            slots, `(batch, slots, global_hidden_size)`.
        patch_ids: each token's patch index, `(batch, tokens)`.
        patch_mask: 1 for patches made of real (non-padding) tokens, `(batch, slots)`.""" + HIDDEN_STATES_DOC

    last_hidden_state: torch.FloatTensor | None = None
    cache: LSTCache | None = None
    last_global_hidden_state: torch.FloatTensor | None = None
    patch_ids: torch.LongTensor | None = None
    patch_mask: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    global_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    global_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class LSTCausalLMOutput(CausalLMOutputWithPast):
    __doc__ = """Outputs of [`LSTForCausalLM`]: the library's causal-LM fields, plus LST's per-part states.

    Args:
        loss, logits, cache: as in `CausalLMOutputWithPast`.""" + HIDDEN_STATES_DOC

    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    global_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    global_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class LSTSequenceClassifierOutput(SequenceClassifierOutputWithPast):
    __doc__ = """Outputs of [`LSTForSequenceClassification`]: the library's fields, plus LST's per-part states.

    Args:
        loss, logits: as in `SequenceClassifierOutputWithPast`.""" + HIDDEN_STATES_DOC

    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    global_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    global_attentions: tuple[torch.FloatTensor, ...] | None = None


def record_every_part(forward):
    """`output_hidden_states` / `output_attentions` (argument or config) ask for every part's states / weights.

    transformers' `capture_outputs` reads one `output_<key>` flag per recorded key; LST records three kinds of
    hidden states and five kinds of attention weights, which a user asks for with the two flags every model has.
    Weights exist only under eager attention: under another implementation LST warns and returns none, as the
    library's models do.
    """

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        attentions = bool(kwargs.get("output_attentions", self.config.output_attentions))
        if attentions and self.config._attn_implementation != "eager":
            logger.warning_once(f"Attention weights need eager attention, but this model runs "
                                f"{self.config._attn_implementation!r}, so none are returned: load it with "
                                "attn_implementation='eager' or call model.set_attn_implementation('eager') first.")
            attentions = False
        kwargs["output_attentions"] = attentions
        for key in ("output_encoder_attentions", "output_encoder_cross_attentions", "output_global_attentions"):
            kwargs.setdefault(key, attentions)
        wanted = kwargs.get("output_hidden_states", self.config.output_hidden_states)
        for key in ("output_encoder_hidden_states", "output_global_hidden_states"):
            kwargs.setdefault(key, bool(wanted))
        return forward(self, *args, **kwargs)

    return wrapper


def record_cached_tokens_one_at_a_time(forward):
    """Several new tokens after a cache, with per-layer states or weights asked for (assisted decoding's candidate
    check does this): each token is its own local step, so each is recorded by its own call and the records are
    joined along the token axis, as one forward over those tokens returns them. States are concatenated; weights
    are concatenated along the queries, each step's zero-padded over the keys it did not yet have. The global
    transformer's records hold one slot per step in which some row closed a patch (none if no row did)."""
    signature = inspect.signature(forward)

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments
        arguments.pop("self")
        arguments.update(arguments.pop("kwargs", {}))
        input_ids, cache, mask = arguments.get("input_ids"), arguments.get("cache"), arguments.get("attention_mask")
        recording = arguments.get("output_hidden_states") or arguments.get("output_attentions")
        seen = cache.get_seq_length() if cache is not None else 0
        if not (recording and seen and input_ids is not None and input_ids.shape[1] > 1):
            return forward(self, *args, **kwargs)
        return_dict = arguments.pop("return_dict", self.config.return_dict)
        steps = []
        for index in range(input_ids.shape[1]):
            arguments.update(input_ids=input_ids[:, index : index + 1],
                             attention_mask=None if mask is None else mask[:, : seen + index + 1])
            steps.append(forward(self, **arguments, return_dict=True))
        joined = LSTModelOutput(last_hidden_state=torch.cat([step.last_hidden_state for step in steps], dim=1),
                                cache=cache)
        for name in RECORDED_FIELDS:
            if any(name in step for step in steps):
                joined[name] = join_steps([step.get(name) or () for step in steps], axis=1 if "hidden" in name else 2)
        return joined if return_dict else joined.to_tuple()

    return wrapper


def join_steps(steps: list[tuple[torch.Tensor, ...]], axis: int) -> tuple[torch.Tensor, ...]:
    """Per-layer records of consecutive steps joined along `axis` (1: tokens of states; 2: queries of weights,
    whose last axis, the keys, grows from step to step and is zero-padded to the last step's)."""
    present = [step for step in steps if step]
    joined = []
    for layer in zip(*present):
        if axis == 2:
            keys = max(record.shape[-1] for record in layer)
            layer = [torch.nn.functional.pad(record, (0, keys - record.shape[-1])) for record in layer]
        joined.append(torch.cat(layer, dim=axis))
    return tuple(joined)


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


def gather_positions(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`states[b, index[b, ...]]` for each row b: `(batch, n, *rest)` and `(batch, *shape)` -> `(batch, *shape, *rest)`.

    Written as one `index_select` over the flattened rows, whose backward (index_add) is 2-3x faster on CPU than
    that of advanced indexing (an accumulating index_put), which the cross-attentions' gathers would otherwise use.
    """
    batch, length = states.shape[:2]
    offsets = torch.arange(batch, device=index.device).view(batch, *[1] * (index.dim() - 1)) * length
    flat = states.reshape(batch * length, *states.shape[2:]).index_select(0, (index + offsets).flatten())
    return flat.view(*index.shape, *states.shape[2:])


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
        self,
        queries: torch.Tensor,
        keys_values: torch.Tensor,
        key_index: torch.Tensor,
        key_allowed: torch.Tensor,
        output_attentions: bool = False,
        projected: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from query groups to gathered keys.

        Args:
            queries: `(batch, groups, queries_per_group, size)`.
            keys_values: `(batch, keys, key_value_size)`.
            key_index: `(batch, groups, window)` indices into `keys_values` for each group.
            key_allowed: `(batch, groups, window)` boolean; every group must be allowed at least one key.
            output_attentions: also return the weights over all keys, `(batch, heads, groups * queries_per_group,
                keys)` (eager attention only).
            projected: `project_keys_values(keys_values)`, when a cache holds it; `keys_values` is then unused.
        Returns:
            The attention output `(batch, groups, queries_per_group, size)` and the weights or None, like the
            library's attention modules.
        """
        batch, groups, per_group, size = queries.shape
        window = key_index.shape[-1]
        if projected is not None:
            key, value = (gather_positions(states, key_index) for states in projected)
        elif key_index[0].numel() < keys_values.shape[1]:
            # Fewer gathered keys than keys (windows that skip keys): gather, then project only those.
            gathered = self.key_value_norm(gather_positions(keys_values, key_index))
            key = self.k_proj(gathered).view(batch, groups, window, self.num_heads, self.head_dim)
            value = self.v_proj(gathered).view(batch, groups, window, self.num_heads, self.head_dim)
        else:  # keys shared by many groups (a full forward): project each key once, then gather
            projected = self.project_keys_values(keys_values)
            key, value = (gather_positions(states, key_index) for states in projected)
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
        output, weights = attention(self, query, key, value, mask, dropout=0.0, scaling=self.scaling)
        if not output_attentions:
            return self.o_proj(output.reshape(batch, groups, per_group, size)), None
        # Recompute the output from the weights over all keys, so that gradients reach the weights a user
        # inspects (as in eager attention); the result is the same.
        all_values = (projected or self.project_keys_values(keys_values))[1]
        weights = dense_attention_weights(weights, key_index, all_values.shape[1])
        output = torch.matmul(weights, all_values.transpose(1, 2)).transpose(1, 2)
        return self.o_proj(output.reshape(batch, groups, per_group, size)), weights

    def project_keys_values(self, keys_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of `(batch, keys, key_value_size)` states, each `(batch, keys, heads, head_dim)`."""
        batch, num_keys, _ = keys_values.shape
        normed = self.key_value_norm(keys_values)
        shape = (batch, num_keys, self.num_heads, self.head_dim)
        return self.k_proj(normed).view(shape), self.v_proj(normed).view(shape)


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
            nn.Identity() if k * size == config.global_hidden_size
            else nn.Linear(k * size, config.global_hidden_size, bias=False)
        )

    def contextualize(self, input_ids, position_embeddings, local_attention, cache=None):
        """Token states after the windowed self-attention layers."""
        hidden = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden = layer(hidden, position_embeddings=position_embeddings, cache=cache,
                           use_cache=cache is not None, **local_attention)
        return hidden

    def pool(self, hidden, patch_ids, token_is_real, patch_index, output_attentions=False, bound=None):
        """Global inputs `(batch, n, global_hidden_size)` for the patches `patch_index` `(batch, n)` of each row.

        The k queries of patch p start as the max over p's token states and read the tokens of patches
        p - W + 1 .. p (padding only within p, so that a padding patch still has a key). Slot indices past a
        row's last patch read its first token: their outputs are masked downstream. `bound`, a number of tokens
        known to exceed both the patch ids and the widest window, replaces the two values read from the data
        (one host synchronisation each), as a cached step needs.
        """
        batch, length, size = hidden.shape
        k, device = self.config.cross_attn_k, hidden.device
        num_slots = bound or int(max(patch_ids.max(), patch_index.max())) + 1
        positions = torch.arange(length, device=device).expand(batch, -1)
        first = torch.full((batch, num_slots), length, device=device).scatter_reduce(1, patch_ids, positions, "amin")
        end = torch.zeros((batch, num_slots), dtype=torch.long, device=device).scatter_reduce(
            1, patch_ids, positions + 1, "amax"
        )
        empty = end == 0
        first, end = first.masked_fill(empty, 0), end.masked_fill(empty, 1)
        # A padding patch (a whole run of padding) keeps only its last token as its key, so that neither its
        # own window nor a neighbour's widens to the run's length.
        slot_has_real = torch.zeros((batch, num_slots), dtype=torch.long, device=device).scatter_reduce(
            1, patch_ids, token_is_real.long(), "amax"
        ).bool()
        first = torch.where(slot_has_real | empty, first, end - 1)
        earliest = (patch_index - self.config.cross_attn_window_encoder + 1).clamp(min=0)
        window_start, window_end = first.gather(1, earliest), end.gather(1, patch_index)
        span = bound or int((window_end - window_start).max())
        offsets = torch.arange(span, device=device)
        key_index = window_start[..., None] + offsets  # (batch, n, span)
        in_window = key_index < window_end[..., None]
        key_index = key_index.clamp(max=length - 1)
        own = (patch_ids.gather(1, key_index.flatten(1)).view_as(key_index) == patch_index[..., None]) & in_window
        real = token_is_real.gather(1, key_index.flatten(1)).view_as(key_index)
        fallback = empty.gather(1, patch_index)[..., None] & (offsets == 0)
        key_allowed = (in_window & (real | own)) | fallback

        pooled = gather_positions(hidden, key_index).masked_fill(~(own | fallback)[..., None], float("-inf"))
        pooled = pooled.amax(dim=2)
        queries = self.query_projection(pooled).view(batch, patch_index.shape[1], k, size)
        queries = queries + self.pooling(queries, hidden, key_index, key_allowed, output_attentions)[0]
        return self.patch_projection(queries.view(batch, patch_index.shape[1], k * size))


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

    def forward(self, patch_embeds, slot_is_real, position_ids, cache=None):
        """`slot_is_real` covers cached slots and these ones; masked slots are never attended to."""
        mask = create_causal_mask(
            config=self.config,
            inputs_embeds=patch_embeds,
            attention_mask=slot_is_real,
            cache=cache,
            position_ids=position_ids,
        )
        position_embeddings = self.rotary_emb(patch_embeds, position_ids)
        hidden = patch_embeds
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=position_embeddings,
                           cache=cache, use_cache=cache is not None)
        return self.norm(hidden)


class LSTDecoderLayer(LlamaDecoderLayer):
    """One local decoder layer: cross-attention from tokens to global patch states, then a Llama block.

    A subclass of the Llama block, so its own parameters keep the block's names; the output recorder takes the
    layer's input and output as the decoder's hidden states.
    """

    def __init__(self, config: LSTConfig, local_config: LlamaConfig, layer_idx: int):
        super().__init__(local_config, layer_idx)
        self.cross_attention = LSTCrossAttention(config, config.local_hidden_size)

    def forward(self, hidden_states, keys, key_index, key_allowed, projected=None, **kwargs):
        attended, _ = self.cross_attention(hidden_states[:, :, None], keys, key_index, key_allowed,
                                           kwargs.get("output_attentions", False), projected)
        return super().forward(hidden_states + attended.squeeze(2), **kwargs)


class LSTLocalDecoder(nn.Module):
    """Token-level decoder: cross-attention to closed patches' global states, then windowed self-attention."""

    def __init__(self, config: LSTConfig, local_config: LlamaConfig):
        super().__init__()
        self.config = config
        k, size = config.cross_attn_k, config.local_hidden_size
        self.global_projection = nn.Linear(config.global_hidden_size, k * size, bias=False)
        # Read by tokens of the first patch, which has no closed patch before it.
        self.null_patch_state = nn.Parameter(torch.zeros(k, size))
        self.layers = nn.ModuleList(
            LSTDecoderLayer(config, local_config, config.encoder_num_layers + i)
            for i in range(config.decoder_num_layers)
        )
        self.norm = LlamaRMSNorm(size, eps=config.rms_norm_eps)

    def project_slots(self, global_states: torch.Tensor) -> torch.Tensor:
        """Global states `(batch, slots, global_hidden_size)` to the decoder's keys `(batch, slots, k, local width)`."""
        batch, slots, _ = global_states.shape
        return self.global_projection(global_states).view(batch, slots, self.config.cross_attn_k, -1)

    def cross_keys(self, slot_keys: torch.Tensor, with_null: bool = True) -> torch.Tensor:
        """The keys the cross-attentions read: the null state's (with `with_null`), then each slot's k."""
        batch, slots, k, size = slot_keys.shape
        keys = slot_keys.reshape(batch, slots * k, size)
        return torch.cat([self.null_patch_state.expand(batch, -1, -1), keys], 1) if with_null else keys

    def forward(self, hidden, slot_keys, read_slots, readable, position_embeddings, local_attention,
                cache=None, cross_projections=None):
        """Each token reads the null state and the slots `read_slots` `(batch, tokens, W)` where `readable`.

        `cross_projections`, one `(keys, values)` per layer of all cross keys, replaces projecting the read keys
        again (a cache holds them, see `LSTCache.cross_projections`)."""
        k = slot_keys.shape[2]
        keys = None if cross_projections is not None else self.cross_keys(slot_keys)
        # The null state's keys are 0..k-1; slot s's keys are (s + 1) * k ...
        offsets = torch.arange(k, device=hidden.device)
        key_index = ((read_slots + 1) * k)[..., None] + offsets  # (batch, tokens, W, k)
        key_index = torch.cat([offsets.expand(*read_slots.shape[:2], -1), key_index.flatten(2)], dim=2)
        key_allowed = torch.cat([readable.new_ones(*read_slots.shape[:2], k), readable.repeat_interleave(k, 2)], 2)
        for index, layer in enumerate(self.layers):
            projected = cross_projections[index] if cross_projections is not None else None
            hidden = layer(hidden, keys, key_index, key_allowed, projected, position_embeddings=position_embeddings,
                           cache=cache, use_cache=cache is not None, **local_attention)
        return self.norm(hidden)


class LSTPreTrainedModel(PreTrainedModel):
    config: LSTConfig
    config_class = LSTConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "LSTDecoderLayer", "LSTCrossAttention"]
    # What `output_hidden_states` records (see `LSTModelOutput`); LSTDecoderLayer is itself a Llama block, so the
    # encoder's and the global transformer's blocks are told apart by name.
    _can_record_outputs = {
        "hidden_states": OutputRecorder(LSTDecoderLayer, index=0, num_hidden_layers_key="decoder_num_layers"),
        "encoder_hidden_states": OutputRecorder(LlamaDecoderLayer, index=0, layer_name="encoder.layers",
                                                num_hidden_layers_key="encoder_num_layers"),
        "global_hidden_states": OutputRecorder(LlamaDecoderLayer, index=0, layer_name="global_transformer.layers",
                                               num_hidden_layers_key="global_num_layers"),
        "attentions": OutputRecorder(LlamaAttention, index=1, layer_name="decoder.layers"),
        "cross_attentions": OutputRecorder(LSTCrossAttention, index=1, layer_name="decoder.layers"),
        "encoder_attentions": OutputRecorder(LlamaAttention, index=1, layer_name="encoder.layers"),
        "encoder_cross_attentions": OutputRecorder(LSTCrossAttention, index=1, layer_name="encoder.pooling"),
        "global_attentions": OutputRecorder(LlamaAttention, index=1, layer_name="global_transformer.layers"),
    }
    _supports_sdpa = True
    _supports_flash_attn = False  # the cross-attention masks are arbitrary, not causal or windowed
    _supports_attention_backend = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        with checked_load(pretrained_model_name_or_path, kwargs, needs_weights=True, preset_names=PRESETS):
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def get_input_embeddings(self):
        return self.base_model.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.base_model.encoder.embed_tokens = value

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True, new_tokens_are_speech: bool = False) -> nn.Embedding:
        """The library's resize, keeping the joint id ranges true: ids added at the end are text-side tokens (each
        its own patch), or, with `new_tokens_are_speech`, new speech units that extend `speech_token_range`.
        Shrinking into the ranges is refused: it would drop ids the tokenizer still produces."""
        old_size = self.config.vocab_size
        speech_start, speech_end = self.config.speech_token_range
        highest_used = max(speech_end, self.config.text_token_range[1], self.config.text_marker_id + 1,
                           self.config.speech_marker_id + 1)
        if new_num_tokens is not None and new_num_tokens < highest_used:
            raise ValueError(f"Cannot resize the vocabulary to {new_num_tokens}: ids up to {highest_used - 1} belong "
                             "to its text, marker and speech ranges. Build a new config from the tokenizer instead.")
        if new_tokens_are_speech and speech_end != old_size:
            raise ValueError(f"New speech units must follow the current ones, but speech_token_range ends at "
                             f"{speech_end} and the vocabulary at {old_size}: ids in between are not units.")
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        if new_tokens_are_speech:
            self.config.speech_token_range = [speech_start, self.config.vocab_size]
        return embeddings

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
        # Tokens that hold any patch's pooling window: its own and the W - 1 patches before, each at most this long.
        self.closing_window = config.cross_attn_window_encoder * max(config.max_patch_length, config.patch_size)
        # Set by activation_checkpointing_enable(); merge_with_config_defaults then turns use_cache off in training.
        self.gradient_checkpointing = False
        self.post_init()

    def speech_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        start, stop = self.config.speech_token_range
        return (input_ids >= start) & (input_ids < stop)

    # The library renamed `past_key_values` to `cache` in 5.24 and accepts the old name until 5.40; so do we.
    # `use_cache` defaults to `config.use_cache`; `return_dict=False` gives a tuple, and `output_hidden_states`
    # records per-layer states through the library's hooks (capture_outputs), as in every library model.
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @record_every_part
    @record_cached_tokens_one_at_a_time
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        patch_starts: torch.Tensor | None = None,
        cache: LSTCache | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> LSTModelOutput:
        """Full forward pass (filling a cache when `use_cache`), or cached steps for tokens after a cache.

        `patch_starts` (boolean, `(batch, tokens)`) comes from the training loop's patching; by default, and
        always for cached steps, speech runs are patched statically, as at inference. `attention_mask`
        covers all tokens so far (cached and new), as in transformers.
        """
        if input_ids is None or kwargs.get("inputs_embeds") is not None:
            raise ValueError("LST needs input_ids, not inputs_embeds: its patches are made from which ids are speech "
                             "units. Pass input_ids (PEFT's prompt-learning methods, which feed embeddings, do not "
                             "apply; use LoRA).")
        check_token_ids(input_ids, self.config.vocab_size)
        if cache is not None and not isinstance(cache, LSTCache):
            raise TypeError(f"LST continues only its own cache (LSTCache), not a {type(cache).__name__}: pass the "
                            "cache an LST call returned, or none.")
        seen = cache.get_seq_length() if cache is not None else 0
        check_same_shape(attention_mask, "attention_mask", input_ids, (input_ids.shape[0], seen + input_ids.shape[1]))
        check_same_shape(patch_starts, "patch_starts", input_ids, tuple(input_ids.shape))
        if seen and cache.token_is_real.shape[0] != input_ids.shape[0]:
            raise ValueError(f"The cache holds {cache.token_is_real.shape[0]} rows but input_ids has "
                             f"{input_ids.shape[0]}: continue a cache with the batch that filled it.")
        # set_attn_implementation changes self.config; the global Llama config follows it (the local layers
        # run it inside their blocked sliding window, see local_attention.py).
        self.global_config._attn_implementation = self.config._attn_implementation
        if cache is None and use_cache:
            cache = LSTCache()
        if cache is not None:
            cache.encoder_num_layers = self.config.encoder_num_layers
        if seen > 0:
            if patch_starts is not None:
                raise ValueError("patch_starts applies to full forward passes; cached steps patch statically.")
            return self._cached_steps(input_ids, attention_mask, cache, output_attentions)
        return self._full_forward(input_ids, attention_mask, patch_starts, cache, output_attentions)

    def _local_inputs(self, token_is_real: torch.Tensor, positions: torch.Tensor, output_attentions: bool):
        """RoPE for the local layers at `positions`, and what their blocked attention needs."""
        reference = self.encoder.embed_tokens.weight[:1][None]
        local_attention = {"token_is_real": token_is_real, "block_implementation": self.config._attn_implementation,
                           "output_attentions": output_attentions}
        return self.local_rotary_emb(reference, positions), local_attention

    def _full_forward(self, input_ids, attention_mask, patch_starts, cache, output_attentions):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        token_is_real = attention_mask.bool()
        is_speech = self.speech_mask(input_ids) & token_is_real
        callers_patching = patch_starts is not None
        if not callers_patching:
            patch_starts = static_patch_starts(is_speech, self.config.patch_size)
        # A run of padding is one patch of its own: it never shares a patch with real tokens, and a batch of
        # ragged rows does not run the global transformer over one slot per padding token.
        boundary = token_is_real != torch.nn.functional.pad(token_is_real[:, :-1], (1, 0), value=True)
        patch_ids = patch_ids_from_starts((patch_starts.bool() & token_is_real) | boundary)
        num_slots = int(patch_ids.max()) + 1
        if cache is not None and callers_patching:  # static patches are never longer than patch_size
            self._check_patch_lengths(patch_ids, token_is_real, num_slots)

        # Positions count real tokens / real patches only, so left padding does not shift them.
        positions = (token_is_real.long().cumsum(dim=1) - 1).clamp(min=0)
        position_embeddings, local_attention = self._local_inputs(token_is_real, positions, output_attentions)
        local_cache = cache.local if cache is not None else None
        encoder_states = self.encoder.contextualize(input_ids, position_embeddings, local_attention, local_cache)
        slot_index = torch.arange(num_slots, device=input_ids.device).expand(input_ids.shape[0], -1)
        patch_embeds = self.encoder.pool(encoder_states, patch_ids, token_is_real, slot_index, output_attentions)

        slot_is_real = torch.zeros_like(slot_index).scatter_reduce(1, patch_ids, attention_mask.long(), "amax")
        if cache is not None:  # each row's last patch may still grow: it gets a real slot once it closes
            slot_is_real = slot_is_real.scatter(1, patch_ids[:, -1:], 0)
        slot_positions = (slot_is_real.cumsum(dim=1) - 1).clamp(min=0)
        global_cache = cache.global_ if cache is not None else None
        global_states = self.global_transformer(patch_embeds, slot_is_real, slot_positions, global_cache)
        # Padding slots are never read; zero them so nothing non-finite can travel.
        global_states = torch.where(slot_is_real.bool()[..., None], global_states, 0.0)
        slot_keys = self.decoder.project_slots(global_states)

        # A token of patch p reads patches p - W .. p - 1 (the closed ones before it).
        window = self.config.cross_attn_window_decoder
        read_slots = patch_ids[..., None] - window + torch.arange(window, device=input_ids.device)
        readable = (read_slots >= 0) & slot_is_real.bool().gather(
            1, read_slots.clamp(min=0).flatten(1)
        ).view_as(read_slots)
        hidden = self.decoder(encoder_states, slot_keys, read_slots.clamp(min=0), readable, position_embeddings,
                              local_attention, local_cache)
        if cache is not None:
            cache.append_tokens(encoder_states, patch_ids, token_is_real, is_speech)
            cache.append_slots(slot_keys, slot_is_real.bool())
        return LSTModelOutput(last_hidden_state=hidden, last_global_hidden_state=global_states, patch_ids=patch_ids,
                              patch_mask=slot_is_real, cache=cache)

    def _check_patch_lengths(self, patch_ids, token_is_real, num_slots):
        """Cached steps pool a closing patch from the last `closing_window` tokens: a prefill's patches (from a
        caller's patch_starts) must not be longer than max_patch_length."""
        lengths = torch.zeros((patch_ids.shape[0], num_slots), dtype=torch.long, device=patch_ids.device)
        longest = int(lengths.scatter_add(1, patch_ids, token_is_real.long()).max())
        limit = max(self.config.max_patch_length, self.config.patch_size)
        if longest > limit:
            raise ValueError(f"A patch of {longest} tokens is longer than max_patch_length={limit}, which generation "
                             "relies on: split long patches (training.patching does) or run without use_cache.")

    def _cached_steps(self, input_ids, attention_mask, cache: LSTCache, output_attentions) -> LSTModelOutput:
        """New tokens after a cache: one token is a local step (and a global step when it closes a patch);
        several, as when scoring endings after a cached prompt or checking drafted tokens, go in one pass."""
        if input_ids.shape[1] > 1:
            return self._cached_chunk(input_ids, attention_mask, cache, output_attentions)
        hidden = self._cached_step(input_ids, attention_mask, cache, output_attentions)
        return LSTModelOutput(last_hidden_state=hidden, cache=cache)

    def _cached_chunk(self, input_ids, attention_mask, cache: LSTCache, output_attentions) -> LSTModelOutput:
        """Several new tokens in one pass, with what one step per token would compute: static patching goes on
        from the cache's open patch, each patch that closes among them (the open one included) is pooled and
        run through the global transformer as a new slot, and each token reads the slots closed before its
        patch. Rows that close fewer patches get masked dummy slots, as in a step; a run of padding is one patch,
        as in a full forward, so that a right-padded row adds one slot for its padding, not one per token."""
        seen, (batch, length), device = cache.get_seq_length(), input_ids.shape, input_ids.device
        token_is_real = (attention_mask[:, seen:].bool() if attention_mask is not None
                         else torch.ones_like(input_ids, dtype=torch.bool))
        is_speech = self.speech_mask(input_ids) & token_is_real
        # The speech run before each token: the cache's run extended, or the run since the last non-speech token.
        index = torch.arange(length, device=device).expand(batch, -1)
        last_break = torch.where(~is_speech, index, -1).cummax(dim=1).values
        last_break = torch.nn.functional.pad(last_break[:, :-1], (1, 0), value=-1)
        run = torch.where(last_break < 0, cache.speech_run_length[:, None] + index, index - last_break - 1)
        # As in a full forward, a run of padding (after the real tokens of a right-padded batch) is one patch.
        previous_real = torch.cat([cache.token_is_real[:, -1:], token_is_real[:, :-1]], dim=1)
        starts = (~is_speech & (token_is_real | previous_real)) | (is_speech & (run % self.config.patch_size == 0))
        local_patch = starts.long().cumsum(dim=1)  # 0: the cache's open patch; a start closes the patch before it
        patch_ids = cache.patch_ids[:, -1:] + local_patch

        all_real = torch.cat([cache.token_is_real, token_is_real], dim=1)
        positions = cache.token_is_real.long().sum(dim=1, keepdim=True) + token_is_real.long().cumsum(dim=1) - 1
        positions = positions + ~token_is_real  # a padding token sits where the next real one would (as a step)
        position_embeddings, local_attention = self._local_inputs(all_real, positions, output_attentions)
        encoder_states = self.encoder.contextualize(input_ids, position_embeddings, local_attention, cache.local)

        closing = int(starts.sum(dim=1).max())
        if closing:
            # Closed patch j (j = 0: the open one) ends just before the (j + 1)-th start; it is real when its last
            # token is. Pooled from the cache's last `closing_window` tokens and the new ones.
            start_at = torch.where(starts, index, length).sort(dim=1).values[:, :closing]
            closed_is_real = (start_at < length) & previous_real.gather(1, start_at.clamp(max=length - 1))
            tail = min(seen, self.closing_window)
            tail_ids = torch.cat([cache.patch_ids[:, -tail:], patch_ids], dim=1)
            tail_states = torch.cat([cache.encoder_states[:, -tail:], encoder_states], dim=1)
            tail_real = torch.cat([cache.token_is_real[:, -tail:], token_is_real], dim=1)
            closed = cache.patch_ids[:, -1:] + torch.arange(closing, device=device)
            patch_embeds = self.encoder.pool(tail_states, tail_ids - tail_ids[:, :1], tail_real,
                                             closed - tail_ids[:, :1], output_attentions)
            slot_is_real = torch.cat([cache.slot_is_real, closed_is_real], dim=1)
            slot_positions = cache.slot_is_real.long().sum(dim=1, keepdim=True) + closed_is_real.long().cumsum(dim=1)
            slot_positions = slot_positions - closed_is_real.long()
            global_states = self.global_transformer(patch_embeds, slot_is_real.long(), slot_positions, cache.global_)
            global_states = torch.where(closed_is_real[..., None], global_states, 0.0)
            cache.append_slots(self.decoder.project_slots(global_states), closed_is_real)

        # Token i reads the last W real slots among the cached ones and the new ones of patches before its own.
        window = self.config.cross_attn_window_decoder
        rank = cache.slot_is_real.long().cumsum(dim=1)
        before = rank.gather(1, (rank.shape[1] - closing - 1 + local_patch).clamp(min=0))
        wanted = before[..., None] - window + 1 + torch.arange(window, device=device)  # (batch, tokens, W)
        read_slots = torch.searchsorted(rank, wanted.clamp(min=1).flatten(1)).view_as(wanted)
        hidden = self.decoder(encoder_states, cache.patch_keys, read_slots.clamp(max=rank.shape[1] - 1), wanted >= 1,
                              position_embeddings, local_attention, cache.local, self._cross_projections(cache))
        cache.append_tokens(encoder_states, patch_ids, token_is_real, is_speech)
        return LSTModelOutput(last_hidden_state=hidden, cache=cache)

    def _cached_step(self, token, attention_mask, cache: LSTCache, output_attentions) -> torch.Tensor:
        token_is_real, is_speech, starts = self._step_patching(token, attention_mask, cache)
        # The step's one host synchronisation: the global transformer runs only when some row closes a patch,
        # which is where LST saves its compute. (The decision comes first, so that a compiled step breaks its
        # graph before any tensor whose shape grows with the cache.)
        if bool(starts.any()):
            self._close_patches(starts, cache, output_attentions)
        return self._decode_step(token, token_is_real, is_speech, starts, cache, output_attentions)

    def _step_patching(self, token, attention_mask, cache: LSTCache):
        """Static patching as tokens come: a patch starts at every non-speech token and every patch_size speech
        tokens into a run; starting one closes the open patch."""
        seen = cache.get_seq_length()
        token_is_real = (
            attention_mask[:, seen : seen + 1].bool() if attention_mask is not None else torch.ones_like(token).bool()
        )
        is_speech = self.speech_mask(token) & token_is_real
        starts = ~is_speech[:, 0] | (cache.speech_run_length % self.config.patch_size == 0)
        return token_is_real, is_speech, starts

    def _close_patches(self, starts, cache: LSTCache, output_attentions):
        """One global step: pool each row's open patch (a masked dummy slot where it does not close)."""
        closed_is_real = starts & cache.token_is_real[:, -1]
        open_patch = cache.patch_ids[:, -1:]
        # The closing patch's window lies in the last `closing_window` tokens (patches are at most
        # max_patch_length long), so it is pooled from those with static shapes and no host synchronisation.
        tail = min(cache.get_seq_length(), self.closing_window)
        tail_ids = cache.patch_ids[:, -tail:]
        patch_embed = self.encoder.pool(cache.encoder_states[:, -tail:], tail_ids - tail_ids[:, :1],
                                        cache.token_is_real[:, -tail:], open_patch - tail_ids[:, :1],
                                        output_attentions, bound=tail)
        slot_is_real = torch.cat([cache.slot_is_real, closed_is_real[:, None]], dim=1)
        slot_position = cache.slot_is_real.long().sum(dim=1, keepdim=True)
        global_state = self.global_transformer(patch_embed, slot_is_real.long(), slot_position, cache.global_)
        global_state = torch.where(closed_is_real[:, None, None], global_state, 0.0)
        cache.append_slots(self.decoder.project_slots(global_state), closed_is_real[:, None])

    def _cross_projections(self, cache: LSTCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each decoder layer's cross-attention keys and values of every slot, projected once per slot (as an
        encoder-decoder cache holds its cross-attention keys) rather than for every token that reads it."""
        projected_slots = cache.cross_projected_slots(self.config.cross_attn_k)
        new_slots = cache.patch_keys[:, max(projected_slots, 0) :]
        if new_slots.shape[1] or projected_slots < 0:
            keys = self.decoder.cross_keys(new_slots, with_null=projected_slots < 0)
            cache.append_cross_projections([layer.cross_attention.project_keys_values(keys)
                                            for layer in self.decoder.layers])
        return cache.cross_projections

    def _decode_step(self, token, token_is_real, is_speech, starts, cache: LSTCache, output_attentions):
        """The new token through the local encoder and decoder; the decoder reads the last W real slots (all
        closed patches before this token's patch)."""
        all_real = torch.cat([cache.token_is_real, token_is_real], dim=1)
        positions = cache.token_is_real.long().sum(dim=1, keepdim=True)
        position_embeddings, local_attention = self._local_inputs(all_real, positions, output_attentions)
        encoder_state = self.encoder.contextualize(token, position_embeddings, local_attention, cache.local)
        window = self.config.cross_attn_window_decoder
        rank = cache.slot_is_real.long().cumsum(dim=1)
        wanted = rank[:, -1:] - window + 1 + torch.arange(window, device=token.device)
        read_slots = torch.searchsorted(rank, wanted.clamp(min=1)).clamp(max=rank.shape[1] - 1)
        hidden = self.decoder(encoder_state, cache.patch_keys, read_slots[:, None], (wanted >= 1)[:, None],
                              position_embeddings, local_attention, cache.local, self._cross_projections(cache))
        cache.append_tokens(encoder_state, (cache.patch_ids[:, -1] + starts.long())[:, None], token_is_real, is_speech)
        return hidden


class LSTForCausalLM(LSTPreTrainedModel, GenerationMixin):
    """LST with a language-modelling head over the joint vocabulary: one next-token loss on all positions."""

    _tied_weights_keys = {"lm_head.weight": "model.encoder.embed_tokens.weight"}

    def __init__(self, config: LSTConfig):
        super().__init__(config)
        self.model = LSTModel(config)
        self.lm_head = nn.Linear(config.local_hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # LST keeps its own cache (LSTCache), never the library's DynamicCache.
        return False

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, *args, **kwargs):
        """Give `generate` an empty LSTCache up front, where it would make a DynamicCache for another model:
        assisted and prompt-lookup decoding need the cache before the first forward. The library's other cache
        implementations hold one key/value list per layer, which LST's patch bookkeeping does not fit."""
        if generation_config.cache_implementation not in (None, "dynamic"):
            raise ValueError(f"cache_implementation={generation_config.cache_implementation!r} is not supported: LST "
                             "keeps its own cache (LSTCache, dynamic). Leave cache_implementation unset.")
        super()._prepare_cache_for_generation(generation_config, model_kwargs, *args, **kwargs)
        if generation_config.use_cache is not False and model_kwargs.get("cache") is None:
            model_kwargs["cache"] = LSTCache()

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, cache=None, attention_mask=None,
                                      **kwargs):
        """The library's preparation, plus one case it leaves: a continued `generate(sequences, cache=...)` without
        an attention mask passes the full sequence (the library slices only when a mask gives the full length)."""
        seen = cache.get_seq_length() if cache is not None else 0
        if next_sequence_length is None and attention_mask is None and 0 < seen < input_ids.shape[1]:
            next_sequence_length = input_ids.shape[1] - seen
        return super().prepare_inputs_for_generation(input_ids, next_sequence_length=next_sequence_length, cache=cache,
                                                     attention_mask=attention_mask, **kwargs)

    # The library renamed `past_key_values` to `cache` in 5.24 and accepts the old name until 5.40; so do we.
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        patch_starts: torch.Tensor | None = None,
        cache: LSTCache | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> LSTCausalLMOutput:
        outputs = self.model(input_ids, attention_mask=attention_mask, patch_starts=patch_starts,
                             cache=cache, use_cache=use_cache, return_dict=True, **kwargs)
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            check_causal_lm_labels(labels, input_ids, self.config.vocab_size, kwargs.get("num_items_in_batch"))
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return LSTCausalLMOutput(loss=loss, logits=logits, cache=outputs.cache,
                                 **{name: outputs[name] for name in RECORDED_FIELDS if name in outputs})


class LSTForSequenceClassification(LSTPreTrainedModel):
    """LST with a classification head on the mean of the decoder's states over non-padding tokens (SLUE-SA)."""

    def __init__(self, config: LSTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = LSTModel(config)
        self.score = nn.Linear(config.local_hidden_size, config.num_labels, bias=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        patch_starts: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> LSTSequenceClassifierOutput:
        if attention_mask is None and input_ids is not None:  # without ids, the backbone says what is wrong
            attention_mask = torch.ones_like(input_ids)
        outputs = self.model(input_ids, attention_mask=attention_mask, patch_starts=patch_starts, use_cache=False,
                             return_dict=True, **kwargs)
        hidden = outputs.last_hidden_state
        weights = attention_mask.to(hidden.dtype)[..., None]
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        logits = self.score(pooled)
        loss = None
        if labels is not None:
            check_class_labels(labels, logits.shape[0], self.num_labels, self.config.problem_type)
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return LSTSequenceClassifierOutput(loss=loss, logits=logits,
                                           **{name: outputs[name] for name in RECORDED_FIELDS if name in outputs})


__all__ = [
    "LSTCausalLMOutput",
    "LSTCrossAttention",
    "LSTDecoderLayer",
    "LSTForCausalLM",
    "LSTForSequenceClassification",
    "LSTModel",
    "LSTModelOutput",
    "LSTPreTrainedModel",
    "LSTSequenceClassifierOutput",
]
