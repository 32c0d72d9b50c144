"""LSTConfig: id ranges from the tokenizer, presets, validation, AutoConfig round trip."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, LlamaForCausalLM

from lst_speech.modeling_lst import PRESETS, LSTConfig


def test_from_tokenizer_copies_the_vocabulary_ranges(tokenizer):
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny")
    layout = tokenizer.vocabulary_layout()
    assert config.vocab_size == len(tokenizer)
    assert config.text_token_range == layout["text_token_range"]
    assert config.speech_token_range == layout["speech_token_range"]
    assert (config.text_marker_id, config.speech_marker_id) == (tokenizer.text_marker_id, tokenizer.speech_marker_id)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)


def test_paper_1b_preset_is_table_7(tokenizer):
    config = LSTConfig.from_tokenizer(tokenizer, preset="lst-1b")
    assert (config.encoder_num_layers, config.local_hidden_size) == (1, 1024)
    assert (config.global_num_layers, config.global_hidden_size, config.global_num_attention_heads) == (25, 2048, 16)
    assert (config.decoder_num_layers, config.local_num_attention_heads, config.local_attention_window) == (9, 16, 512)
    assert config.cross_attn_k * config.local_hidden_size == config.global_hidden_size


def test_overrides_win_over_the_preset(tokenizer):
    config = LSTConfig.from_tokenizer(tokenizer, preset="small", patch_size=6, patching_mode="curriculum",
                                      curriculum_aligned_until=100, curriculum_static_from=200)
    assert (config.patch_size, config.patching_mode, config.global_hidden_size) == (
        6, "curriculum", PRESETS["small"]["global_hidden_size"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patching_mode": "entropy"}, "patching_mode must be one of"),
        ({"patch_size": 0}, "patch_size and max_patch_length must be at least 1"),
        ({"curriculum_aligned_until": 10, "curriculum_static_from": 5}, "must not come before"),
        ({"global_hidden_size": 100, "global_num_attention_heads": 16}, "global width 100 is not divisible by its 16"),
        ({"hidden_size": 100, "num_attention_heads": 16}, "local width 100 is not divisible by its 16 heads"),
        ({"speech_token_range": [10, 10**6]}, "does not fit vocab_size"),
    ],
)
def test_invalid_configurations_are_rejected(tokenizer, overrides, message):
    with pytest.raises(ValueError, match=message):
        LSTConfig.from_tokenizer(tokenizer, preset="tiny", **overrides)


def test_unknown_preset(tokenizer):
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        LSTConfig.from_tokenizer(tokenizer, preset="huge")


def test_auto_config_round_trip(tokenizer, tmp_path):
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny", patch_size=3)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, LSTConfig)
    saved, reloaded = config.to_dict(), loaded.to_dict()
    for fields in (saved, reloaded):
        fields.pop("_name_or_path")
    assert reloaded == saved


def test_global_llama_config_builds_a_baseline_over_the_joint_vocabulary(tokenizer):
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny")
    llama = config.global_llama_config()
    assert (llama.vocab_size, llama.hidden_size, llama.num_hidden_layers) == (len(tokenizer), 64, 2)
    model = LlamaForCausalLM(llama)
    ids = torch.tensor([tokenizer(segments=["hello", [1, 2, 3]])["input_ids"]])
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))
