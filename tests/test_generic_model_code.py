"""Code written for any transformers causal LM works on LST: the config's generic sizes describe what the outputs
hold, `generate`'s dict outputs have the library's shapes for every decoding strategy on a left-padded batch,
assisted and prompt-lookup decoding and cache continuation give plain greedy's tokens, and the loading calls the
library documents work. Written from the library's conventions (its generation and model-common checks), not
copied from its tests."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn
from transformers import AutoConfig, DynamicCache, GenerationConfig

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM, LSTForSequenceClassification, LSTModel

VOCAB = dict(vocab_size=120, text_token_range=(3, 60), speech_token_range=(62, 120), text_marker_id=60,
             speech_marker_id=61, pad_token_id=0, bos_token_id=1, eos_token_id=2)
# Every generic size differs from its global counterpart, so that a mix-up shows.
SHAPE = dict(local_hidden_size=32, encoder_num_layers=1, decoder_num_layers=2, local_num_attention_heads=2,
             local_intermediate_size=64, global_hidden_size=48, global_num_layers=3, global_num_attention_heads=4,
             global_intermediate_size=96, cross_attn_k=2, cross_attn_num_heads=2, local_attention_window=8,
             max_position_embeddings=256)
# Three rows, left-padded: text, speech runs that close patches, and a row that is mostly padding.
PROMPTS = [[1, 5, 6, 61, 70, 71, 72, 73, 74, 75, 76, 77, 60, 8, 9, 61],
           [1, 5, 61, 70, 71, 72, 73, 74, 75, 76, 60, 8, 9],
           [1, 61, 80, 81, 82, 83, 84, 85, 86]]


def left_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([[0] * (width - len(row)) + row for row in rows])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
    return ids, mask


def build(model_class=LSTForCausalLM, seed: int = 0, attention: str = "sdpa", **overrides) -> nn.Module:
    """Weights larger than the init's, so that a position seeing the wrong context changes its outputs."""
    config = LSTConfig(**VOCAB, **{**SHAPE, **overrides})
    config._attn_implementation = attention  # set before the model is built, as from_pretrained does
    torch.manual_seed(seed)
    model = model_class(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0, 0.3)
    return model


def test_the_generic_sizes_are_the_decoder_and_the_global_shape_has_its_own_fields():
    config = LSTConfig(**VOCAB, **SHAPE)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert (config.num_key_value_heads, config.intermediate_size) == (2, 64)
    assert (config.global_hidden_size, config.global_num_layers, config.global_num_attention_heads) == (48, 3, 4)
    llama = config.global_llama_config()
    assert (llama.hidden_size, llama.num_hidden_layers, llama.num_attention_heads) == (48, 3, 4)
    # The generic names set the fields they stand for, and are never saved twice.
    aliased = LSTConfig(**VOCAB, **{**SHAPE, "hidden_size": 16, "num_hidden_layers": 3})
    assert (aliased.local_hidden_size, aliased.decoder_num_layers) == (16, 3)
    saved = config.to_dict()
    assert "hidden_size" not in saved and saved["local_hidden_size"] == 32 and saved["global_hidden_size"] == 48


@pytest.mark.parametrize("model_class", [LSTModel, LSTForCausalLM, LSTForSequenceClassification])
def test_hidden_states_attentions_and_cache_layers_agree_with_the_config(model_class):
    model = build(model_class, attention="eager")
    config = model.config
    ids, mask = left_padded(PROMPTS)
    batch, tokens = ids.shape
    with torch.no_grad():
        outputs = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True,
                        **({} if model_class is LSTForSequenceClassification else {"use_cache": True}))
    head_dim = config.hidden_size // config.num_attention_heads
    assert len(outputs.hidden_states) == config.num_hidden_layers + 1
    assert all(state.shape == (batch, tokens, config.hidden_size) for state in outputs.hidden_states)
    assert len(outputs.attentions) == config.num_hidden_layers
    assert all(weights.shape == (batch, config.num_attention_heads, tokens, tokens) for weights in outputs.attentions)
    for part in ("encoder_attentions", "cross_attentions", "encoder_cross_attentions", "global_attentions"):
        assert outputs[part] and all(weights is not None for weights in outputs[part]), part
    if model_class is not LSTForSequenceClassification:
        cache = outputs.cache
        assert len(cache) == config.num_hidden_layers
        assert all(layer.keys.shape == layer.values.shape == (batch, config.num_key_value_heads, tokens, head_dim)
                   for layer in cache.layers)


def test_a_value_head_and_probes_sized_from_the_config_work_unchanged():
    model = build()
    ids, mask = left_padded(PROMPTS)
    value_head = nn.Linear(model.config.hidden_size, 1)  # as TRL's AutoModelForCausalLMWithValueHead builds it
    outputs = model(ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
    values = value_head(outputs.hidden_states[-1]).squeeze(-1)
    assert values.shape == ids.shape
    (values * mask).sum().backward()
    assert value_head.weight.grad.abs().sum() > 0
    assert model.lm_head.weight.grad is None and model.model.decoder.norm.weight.grad.abs().sum() > 0
    # One linear probe per layer, sized from the config, on the last real token's state of each row.
    probes = [nn.Linear(model.config.hidden_size, 3) for _ in range(model.config.num_hidden_layers + 1)]
    predictions = [probe(state[:, -1]) for probe, state in zip(probes, outputs.hidden_states, strict=True)]
    assert all(p.shape == (len(PROMPTS), 3) for p in predictions)


STRATEGIES = {
    "greedy": dict(do_sample=False),
    "sample": dict(do_sample=True, top_k=0),
    "beam": dict(do_sample=False, num_beams=2, num_return_sequences=2),
    "beam-sample": dict(do_sample=True, num_beams=2, top_k=0),
}


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_generate_dict_outputs_have_the_library_shapes(strategy, use_cache):
    model = build(attention="eager")
    config = model.config
    ids, mask = left_padded(PROMPTS)
    batch, prompt, new = ids.shape[0], ids.shape[1], 5
    settings = STRATEGIES[strategy]
    rows = batch * settings.get("num_beams", 1)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, use_cache=use_cache,
                             return_dict_in_generate=True, output_scores=True, output_logits=True,
                             output_hidden_states=True, output_attentions=True, **settings)
    assert out.sequences.shape == (batch * settings.get("num_return_sequences", 1), prompt + new)
    assert len(out.scores) == len(out.logits) == len(out.hidden_states) == len(out.attentions) == new
    assert all(s.shape == (rows, config.vocab_size) for s in out.scores + out.logits)
    for step, (states, weights) in enumerate(zip(out.hidden_states, out.attentions)):
        queries = prompt if step == 0 or not use_cache else 1
        keys = prompt + step
        queries = queries if use_cache else keys
        assert len(states) == config.num_hidden_layers + 1 and len(weights) == config.num_hidden_layers
        assert all(s.shape == (rows, queries, config.hidden_size) for s in states), step
        assert all(w.shape == (rows, config.num_attention_heads, queries, keys) for w in weights), step
    if use_cache:
        head_dim = config.hidden_size // config.num_attention_heads
        assert len(out.cache) == config.num_hidden_layers
        assert all(layer.keys.shape == (rows, config.num_key_value_heads, prompt + new - 1, head_dim)
                   for layer in out.cache.layers)
    else:
        assert out.cache is None


def test_a_left_padded_batch_generates_what_each_row_generates_alone():
    model = build()
    ids, mask = left_padded(PROMPTS)
    with torch.no_grad():
        batched = model.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False,
                                 return_dict_in_generate=True, output_scores=True)
        for row, prompt in enumerate(PROMPTS):
            alone = model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False,
                                   return_dict_in_generate=True, output_scores=True)
            assert batched.sequences[row, -8:].tolist() == alone.sequences[0, -8:].tolist()
            for step in range(8):
                torch.testing.assert_close(batched.scores[step][row], alone.scores[step][0], atol=1e-4, rtol=1e-4)


DICT_OUTPUTS = dict(return_dict_in_generate=True, output_scores=True, output_hidden_states=True)


@pytest.mark.parametrize("helper", ["smaller draft", "itself", "prompt lookup"])
def test_assisted_and_prompt_lookup_decoding_with_dict_outputs_give_greedy(helper):
    model = build(seed=3)
    prompt = torch.tensor([PROMPTS[0] + PROMPTS[0][3:12]])  # repeats, so that prompt lookup finds candidates
    assisting = {"smaller draft": dict(assistant_model=build(seed=4, global_num_layers=1, decoder_num_layers=1)),
                 "itself": dict(assistant_model=model), "prompt lookup": dict(prompt_lookup_num_tokens=3)}[helper]
    with torch.no_grad():
        greedy = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, **DICT_OUTPUTS)
        helped = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, **DICT_OUTPUTS,
                                **assisting)
    assert helped.sequences.tolist() == greedy.sequences.tolist()
    assert len(helped.scores) == len(helped.hidden_states) == 12
    for ours, reference in zip(helped.scores, greedy.scores):
        torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    for step, states in enumerate(helped.hidden_states):  # one token's states per step after the prompt
        assert len(states) == model.config.num_hidden_layers + 1
        assert all(s.shape == (1, prompt.shape[1] if step == 0 else 1, model.config.hidden_size) for s in states)
    torch.testing.assert_close(helped.hidden_states[-1][-1], greedy.hidden_states[-1][-1], atol=1e-4, rtol=1e-4)


def test_several_cached_tokens_record_what_one_token_at_a_time_records():
    model = build(attention="eager")
    ids = torch.tensor([PROMPTS[0]])
    with torch.no_grad():
        together = model(ids[:, 9:], cache=model(ids[:, :9]).cache, output_hidden_states=True,
                         output_attentions=True)
        cache = model(ids[:, :9]).cache
        alone = [model(ids[:, i : i + 1], cache=cache, output_hidden_states=True, output_attentions=True)
                 for i in range(9, ids.shape[1])]
    torch.testing.assert_close(together.logits, torch.cat([step.logits for step in alone], dim=1))
    for layer, states in enumerate(together.hidden_states):
        torch.testing.assert_close(states, torch.cat([step.hidden_states[layer] for step in alone], dim=1))
    for layer, weights in enumerate(together.attentions):  # (1, heads, 7 new tokens, all 16 keys)
        assert weights.shape == (1, model.config.num_attention_heads, 7, 16)
        for query, step in enumerate(alone):
            seen = step.attentions[layer].shape[-1]
            torch.testing.assert_close(weights[:, :, query : query + 1, :seen], step.attentions[layer])
            assert not weights[:, :, query, seen:].any()


def test_generate_continues_a_left_padded_batch_from_its_returned_cache():
    model = build()
    ids, mask = left_padded(PROMPTS)
    with torch.no_grad():
        longer = model.generate(ids, attention_mask=mask, max_new_tokens=10, min_new_tokens=10, do_sample=False)
        first = model.generate(ids, attention_mask=mask, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                               return_dict_in_generate=True)
        grown = torch.cat([mask, torch.ones(3, 4, dtype=mask.dtype)], dim=1)
        second = model.generate(first.sequences, attention_mask=grown, cache=first.cache, max_new_tokens=6,
                                min_new_tokens=6, do_sample=False)
    assert second.tolist() == longer.tolist()


def test_output_attentions_under_sdpa_warns_and_returns_none_as_library_models_do(caplog):
    model = build()  # sdpa
    ids, mask = left_padded(PROMPTS)
    with caplog.at_level(logging.WARNING), torch.no_grad():
        outputs = model(ids, attention_mask=mask, output_attentions=True, use_cache=False)
        plain = model(ids, attention_mask=mask, use_cache=False)
    assert "need eager attention" in caplog.text
    assert outputs.attentions is None and outputs.global_attentions is None
    torch.testing.assert_close(outputs.logits, plain.logits)
    eager = build(attention="eager")
    with torch.no_grad():
        weighted = eager(ids, attention_mask=mask, output_attentions=True, use_cache=False)
    torch.testing.assert_close(weighted.logits, plain.logits, atol=1e-5, rtol=1e-4)


def test_from_pretrained_without_a_path_takes_a_config_and_a_state_dict():
    model = build()
    loaded = LSTForCausalLM.from_pretrained(None, config=model.config, state_dict=model.state_dict()).eval()
    ids, mask = left_padded(PROMPTS)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, model(ids, attention_mask=mask).logits)


def test_a_model_saved_with_the_first_config_layout_loads_unchanged(tmp_path):
    """Before the `global_*` fields, `hidden_size` and its siblings named the global transformer's shape."""
    model = build()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for generic, global_name in (("hidden_size", "global_hidden_size"), ("num_hidden_layers", "global_num_layers"),
                                 ("num_attention_heads", "global_num_attention_heads"),
                                 ("num_key_value_heads", "global_num_key_value_heads"),
                                 ("intermediate_size", "global_intermediate_size")):
        saved[generic] = saved.pop(global_name)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = AutoConfig.from_pretrained(tmp_path)
    assert (config.global_hidden_size, config.global_num_layers, config.hidden_size) == (48, 3, 32)
    loaded = LSTForCausalLM.from_pretrained(tmp_path).eval()
    ids, mask = left_padded(PROMPTS)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, model(ids, attention_mask=mask).logits)
    assert GenerationConfig.from_model_config(loaded.config).eos_token_id == 2


def test_the_library_caches_that_do_not_fit_are_refused_by_name():
    model = build()
    ids, mask = left_padded(PROMPTS)
    for implementation in ("static", "offloaded", "quantized"):
        with pytest.raises(ValueError, match=f"cache_implementation='{implementation}' is not supported"):
            model.generate(ids, attention_mask=mask, max_new_tokens=2, cache_implementation=implementation)
    with pytest.raises(TypeError, match="only its own cache \\(LSTCache\\), not a DynamicCache"):
        model(ids, attention_mask=mask, cache=DynamicCache())


def test_dynamic_int8_quantization_of_the_linear_layers_runs_generate():
    model = build()
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    ids, mask = left_padded(PROMPTS)
    with torch.no_grad():
        full, eight_bit = model(ids, attention_mask=mask).logits, quantized(ids, attention_mask=mask).logits
        generated = quantized.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert generated.shape == (3, ids.shape[1] + 4)
    # int8 weights move the logits a little, not the model's choice at most positions.
    agree = (full.argmax(-1) == eight_bit.argmax(-1))[mask.bool()].float().mean()
    assert agree > 0.8 and not torch.equal(full, eight_bit)
