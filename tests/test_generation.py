"""Cached generation: exact against full recompute, batched and left-padded, with generate()'s strategies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.cache_lst import LSTCache


@pytest.fixture(scope="module")
def model(tokenizer) -> LSTForCausalLM:
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny", local_attention_window=6,
                                      cross_attn_window_encoder=2, cross_attn_window_decoder=2)
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():  # larger than the init's weights, so that differences would show
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0, 0.3)
    return model


def mixed_sequence(tokenizer, rng) -> list[int]:
    """Text, markers and speech runs of every length from 1 to 9, in random order."""
    segments = []
    for run in rng.permutation(np.arange(1, 10)):
        segments += [str(rng.choice(["in the", "God said", "light", "and"])), rng.integers(0, 50, size=run)]
    return tokenizer(segments=segments)["input_ids"]


@pytest.mark.parametrize("seed", range(4))
def test_teacher_forced_cached_steps_reproduce_the_full_forward(model, tokenizer, seed):
    rng = np.random.default_rng(seed)
    ids = torch.tensor([mixed_sequence(tokenizer, rng)])
    with torch.no_grad():
        full = model(ids).logits
        prompt = int(rng.integers(1, 12))
        outputs = model(ids[:, :prompt], use_cache=True)
        cache, logits = outputs.cache, [outputs.logits]
        assert isinstance(cache, LSTCache) and cache.get_seq_length() == prompt
        for position in range(prompt, ids.shape[1]):
            step = model(ids[:, position : position + 1], attention_mask=torch.ones(1, position + 1, dtype=torch.long),
                         cache=cache, use_cache=True)
            logits.append(step.logits)
    torch.testing.assert_close(torch.cat(logits, dim=1), full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_several_tokens_after_a_cache_in_one_pass_reproduce_the_full_forward(model, tokenizer, seed):
    """Left-padded prompts that stop anywhere (inside a speech run too), then right-padded chunks of new tokens
    (one forward each, as when scoring endings after a cached prompt): each real token's logits are the full
    forward's."""
    rng = np.random.default_rng(seed)
    sequences = [mixed_sequence(tokenizer, rng) for _ in range(4)]
    cuts = [int(rng.integers(1, 30)) for _ in sequences]
    prompts = [s[:cut] for s, cut in zip(sequences, cuts)]
    news = [s[cut : cut + int(rng.integers(2, 40))] for s, cut in zip(sequences, cuts)]
    width, length = max(map(len, prompts)), max(map(len, news))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    new_ids = torch.tensor([n + [0] * (length - len(n)) for n in news])
    new_mask = torch.tensor([[1] * len(n) + [0] * (length - len(n)) for n in news])
    split = int(rng.integers(2, length))
    with torch.no_grad():
        outputs = model(ids, attention_mask=mask, use_cache=True)
        first = model(new_ids[:, :split], attention_mask=torch.cat([mask, new_mask[:, :split]], 1), cache=outputs.cache)
        second = model(new_ids[:, split:], attention_mask=torch.cat([mask, new_mask], 1), cache=outputs.cache)
        cached = torch.cat([outputs.logits[:, -1:], first.logits, second.logits], dim=1)
        for row, (prompt, new) in enumerate(zip(prompts, news)):
            full = model(torch.tensor([prompt + new])).logits[0, len(prompt) - 1 :]
            torch.testing.assert_close(cached[row, : len(new) + 1], full, atol=1e-4, rtol=1e-4)


def test_the_cache_goes_by_the_installed_transformers_name(model, tokenizer):
    """transformers 5.24 calls the cache `cache` in forwards and outputs; `past_key_values` still works, warning."""
    ids = torch.tensor([mixed_sequence(tokenizer, np.random.default_rng(3))])
    with torch.no_grad():
        outputs = model(ids[:, :8], use_cache=True)
        assert isinstance(outputs.cache, LSTCache) and outputs.cache.get_seq_length() == 8
        assert "cache" in outputs.keys() and "past_key_values" not in outputs.keys()
        with pytest.warns(FutureWarning, match="past_key_values"):
            step = model(ids[:, 8:9], past_key_values=outputs.cache, use_cache=True)
        assert step.cache is outputs.cache and outputs.cache.get_seq_length() == 9
        # The library's own property for the old attribute name reads the same object.
        assert outputs.past_key_values is outputs.cache
        generated = model.generate(ids[:, :8], max_new_tokens=6, do_sample=False, return_dict_in_generate=True)
    assert isinstance(generated.cache, LSTCache) and generated.cache.get_seq_length() == 8 + 6 - 1
    without_cache = model.generate(ids[:, :8], max_new_tokens=6, do_sample=False, use_cache=False)
    assert generated.sequences.tolist() == without_cache.tolist()


def test_the_global_transformer_runs_once_per_closed_patch(model, tokenizer):
    ids = torch.tensor([tokenizer(segments=["hi", np.arange(10) % 50])["input_ids"]])
    with torch.no_grad():
        cache = model(ids[:, :3], use_cache=True).cache  # bos, [Text], first text piece
        slots_before = cache.patch_keys.shape[1]
        for position in range(3, ids.shape[1]):
            model(ids[:, position : position + 1], cache=cache, use_cache=True)
    # After the prompt come the rest of the text and [Speech] (n tokens, each closing the patch before it),
    # then 10 units: the first closes [Speech]'s patch, units 5 and 9 close the patches 1-4 and 5-8, and
    # units 9-10 stay open. One global step per closed patch:
    closed = (ids.shape[1] - 3 - 10) + 3
    assert cache.patch_keys.shape[1] - slots_before == closed


def test_greedy_generation_with_the_cache_equals_full_recompute(model, tokenizer):
    rng = np.random.default_rng(11)
    for _ in range(20):
        sequence = mixed_sequence(tokenizer, rng)
        prompt = torch.tensor([sequence[: int(rng.integers(2, 30))]])
        cached = model.generate(prompt, max_new_tokens=12, do_sample=False)
        recomputed = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=False)
        assert cached.tolist() == recomputed.tolist()


def test_batched_left_padded_prompts_give_the_tokens_of_one_by_one(model, tokenizer):
    rng = np.random.default_rng(5)
    prompts = [mixed_sequence(tokenizer, rng)[:n] for n in (25, 9, 17, 3)]
    width = max(map(len, prompts))
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False)
        assert batched[row, width:].tolist() == alone[0, len(prompt):].tolist()


def test_beam_search_with_the_cache_equals_full_recompute(model, tokenizer):
    prompt = torch.tensor([mixed_sequence(tokenizer, np.random.default_rng(2))[:14]])
    cached = model.generate(prompt, max_new_tokens=8, num_beams=3, do_sample=False)
    recomputed = model.generate(prompt, max_new_tokens=8, num_beams=3, do_sample=False, use_cache=False)
    assert cached.tolist() == recomputed.tolist()


def test_sampling_streaming_and_stopping(model, tokenizer):
    prompt = torch.tensor([tokenizer(segments=["In the beginning"])["input_ids"]])
    torch.manual_seed(0)
    first = model.generate(prompt, do_sample=True, temperature=0.8, top_k=20, top_p=0.9, max_new_tokens=15)
    torch.manual_seed(0)
    again = model.generate(prompt, do_sample=True, temperature=0.8, top_k=20, top_p=0.9, max_new_tokens=15)
    assert first.tolist() == again.tolist() and first.shape[1] == prompt.shape[1] + 15

    class StopAfterSpeechMarker(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return (input_ids[:, -1] == tokenizer.speech_marker_id)

    stopped = model.generate(prompt, max_new_tokens=200, do_sample=False, eos_token_id=None,
                             stopping_criteria=StoppingCriteriaList([StopAfterSpeechMarker()]))
    generated = stopped[0, prompt.shape[1]:].tolist()
    assert tokenizer.speech_marker_id not in generated[:-1]
    assert len(generated) == 200 or generated[-1] == tokenizer.speech_marker_id

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    import threading

    thread = threading.Thread(target=model.generate, kwargs=dict(inputs=prompt, max_new_tokens=6, do_sample=False,
                                                                 streamer=streamer))
    thread.start()
    streamed = "".join(streamer)
    thread.join()
    greedy = model.generate(prompt, max_new_tokens=6, do_sample=False)
    assert streamed == tokenizer.decode(greedy[0, prompt.shape[1]:])
