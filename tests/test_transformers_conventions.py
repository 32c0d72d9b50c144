"""LST follows the conventions every transformers model follows: return_dict, use_cache from the config,
generate continued from a returned cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM, LSTForSequenceClassification, LSTModel
from lst_speech.modeling_lst.cache_lst import LSTCache


@pytest.fixture(scope="module")
def config(tokenizer) -> LSTConfig:
    return LSTConfig.from_tokenizer(tokenizer, preset="tiny", local_attention_window=6)


@pytest.fixture(scope="module")
def ids(tokenizer) -> torch.Tensor:
    rng = np.random.default_rng(2)
    return torch.tensor([tokenizer(segments=["in the beginning", rng.integers(0, 50, 11), "and God"])["input_ids"]])


def test_return_dict_false_gives_the_fields_as_a_tuple_in_order(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():
        as_dict = model(ids, labels=ids)
        loss, logits, cache = model(ids, labels=ids, return_dict=False)
        model.config.return_dict = False
        from_config = model(ids, labels=ids, use_cache=False)
        model.config.return_dict = True
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    torch.testing.assert_close(loss, as_dict.loss)
    torch.testing.assert_close(logits, as_dict.logits)
    assert isinstance(cache, LSTCache)
    assert isinstance(from_config, tuple) and len(from_config) == 2  # loss, logits (no cache asked for)

    backbone = LSTModel(config).eval()
    with torch.no_grad():
        fields = backbone(ids, return_dict=False)
        named = backbone(ids)
    assert isinstance(fields, tuple) and isinstance(fields[1], LSTCache)  # last_hidden_state, cache, ...
    torch.testing.assert_close(fields[0], named.last_hidden_state)
    torch.testing.assert_close(fields[2], named.last_global_hidden_state)

    classifier = LSTForSequenceClassification(LSTConfig(**{**config.to_dict(), "num_labels": 3})).eval()
    with torch.no_grad():
        loss, logits = classifier(ids, labels=torch.tensor([2]), return_dict=False)
    assert logits.shape == (1, 3) and loss.ndim == 0


def test_use_cache_comes_from_the_config(config, ids):
    assert config.use_cache is True
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():
        assert isinstance(model(ids).cache, LSTCache)
        assert model(ids, use_cache=False).cache is None
        model.config.use_cache = False
        try:
            assert model(ids).cache is None
            assert isinstance(model(ids, use_cache=True).cache, LSTCache)
        finally:
            model.config.use_cache = True
    reloaded = LSTConfig.from_dict({**config.to_dict(), "use_cache": False})
    assert reloaded.use_cache is False


def test_generate_continues_from_a_returned_cache(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():  # larger weights, so that a wrong continuation would show
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0, 0.3)
    prompt = ids[:, :9]
    with torch.no_grad():
        one_call = model.generate(prompt, max_new_tokens=12, do_sample=False)
        first = model.generate(prompt, max_new_tokens=5, do_sample=False, return_dict_in_generate=True)
        continued = model.generate(first.sequences, cache=first.cache, max_new_tokens=7, do_sample=False)
        assert continued.tolist() == one_call.tolist()
        # The same with an attention mask over the full sequence (the library slices the inputs itself).
        first = model.generate(prompt, max_new_tokens=5, do_sample=False, return_dict_in_generate=True)
        masked = model.generate(first.sequences, attention_mask=torch.ones_like(first.sequences), cache=first.cache,
                                max_new_tokens=7, do_sample=False)
    assert masked.tolist() == one_call.tolist()



def test_hidden_states_of_every_part_follow_the_library_convention(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    outputs = model(ids, output_hidden_states=True, use_cache=False)
    backbone = model.model(ids, use_cache=False)
    tokens, slots = ids.shape[1], backbone.last_global_hidden_state.shape[1]

    decoder, encoder, global_ = outputs.hidden_states, outputs.encoder_hidden_states, outputs.global_hidden_states
    assert len(decoder) == config.decoder_num_layers + 1 and len(encoder) == config.encoder_num_layers
    assert len(global_) == config.global_num_layers
    assert all(state.shape == (1, tokens, config.local_hidden_size) for state in decoder + encoder)
    assert all(state.shape == (1, slots, config.global_hidden_size) for state in global_)
    # The decoder starts from the encoder's output and ends at last_hidden_state (after the final norm).
    torch.testing.assert_close(decoder[0], encoder[-1])
    torch.testing.assert_close(decoder[-1], backbone.last_hidden_state)
    torch.testing.assert_close(model.model.global_transformer.norm(global_[-1]), backbone.last_global_hidden_state)
    # The layers change the states (nothing is recorded twice).
    assert not torch.allclose(decoder[0], decoder[1]) and not torch.allclose(global_[0], global_[1])

    # Gradients reach the recorded states.
    for state in (decoder[1], encoder[0], global_[0]):
        state.retain_grad()
    outputs.logits.logsumexp(-1).sum().backward()
    assert all(state.grad is not None and state.grad.abs().sum() > 0 for state in (decoder[1], encoder[0], global_[0]))

    with torch.no_grad():
        plain = model(ids, use_cache=False)
        as_tuple = model(ids, output_hidden_states=True, use_cache=False, return_dict=False)
        model.config.output_hidden_states = True
        try:
            from_config = model(ids, use_cache=False)
        finally:
            model.config.output_hidden_states = False
    assert plain.hidden_states is None and plain.encoder_hidden_states is None and plain.global_hidden_states is None
    logits, decoder_states, encoder_states, global_states = as_tuple
    torch.testing.assert_close(logits, outputs.logits)
    assert len(decoder_states) == len(decoder) and len(encoder_states) == len(encoder)
    assert len(global_states) == len(global_)
    assert len(from_config.hidden_states) == len(decoder)


ATTENTION_FIELDS = ("attentions", "cross_attentions", "encoder_attentions", "encoder_cross_attentions",
                    "global_attentions")


def test_attention_weights_of_every_part(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    model.set_attn_implementation("eager")
    outputs = model(ids, output_attentions=True, use_cache=False)
    backbone = model.model(ids, use_cache=False)
    tokens, slots, k = ids.shape[1], backbone.last_global_hidden_state.shape[1], config.cross_attn_k
    local_heads, cross_heads = config.local_num_attention_heads, config.cross_attn_num_heads
    shapes = {
        "attentions": (config.decoder_num_layers, (1, local_heads, tokens, tokens)),
        "cross_attentions": (config.decoder_num_layers, (1, cross_heads, tokens, (1 + slots) * k)),
        "encoder_attentions": (config.encoder_num_layers, (1, local_heads, tokens, tokens)),
        "encoder_cross_attentions": (1, (1, cross_heads, slots * k, tokens)),
        "global_attentions": (config.global_num_layers, (1, config.global_num_attention_heads, slots, slots)),
    }
    for name, (count, shape) in shapes.items():
        weights = outputs[name]
        assert len(weights) == count and all(w.shape == shape for w in weights), name
        for w in weights:  # every query's weights are a distribution
            torch.testing.assert_close(w.sum(-1), torch.ones(shape[:-1]))

    # Each token reads its window of `local_attention_window` tokens, itself included, and nothing later.
    query, key = torch.arange(tokens)[:, None], torch.arange(tokens)[None]
    outside = (key > query) | (query - key >= config.local_attention_window)
    for w in outputs.attentions + outputs.encoder_attentions:
        assert w[..., outside].abs().max() == 0 and w[..., ~outside].min() > 0
    assert torch.triu(outputs.global_attentions[0], diagonal=1).abs().max() == 0
    # A token of patch p reads the null state and patches before p only.
    patch_ids = backbone.patch_ids[0]
    key_slot = torch.arange((1 + slots) * k) // k - 1  # -1: the null state
    window = config.cross_attn_window_decoder
    unreadable = (key_slot[None] >= patch_ids[:, None]) | (key_slot[None] < patch_ids[:, None] - window)
    unreadable &= key_slot[None] >= 0
    assert outputs.cross_attentions[0][0][:, unreadable].abs().max() == 0

    # Gradients reach the weights; tuples equal dicts; generate returns them per step.
    weights = outputs.cross_attentions[0]
    weights.retain_grad()
    outputs.logits.logsumexp(-1).sum().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    with torch.no_grad():
        as_tuple = model(ids, output_attentions=True, use_cache=False, return_dict=False)
        generated = model.generate(ids[:, :-1], max_new_tokens=1, do_sample=False, return_dict_in_generate=True,
                                   output_attentions=True)
        plain = model(ids, use_cache=False)
    # Outputs recomputed from the dense weights (so that gradients reach them) are the blocked outputs.
    torch.testing.assert_close(outputs.logits.detach(), plain.logits, atol=1e-5, rtol=1e-5)
    assert plain.attentions is None and plain.global_attentions is None
    torch.testing.assert_close(as_tuple[0], plain.logits, atol=1e-5, rtol=1e-5)  # logits, then attentions, ...
    assert len(as_tuple) == 1 + len(ATTENTION_FIELDS)
    torch.testing.assert_close(as_tuple[1][0], outputs.attentions[0].detach())
    step = generated.attentions[0]
    assert len(step) == config.decoder_num_layers and step[0].shape == (1, local_heads, tokens - 1, tokens - 1)
    # The cached step (one query against the cache) gives the full forward's last row.
    with torch.no_grad():
        cache = model(ids[:, :-1]).cache
        last = model(ids[:, -1:], cache=cache, output_attentions=True)
    torch.testing.assert_close(last.attentions[0][:, :, 0], outputs.attentions[0][:, :, -1].detach(),
                               atol=1e-6, rtol=1e-5)
    # Its cross-attention keys are the cache's slots, of which `slot_is_real` marks the real ones (in patch order).
    real_keys = torch.cat([torch.ones(k, dtype=torch.bool), cache.slot_is_real[0].repeat_interleave(k)])
    cached_row = last.cross_attentions[0][:, :, 0][..., real_keys]
    full_row = outputs.cross_attentions[0][:, :, -1].detach()[..., : cached_row.shape[-1]]
    torch.testing.assert_close(cached_row, full_row, atol=1e-6, rtol=1e-5)


def test_generate_returns_scores_logits_and_hidden_states_per_step(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    prompt, new = ids[:, :9], 6
    with torch.no_grad():
        out = model.generate(prompt, max_new_tokens=new, do_sample=False, return_dict_in_generate=True,
                             output_scores=True, output_logits=True, output_hidden_states=True)
        plain = model.generate(prompt, max_new_tokens=new, do_sample=False)
        full = model(out.sequences, use_cache=False).logits
    assert out.sequences.tolist() == plain.tolist()
    assert len(out.scores) == len(out.logits) == len(out.hidden_states) == new
    for step, (logits, states) in enumerate(zip(out.logits, out.hidden_states)):
        length = prompt.shape[1] if step == 0 else 1
        assert len(states) == config.decoder_num_layers + 1 and states[-1].shape[1] == length
        # The step's logits are the full forward's at that position.
        torch.testing.assert_close(logits[0], full[0, prompt.shape[1] + step - 1], atol=1e-4, rtol=1e-4)



def strong_model(config, seed: int) -> LSTForCausalLM:
    """Weights larger than the init's, so that any difference in what a position sees changes its logits."""
    torch.manual_seed(seed)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0, 0.3)
    return model


def speech_heavy_sequence(tokenizer, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    segments = []
    for run in (3, 9, 5, 7):
        segments += [str(rng.choice(["in the", "God said", "light"])), rng.integers(0, 50, size=run)]
    return tokenizer(segments=segments)["input_ids"]


@pytest.mark.parametrize("prefill, removed", [(5, 7), (20, 3), (30, 12), (12, 6)])
def test_cache_crop_equals_recomputation(config, tokenizer, prefill, removed):
    model = strong_model(config, seed=1)
    ids = torch.tensor([speech_heavy_sequence(tokenizer, seed=prefill)])
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        cache = model(ids[:, :prefill]).cache
        for position in range(prefill, ids.shape[1]):
            model(ids[:, position : position + 1], cache=cache)
        cache.crop(-removed)  # back to length - removed tokens (into the prefill for some cases)
        kept = ids.shape[1] - removed
        assert cache.get_seq_length() == kept
        again = [model(ids[:, position : position + 1], cache=cache).logits for position in range(kept, ids.shape[1])]
    torch.testing.assert_close(torch.cat(again, dim=1), full[:, kept:], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="negative number"):
        cache.crop(3)


def test_cache_crop_of_a_left_padded_batch_equals_recomputation(config, tokenizer):
    model = strong_model(config, seed=2)
    rows = [speech_heavy_sequence(tokenizer, seed=s)[:n] for s, n in ((3, 30), (4, 21))]
    width = max(map(len, rows))
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(r) for r in rows])[:, None]).long()
    with torch.no_grad():
        full = model(ids, attention_mask=mask, use_cache=False).logits
        cache = model(ids[:, :14], attention_mask=mask[:, :14]).cache
        for position in range(14, width):
            model(ids[:, position : position + 1], attention_mask=mask[:, : position + 1], cache=cache)
        cache.crop(-9)
        again = [model(ids[:, p : p + 1], attention_mask=mask[:, : p + 1], cache=cache).logits
                 for p in range(width - 9, width)]
    torch.testing.assert_close(torch.cat(again, dim=1), full[:, width - 9 :], atol=1e-4, rtol=1e-4)


def test_prompt_lookup_and_assisted_decoding_give_the_greedy_tokens(config, tokenizer, monkeypatch):
    removed = []  # the tokens each rejected candidate run took back: the crop path really runs
    crop = LSTCache.crop
    monkeypatch.setattr(LSTCache, "crop", lambda self, n: (removed.append(n), crop(self, n))[1])
    model = strong_model(config, seed=3)
    draft = strong_model(LSTConfig(**{**config.to_dict(), "global_num_layers": 1}), seed=4)
    sequence = speech_heavy_sequence(tokenizer, seed=7)
    prompt = torch.tensor([sequence + sequence[2:20]])  # repeats, so that prompt lookup finds candidates
    with torch.no_grad():
        greedy = model.generate(prompt, max_new_tokens=24, do_sample=False)
        lookup = model.generate(prompt, max_new_tokens=24, do_sample=False, prompt_lookup_num_tokens=4)
        assisted = model.generate(prompt, max_new_tokens=24, do_sample=False, assistant_model=draft)
    assert lookup.tolist() == greedy.tolist()
    assert assisted.tolist() == greedy.tolist()
    assert any(n < 0 for n in removed)

    torch.manual_seed(5)  # the Llama baseline over the same vocabulary, through the same generate paths
    baseline = LlamaForCausalLM(config.global_llama_config()).eval()
    baseline_draft = LlamaForCausalLM(LlamaConfig(**{**config.global_llama_config().to_dict(),
                                                     "num_hidden_layers": 1})).eval()
    with torch.no_grad():
        greedy = baseline.generate(prompt, max_new_tokens=24, do_sample=False)
        lookup = baseline.generate(prompt, max_new_tokens=24, do_sample=False, prompt_lookup_num_tokens=4)
        assisted = baseline.generate(prompt, max_new_tokens=24, do_sample=False, assistant_model=baseline_draft)
    assert lookup.tolist() == greedy.tolist() and assisted.tolist() == greedy.tolist()


def test_inputs_embeds_are_refused_with_the_reason(config, ids):
    model = LSTForCausalLM(config).eval()
    with pytest.raises(ValueError, match="needs input_ids, not inputs_embeds"):
        model(ids, inputs_embeds=model.get_input_embeddings()(ids))
    with pytest.raises(ValueError, match="needs input_ids, not inputs_embeds"):
        model(inputs_embeds=model.get_input_embeddings()(ids))


def test_hidden_states_under_gradient_checkpointing(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(config)
    reference = model(ids, output_hidden_states=True, use_cache=False)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    checkpointed = model(ids, labels=ids, output_hidden_states=True)
    checkpointed.loss.backward()  # the recomputation in backward records nothing more
    assert checkpointed.cache is None  # use_cache is turned off under gradient checkpointing, as in the library
    for name in ("hidden_states", "encoder_hidden_states", "global_hidden_states"):
        ours, theirs = getattr(checkpointed, name), getattr(reference, name)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b)


def test_resizing_keeps_old_logits_and_moves_the_id_ranges(config, ids):
    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig(**config.to_dict())).eval()  # a copy: resizing changes the config
    old_size, (speech_start, speech_end) = config.vocab_size, config.speech_token_range
    with torch.no_grad():
        before = model(ids, use_cache=False).logits
        model.resize_token_embeddings(old_size + 8)  # text-side additions: the speech range stays
        assert model.config.vocab_size == old_size + 8 and model.config.speech_token_range == [speech_start, speech_end]
        torch.testing.assert_close(model(ids, use_cache=False).logits[..., :old_size], before)
        with pytest.raises(ValueError, match="New speech units must follow the current ones"):
            model.resize_token_embeddings(old_size + 16, new_tokens_are_speech=True)

    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig(**config.to_dict())).eval()
    with torch.no_grad():
        model.resize_token_embeddings(old_size + 4, new_tokens_are_speech=True)
        assert model.config.speech_token_range == [speech_start, old_size + 4]
        new_units = torch.arange(old_size, old_size + 4)[None]
        with_new = torch.cat([ids, torch.tensor([[config.speech_marker_id]]), new_units], dim=1)
        patches = model.model(with_new, use_cache=False).patch_ids[0, -4:]
        assert patches.unique().numel() == 1  # four new units make one static patch, as units do
        torch.testing.assert_close(model(ids, use_cache=False).logits[..., :old_size], before)
        with pytest.raises(ValueError, match="belong to its text, marker and speech ranges"):
            model.resize_token_embeddings(speech_end - 1)
