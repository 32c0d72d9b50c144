"""Configuration of the Latent Speech-Text Transformer (LST).

Three stacks: a local encoder over tokens (windowed self-attention, then cross-attention pooling of
speech runs into patches), a global Llama-style transformer over patches, and a local decoder over
tokens (cross-attention to global patch states before each windowed self-attention layer). Encoder and
decoder share one local width, since the decoder starts from the encoder's token states. The joint
vocabulary's id ranges come from the tokenizer, so the model knows which ids are speech.
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import LlamaConfig, PreTrainedConfig

from .loading_checks import checked_load

# Shapes of the named presets. `lst-1b` is the paper's Table 7 (BLT-1B shape); `lst-350m` puts the
# global transformer at SUTLM's 350M scale (24 x 1024, 16 heads) and its local sizes are our choice;
# `tiny` is for tests and `small` for the CPU demo.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        local_hidden_size=32, encoder_num_layers=1, decoder_num_layers=1, local_num_attention_heads=2,
        local_intermediate_size=64, global_hidden_size=64, global_num_layers=2, global_num_attention_heads=4,
        global_intermediate_size=128, cross_attn_k=2, cross_attn_num_heads=2, local_attention_window=64,
        cross_attn_window_encoder=1, cross_attn_window_decoder=1, max_position_embeddings=2048,
    ),
    "small": dict(
        local_hidden_size=256, encoder_num_layers=1, decoder_num_layers=2, local_num_attention_heads=4,
        local_intermediate_size=768, global_hidden_size=512, global_num_layers=6, global_num_attention_heads=8,
        global_intermediate_size=1408, cross_attn_k=2, cross_attn_num_heads=4, local_attention_window=256,
        cross_attn_window_encoder=1, cross_attn_window_decoder=1, max_position_embeddings=4096,
    ),
    "lst-350m": dict(
        local_hidden_size=512, encoder_num_layers=1, decoder_num_layers=4, local_num_attention_heads=8,
        local_intermediate_size=1536, global_hidden_size=1024, global_num_layers=24, global_num_attention_heads=16,
        global_intermediate_size=2816, cross_attn_k=2, cross_attn_num_heads=8, local_attention_window=512,
        cross_attn_window_encoder=1, cross_attn_window_decoder=1, max_position_embeddings=4096,
    ),
    "lst-1b": dict(
        local_hidden_size=1024, encoder_num_layers=1, decoder_num_layers=9, local_num_attention_heads=16,
        local_intermediate_size=2816, global_hidden_size=2048, global_num_layers=25, global_num_attention_heads=16,
        global_intermediate_size=5632, cross_attn_k=2, cross_attn_num_heads=16, local_attention_window=512,
        cross_attn_window_encoder=1, cross_attn_window_decoder=1, max_position_embeddings=4096,
    ),
}

PATCHING_MODES = ("static", "aligned", "bpe", "mixed", "curriculum", "none")
WORD_SPAN_MODES = ("aligned", "bpe", "mixed", "curriculum")  # the modes whose patches follow word spans
ALIGNED_BY = ("word", "piece")  # what aligned patches follow: words, or the text BPE pieces of words
SILENCES = ("separate", "merged")  # silences between words: patches of their own, or merged into the words
# The settings a training run may override (`LSTConfig.with_patching`); `patch_size` and `max_patch_length` are
# the model's shape and stay as built, because packed data counts its sequences in static patches.
PATCHING_FIELDS = ("patching_mode", "curriculum_aligned_until", "curriculum_static_from", "mixed_aligned_probability",
                   "aligned_by", "aligned_silences")
# The library's generic names describe what the outputs hold: `hidden_states`, `attentions` and the cache's layers
# come from the local decoder (its token states are what a value head, a probe or a classifier reads), so
# `config.hidden_size` is the decoder's width, `num_hidden_layers` its depth, and so on. The global transformer's
# shape has its own `global_*` fields. (transformers' BLT port does the same with per-part sub-configs.)
GENERIC_NAMES = {
    "hidden_size": "local_hidden_size",
    "num_hidden_layers": "decoder_num_layers",
    "num_attention_heads": "local_num_attention_heads",
    "num_key_value_heads": "local_num_key_value_heads",
    "intermediate_size": "local_intermediate_size",
}
# Configs saved before the `global_*` fields existed used the generic names for the global transformer.
FIRST_LAYOUT_GLOBAL_NAMES = {
    "hidden_size": "global_hidden_size",
    "num_hidden_layers": "global_num_layers",
    "num_attention_heads": "global_num_attention_heads",
    "num_key_value_heads": "global_num_key_value_heads",
    "intermediate_size": "global_intermediate_size",
}


def upgrade_saved_layout(config_dict: dict) -> dict:
    """A saved config in the current layout: one from before the `global_*` fields (it has `local_hidden_size`,
    generic `hidden_size` and no `global_hidden_size`) names its global shape with the generic names."""
    if "global_hidden_size" in config_dict or not {"hidden_size", "local_hidden_size"} <= set(config_dict):
        return config_dict
    upgraded = {key: value for key, value in config_dict.items() if key not in FIRST_LAYOUT_GLOBAL_NAMES}
    upgraded.update({FIRST_LAYOUT_GLOBAL_NAMES[key]: value for key, value in config_dict.items()
                     if key in FIRST_LAYOUT_GLOBAL_NAMES})
    return upgraded


class LSTConfig(PreTrainedConfig):
    r"""Configuration for [`LSTModel`] and [`LSTForCausalLM`].

    Args:
        vocab_size: size of the joint vocabulary (specials, text pieces, markers, speech tokens).
        text_token_range, speech_token_range: `[start, stop)` id ranges of text pieces and speech tokens.
        text_marker_id, speech_marker_id: ids of the modality markers.
        local_hidden_size: width of the local encoder and decoder (`hidden_size`, the width of `hidden_states`).
        encoder_num_layers, decoder_num_layers: depths of the local encoder and decoder (`decoder_num_layers` is
            `num_hidden_layers`: `hidden_states` holds `num_hidden_layers + 1` tensors, `attentions` and the
            cache's `layers` one per decoder layer).
        local_num_attention_heads, local_num_key_value_heads, local_intermediate_size: local layer shapes (also
            read as `num_attention_heads`, `num_key_value_heads`, `intermediate_size`).
        local_attention_window: tokens a local self-attention query sees (itself included).
        global_hidden_size, global_num_layers, global_num_attention_heads, global_num_key_value_heads,
            global_intermediate_size: the global transformer's shape (Llama blocks over patches); its states are
            `global_hidden_states` and `last_global_hidden_state`.
        cross_attn_k: each patch is pooled into `k` local-width vectors, concatenated into one global input.
        cross_attn_num_heads: heads of the encoder and decoder cross-attentions.
        cross_attn_window_encoder: patches whose tokens a patch query attends to (1 = its own tokens).
        cross_attn_window_decoder: global patch states a token attends to (1 = the last closed patch).
        patching_mode: `static`, `aligned` (words), `bpe` (text BPE pieces of words), `mixed`, `curriculum` or
            `none` (every token its own patch); see `lst_speech.modeling_lst.patching`.
        patch_size: speech tokens per static patch.
        max_patch_length: longest aligned patch; longer word spans are split.
        curriculum_aligned_until, curriculum_static_from: steps t1 and t2 of the curriculum (aligned
            probability 1 until t1, linearly down to 0 at t2).
        mixed_aligned_probability: probability of aligned patching per sequence in `mixed` mode.
        aligned_by: what aligned patches follow under `aligned`, `mixed` and `curriculum`: `word`, or `piece`
            (the text BPE pieces of each word; `bpe` mode means `piece`).
        aligned_silences: `separate` (silences are patches of their own) or `merged` into the words.
        use_cache: whether forwards return the generation cache by default (as `LlamaConfig.use_cache`).
    """

    model_type = "lst"
    keys_to_ignore_at_inference = ["cache"]
    attribute_map = GENERIC_NAMES

    def __init__(
        self,
        vocab_size: int = 32508,
        text_token_range: tuple[int, int] | list[int] = (3, 32000),
        speech_token_range: tuple[int, int] | list[int] = (32002, 32508),
        text_marker_id: int = 32000,
        speech_marker_id: int = 32001,
        local_hidden_size: int = 1024,
        encoder_num_layers: int = 1,
        decoder_num_layers: int = 9,
        local_num_attention_heads: int = 16,
        local_num_key_value_heads: int | None = None,
        local_intermediate_size: int = 2816,
        local_attention_window: int = 512,
        global_hidden_size: int = 2048,
        global_num_layers: int = 25,
        global_num_attention_heads: int = 16,
        global_num_key_value_heads: int | None = None,
        global_intermediate_size: int = 5632,
        max_position_embeddings: int = 4096,
        rope_theta: float = 500000.0,
        cross_attn_k: int = 2,
        cross_attn_num_heads: int = 16,
        cross_attn_window_encoder: int = 1,
        cross_attn_window_decoder: int = 1,
        patching_mode: str = "static",
        patch_size: int = 4,
        max_patch_length: int = 16,
        curriculum_aligned_until: int = 0,
        curriculum_static_from: int = 0,
        mixed_aligned_probability: float = 0.5,
        aligned_by: str | None = None,
        aligned_silences: str = "separate",
        hidden_act: str = "silu",
        rms_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        attention_dropout: float = 0.0,
        pad_token_id: int | None = None,
        bos_token_id: int | None = 1,
        eos_token_id: int | None = 2,
        tie_word_embeddings: bool = False,
        use_cache: bool = True,
        **kwargs,
    ):
        # The generic names set the local decoder's fields they stand for (see GENERIC_NAMES).
        local_hidden_size = kwargs.pop("hidden_size", local_hidden_size)
        decoder_num_layers = kwargs.pop("num_hidden_layers", decoder_num_layers)
        local_num_attention_heads = kwargs.pop("num_attention_heads", local_num_attention_heads)
        local_num_key_value_heads = kwargs.pop("num_key_value_heads", local_num_key_value_heads)
        local_intermediate_size = kwargs.pop("intermediate_size", local_intermediate_size)
        if patching_mode not in PATCHING_MODES:
            raise ValueError(f"patching_mode must be one of {PATCHING_MODES}, got {patching_mode!r}.")
        aligned_by = aligned_by or ("piece" if patching_mode == "bpe" else "word")
        if aligned_by not in ALIGNED_BY or aligned_silences not in SILENCES:
            raise ValueError(f"aligned_by must be one of {ALIGNED_BY} and aligned_silences one of {SILENCES}, got "
                             f"{aligned_by!r} and {aligned_silences!r}.")
        if patching_mode == "bpe" and aligned_by != "piece":
            raise ValueError("patching_mode 'bpe' patches by pieces: leave aligned_by unset or set it to 'piece'.")
        if patch_size < 1 or max_patch_length < 1:
            raise ValueError("patch_size and max_patch_length must be at least 1.")
        if curriculum_static_from < curriculum_aligned_until:
            raise ValueError(
                f"curriculum_static_from (t2, {curriculum_static_from}) must not come before "
                f"curriculum_aligned_until (t1, {curriculum_aligned_until})."
            )
        if not 0.0 <= mixed_aligned_probability <= 1.0:
            raise ValueError(f"mixed_aligned_probability must be in [0, 1], got {mixed_aligned_probability}.")
        for name, width, heads in (
            ("local", local_hidden_size, local_num_attention_heads),
            ("global", global_hidden_size, global_num_attention_heads),
            ("cross-attention", local_hidden_size, cross_attn_num_heads),
        ):
            if width % heads:
                raise ValueError(f"The {name} width {width} is not divisible by its {heads} heads.")
        self.vocab_size = vocab_size
        self.text_token_range = list(text_token_range)
        self.speech_token_range = list(speech_token_range)
        self.text_marker_id = text_marker_id
        self.speech_marker_id = speech_marker_id
        if not (0 <= self.speech_token_range[0] < self.speech_token_range[1] <= vocab_size):
            raise ValueError(f"speech_token_range {self.speech_token_range} does not fit vocab_size {vocab_size}.")
        self.local_hidden_size = local_hidden_size
        self.encoder_num_layers = encoder_num_layers
        self.decoder_num_layers = decoder_num_layers
        self.local_num_attention_heads = local_num_attention_heads
        self.local_num_key_value_heads = local_num_key_value_heads or local_num_attention_heads
        self.local_intermediate_size = local_intermediate_size
        self.local_attention_window = local_attention_window
        self.global_hidden_size = global_hidden_size
        self.global_num_layers = global_num_layers
        self.global_num_attention_heads = global_num_attention_heads
        self.global_num_key_value_heads = global_num_key_value_heads or global_num_attention_heads
        self.global_intermediate_size = global_intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.cross_attn_k = cross_attn_k
        self.cross_attn_num_heads = cross_attn_num_heads
        self.cross_attn_window_encoder = cross_attn_window_encoder
        self.cross_attn_window_decoder = cross_attn_window_decoder
        self.patching_mode = patching_mode
        self.patch_size = patch_size
        self.max_patch_length = max_patch_length
        self.curriculum_aligned_until = curriculum_aligned_until
        self.curriculum_static_from = curriculum_static_from
        self.mixed_aligned_probability = mixed_aligned_probability
        self.aligned_by = aligned_by
        self.aligned_silences = aligned_silences
        self.hidden_act = hidden_act
        self.rms_norm_eps = rms_norm_eps
        self.initializer_range = initializer_range
        self.attention_dropout = attention_dropout
        self.use_cache = use_cache
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs) -> LSTConfig:
        """The library's loader (from_pretrained and AutoConfig come through here), reading old layouts too."""
        return super().from_dict(upgrade_saved_layout(config_dict), **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> LSTConfig:
        with checked_load(pretrained_model_name_or_path, kwargs, needs_weights=False, preset_names=PRESETS):
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_tokenizer(cls, tokenizer, preset: str = "tiny", **overrides) -> LSTConfig:
        """A config whose vocabulary ranges are the tokenizer's, with the shape of a named preset."""
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
        layout = tokenizer.vocabulary_layout()
        values = copy.deepcopy(PRESETS[preset])
        values.update(
            vocab_size=layout["vocab_size"],
            text_token_range=layout["text_token_range"],
            speech_token_range=layout["speech_token_range"],
            text_marker_id=layout["text_marker_id"],
            speech_marker_id=layout["speech_marker_id"],
            pad_token_id=layout["pad_token_id"],
            bos_token_id=layout["bos_token_id"],
            eos_token_id=layout["eos_token_id"],
        )
        values.update(overrides)
        return cls(**values)

    def with_patching(self, **overrides) -> LSTConfig:
        """A copy whose patching settings (`PATCHING_FIELDS`) are replaced and checked: how a training run's
        arguments reach a preset's or a saved model's config, once. A new `patching_mode` without `aligned_by`
        takes that mode's own default (pieces for `bpe`, else words)."""
        unknown = sorted(set(overrides) - set(PATCHING_FIELDS))
        if unknown:
            raise ValueError(f"{unknown} are not patching settings; the overridable ones are {PATCHING_FIELDS}.")
        if "patching_mode" in overrides and "aligned_by" not in overrides:
            overrides["aligned_by"] = None
        return type(self)(**{**self.to_dict(), **overrides})

    def global_llama_config(self) -> LlamaConfig:
        """The global transformer's shape as a `LlamaConfig`, for transformers' Llama blocks."""
        config = LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.global_hidden_size,
            intermediate_size=self.global_intermediate_size,
            num_hidden_layers=self.global_num_layers,
            num_attention_heads=self.global_num_attention_heads,
            num_key_value_heads=self.global_num_key_value_heads,
            hidden_act=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=False,
        )
        config._attn_implementation = self._attn_implementation
        return config


__all__ = ["LSTConfig", "PRESETS", "PATCHING_MODES", "ALIGNED_BY", "SILENCES"]
