"""LSTModel / LSTForCausalLM: causality under every patching, padding invariance, eager = sdpa, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM, LSTForSequenceClassification, LSTModel
from lst_speech.modeling_lst.patching import patch_starts


@pytest.fixture(scope="module")
def config(tokenizer) -> LSTConfig:
    # Windows small enough that the tests cross them: 6 tokens locally, 2 patches in the cross-attentions.
    return LSTConfig.from_tokenizer(tokenizer, preset="tiny", local_attention_window=6,
                                    cross_attn_window_encoder=2, cross_attn_window_decoder=2)


@pytest.fixture(scope="module")
def model(config) -> LSTForCausalLM:
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():  # larger weights than the 0.02 init, so that every dependency shows in the logits
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0, 0.3)
    return model


def random_mixed_ids(tokenizer, rng, length: int) -> list[int]:
    """A random interleaving of text pieces and speech runs (1-9 units) with markers, starting with BOS."""
    segments, ids = [], []
    while len(ids) < length:
        if rng.random() < 0.5:
            segments.append(rng.integers(0, tokenizer.num_units, size=rng.integers(1, 10)))
        else:
            segments.append(" ".join(rng.choice(["in", "the", "beginning", "God", "created", "light"], 2)))
        ids = tokenizer(segments=segments)["input_ids"]
    return ids[:length]


def padded(rows: list[list[int]], pad_id: int, side: str):
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row)
        mask[i, span] = 1
    return ids, mask


def starts_for(mode, ids, mask, config, boundaries, generator_seed=0):
    speech = (ids >= config.speech_token_range[0]) & (ids < config.speech_token_range[1]) & mask.bool()
    return patch_starts(mode, speech, config.patch_size, config.max_patch_length, boundaries,
                        generator=torch.Generator().manual_seed(generator_seed))


@pytest.mark.parametrize("mode", ["static", "aligned", "bpe", "mixed", "curriculum", "none"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_future_tokens_never_change_past_logits(model, tokenizer, config, mode, side):
    rng = np.random.default_rng({"static": 0, "aligned": 1, "mixed": 2, "none": 3, "bpe": 4, "curriculum": 5}[mode]
                                + (side == "left") * 10)
    for _ in range(3):
        rows = [random_mixed_ids(tokenizer, rng, int(rng.integers(24, 40))) for _ in range(2)]
        ids, mask = padded(rows, tokenizer.pad_token_id, side)
        boundaries = torch.from_numpy(rng.random(ids.shape) < 0.3)
        reference = model(ids, attention_mask=mask, patch_starts=starts_for(mode, ids, mask, config, boundaries)).logits
        row_lengths = [len(r) for r in rows]
        for cut in rng.choice(np.arange(2, min(row_lengths) - 2), size=4, replace=False):
            changed_rows = [r[: cut + 1] + random_mixed_ids(tokenizer, rng, len(r) + 5)[1 : len(r) - cut] for r in rows]
            changed_ids, changed_mask = padded(changed_rows, tokenizer.pad_token_id, side)
            changed_boundaries = boundaries.clone()
            for i, row in enumerate(rows):  # future word boundaries may change too
                offset = ids.shape[1] - len(row) if side == "left" else 0
                future = slice(offset + cut + 1, offset + len(row))
                changed_boundaries[i, future] = torch.from_numpy(rng.random(len(row) - cut - 1) < 0.3)
            logits = model(changed_ids, attention_mask=changed_mask,
                           patch_starts=starts_for(mode, changed_ids, changed_mask, config, changed_boundaries)).logits
            for i, row in enumerate(rows):
                offset = ids.shape[1] - len(row) if side == "left" else 0
                past = slice(offset, offset + cut + 1)
                torch.testing.assert_close(logits[i, past], reference[i, past], atol=1e-5, rtol=1e-5)
                assert not torch.allclose(logits[i, offset + cut + 1 : offset + len(row)],
                                          reference[i, offset + cut + 1 : offset + len(row)], atol=1e-3)


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_row_in_a_padded_batch_gives_its_own_logits(model, tokenizer, side):
    rng = np.random.default_rng(7)
    rows = [random_mixed_ids(tokenizer, rng, n) for n in (40, 13, 27)]  # different patch counts
    ids, mask = padded(rows, tokenizer.pad_token_id, side)
    batch_logits = model(ids, attention_mask=mask).logits
    for i, row in enumerate(rows):
        alone = model(torch.tensor([row])).logits[0]
        span = slice(ids.shape[1] - len(row), None) if side == "left" else slice(0, len(row))
        # Padding changes the attention blocks, hence the float summation order, on logits of order 10.
        torch.testing.assert_close(batch_logits[i, span], alone, atol=1e-4, rtol=1e-5)


def test_eager_and_sdpa_agree(model, tokenizer):
    rng = np.random.default_rng(3)
    ids, mask = padded([random_mixed_ids(tokenizer, rng, n) for n in (30, 18)], tokenizer.pad_token_id, "left")
    model.set_attn_implementation("sdpa")
    sdpa = model(ids, attention_mask=mask).logits
    model.set_attn_implementation("eager")
    eager = model(ids, attention_mask=mask).logits
    model.set_attn_implementation("sdpa")
    real = mask.bool()  # padding rows are fully masked and differ between kernels; they are never read
    assert sdpa[real].abs().max() > 5  # the test weights make logits large, hence the absolute tolerance
    torch.testing.assert_close(eager[real], sdpa[real], atol=1e-4, rtol=1e-5)


def test_static_patching_shrinks_the_global_sequence(model, tokenizer):
    ids = torch.tensor([tokenizer(segments=["hello", np.arange(12) % tokenizer.num_units])["input_ids"]])
    outputs = model.model(ids)
    # bos, [Text], text pieces, [Speech] are singletons; 12 units make 3 patches of 4.
    text_tokens = ids.shape[1] - 12
    assert outputs.last_global_hidden_state.shape[1] == text_tokens + 3
    assert outputs.patch_ids[0, -12:].tolist() == [text_tokens] * 4 + [text_tokens + 1] * 4 + [text_tokens + 2] * 4


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_run_of_padding_is_one_global_slot(model, tokenizer, side):
    """A short text row padded next to a long speech row must not give the global transformer one slot per
    padding token (that made it as long as the token sequence)."""
    rows = [[np.arange(40) % tokenizer.num_units], ["in the beginning"]]
    batch = tokenizer(segments=rows, padding=True, padding_side=side, return_tensors="pt")
    outputs = model.model(batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    speech_row_slots = 2 + 40 // 4  # BOS, [Speech], ten patches of four units
    text_row_real = int(batch["attention_mask"][1].sum())
    assert outputs.last_global_hidden_state.shape[1] == max(speech_row_slots, text_row_real + 1)
    assert int(outputs.patch_mask[1].sum()) == text_row_real


@pytest.mark.slow
def test_tiny_model_overfits_two_mixed_sequences(tokenizer, config):
    torch.manual_seed(0)
    model = LSTForCausalLM(config)
    batch = tokenizer(segments=[["In the beginning", np.arange(9) % 50, "God"], [np.arange(11) % 50 + 3, "light"]],
                      padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model(batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_labels_of_minus_100_are_ignored(model, tokenizer):
    ids = torch.tensor([tokenizer(segments=["hello", [1, 2, 3]])["input_ids"]])
    labels = ids.clone()
    labels[0, :3] = -100
    logits = model(ids).logits
    expected = torch.nn.functional.cross_entropy(logits[0, 2:-1], labels[0, 3:])
    torch.testing.assert_close(model(ids, labels=labels).loss, expected)


def test_gradient_checkpointing_gives_the_same_gradients(config, tokenizer):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).train()
    ids = torch.tensor([tokenizer(segments=["hello", np.arange(10) % 50])["input_ids"]])
    model(ids, labels=ids).loss.backward()
    expected = model.model.global_transformer.layers[0].self_attn.q_proj.weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    model(ids, labels=ids).loss.backward()
    torch.testing.assert_close(model.model.global_transformer.layers[0].self_attn.q_proj.weight.grad, expected)


def test_save_and_load_with_auto_classes(model, tokenizer, tmp_path):
    ids = torch.tensor([tokenizer(segments=["hello", np.arange(10) % 50])["input_ids"]])
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is LSTForCausalLM
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(base) is LSTModel
    torch.testing.assert_close(base(ids).last_hidden_state, model.model(ids).last_hidden_state, atol=0, rtol=0)


def test_sequence_classification_pools_over_real_tokens(config, tokenizer, tmp_path):
    torch.manual_seed(0)
    classifier = LSTForSequenceClassification(LSTConfig(**{**config.to_dict(), "num_labels": 3})).eval()
    batch = tokenizer(segments=[["a short one"], ["a much longer sentence", np.arange(8)]], padding=True,
                      padding_side="left", return_tensors="pt")
    outputs = classifier(**{k: batch[k] for k in ("input_ids", "attention_mask")}, labels=torch.tensor([0, 2]))
    assert outputs.logits.shape == (2, 3) and outputs.loss.ndim == 0
    alone = classifier(torch.tensor([tokenizer(segments=[["a short one"]])["input_ids"][0]])).logits
    torch.testing.assert_close(outputs.logits[0], alone[0], atol=1e-5, rtol=1e-5)
    classifier.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(loaded) is LSTForSequenceClassification


def test_input_embeddings_are_the_encoders_for_every_head(model, config):
    assert model.get_input_embeddings() is model.model.encoder.embed_tokens
    assert model.model.get_input_embeddings() is model.model.encoder.embed_tokens
    classifier = LSTForSequenceClassification(config)
    assert classifier.get_input_embeddings() is classifier.model.encoder.embed_tokens
