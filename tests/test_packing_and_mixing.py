"""Mixtures hit their targets (by examples and by tokens) over 10,000 examples; packing loses nothing."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from lst_speech.modeling_lst.patching import static_patch_starts
from lst_speech.training.data.mixing import mix, realised_ratios, token_ratio_weights
from lst_speech.training.data.packing import pack, static_patch_start_mask
from lst_speech.training.data.pipeline import build_format
from lst_speech.training.data.recipes import RECIPES, build_pretraining_data

NUM_UNITS = 50


@pytest.fixture(scope="module")
def sources(tokenizer, sample_verses):
    rng = np.random.default_rng(0)
    speech = datasets.Dataset.from_dict({"units": [rng.integers(0, NUM_UNITS, rng.integers(20, 80)).tolist()
                                                   for _ in range(4500)]})
    paired_rows = []
    for verse in sample_verses[:4500]:
        words = verse.split()[:8]
        lengths, gaps = rng.integers(2, 6, len(words)), rng.integers(0, 3, len(words) + 1)
        starts = np.cumsum(np.r_[gaps[0], (lengths + gaps[1:])[:-1]])
        spans = np.stack([starts, starts + lengths], 1)
        paired_rows.append({"text": " ".join(words), "words": words, "word_spans": spans.tolist(),
                            "units": rng.integers(0, NUM_UNITS, spans[-1, 1] + gaps[-1]).tolist()})
    paired = datasets.Dataset.from_list(paired_rows)
    text = datasets.Dataset.from_dict({"text": sample_verses[:3000] * 2})
    return {"speech": speech, "paired": paired, "text": text}


@pytest.mark.slow
def test_source_shares_within_2_percent_over_10000_examples(tokenizer, sources):
    recipe = RECIPES["sutlm"].replace(deduplicate_units=False, unit_pieces=False)
    mixed, weights = build_pretraining_data(recipe, tokenizer, **sources, pack_sequences=False)
    report = realised_ratios(mixed, tokenizer, limit=10_000)
    assert report["examples"] == 10_000
    shares = report["source_shares"]
    assert abs(shares["speech"] - 1 / 3) < 0.02 and abs(shares["text"] - 1 / 3) < 0.02
    paired = sum(v for k, v in shares.items() if k.startswith("paired/"))
    assert abs(paired - 1 / 3) < 0.02 and abs(shares["paired/ast"] - 1 / 6) < 0.02
    assert set(report["format_shares"]) == {"ulm", "tlm", "cst_speech_text", "cst_text_speech", "ast"}


@pytest.mark.slow
def test_token_ratio_within_2_percent_over_10000_examples(tokenizer, sources):
    built = {name: build_format(sources[name], tokenizer, fmt) for name, fmt in
             (("speech", "ulm"), ("text", "tlm"), ("paired", "cst_speech_text"))}
    weights = token_ratio_weights(built, tokenizer, speech_per_text=0.5)
    assert weights["text"] > weights["speech"]
    report = realised_ratios(mix(built, weights, seed=1), tokenizer, limit=10_000)
    assert abs(report["speech_per_text"] / 0.5 - 1) < 0.02
    with pytest.raises(ValueError, match="out of reach of these sources"):
        token_ratio_weights({"text": built["text"]}, tokenizer, speech_per_text=0.5)


def unpacked(rows):
    return np.concatenate([np.asarray(r["input_ids"]) for r in rows])


def absolute_spans(rows, name, split_at=None):
    """All spans in stream positions; with `split_at`, spans crossing those positions are cut there."""
    offsets = np.cumsum([0] + [len(r["input_ids"]) for r in rows])
    spans = np.concatenate([np.asarray(r[name]).reshape(-1, 2) + o for r, o in zip(rows, offsets)])
    if split_at is None:
        return spans
    pieces = []
    for start, end in spans:
        cuts = [c for c in split_at if start < c < end]
        bounds = [start, *cuts, end]
        pieces += list(zip(bounds[:-1], bounds[1:]))
    return np.array(pieces).reshape(-1, 2)


@pytest.mark.parametrize(("unit", "length"), [("tokens", 64), ("patches", 40)])
def test_packing_loses_no_token_and_no_span(tokenizer, sources, unit, length):
    documents = build_format(sources["paired"].select(range(300)), tokenizer, "interleave")
    packed = pack(documents, length, unit=unit, patch_size=4, batch_size=100)
    rows = list(packed)
    np.testing.assert_array_equal(unpacked(rows), unpacked(list(documents)))
    row_starts = np.cumsum([0] + [len(r["input_ids"]) for r in rows])
    for name in ("word_spans", "silence_spans"):
        np.testing.assert_array_equal(absolute_spans(rows, name), absolute_spans(list(documents), name, row_starts))
    starts = np.concatenate([np.asarray(r["document_starts"], dtype=np.int64) + o for r, o in
                             zip(rows, np.cumsum([0] + [len(r["input_ids"]) for r in rows]))])
    assert len(starts) == len(documents) and (unpacked(rows)[starts] == tokenizer.bos_token_id).all()
    # Separators are never speech, so no patch (static or aligned) can straddle two documents.
    modality = np.concatenate([np.asarray(r["modality_mask"]) for r in rows])
    assert not modality[starts].any() and not modality[starts[1:] - 1].any()
    for row in rows[:-1]:
        modality = np.asarray(row["modality_mask"])
        cost = len(modality) if unit == "tokens" else static_patch_start_mask(modality, 4).sum()
        # every sequence is full except each map batch's last, which is kept rather than dropped
        assert cost <= length
    full = [r for r in rows if (len(r["input_ids"]) if unit == "tokens" else
                                static_patch_start_mask(np.asarray(r["modality_mask"]), 4).sum()) == length]
    assert len(full) >= len(rows) - 3


def test_numpy_static_patching_matches_the_model(tokenizer, sources):
    documents = build_format(sources["paired"].select(range(20)), tokenizer, "interleave")
    for row in documents:
        modality = np.asarray(row["modality_mask"])
        ours = static_patch_start_mask(modality, 4)
        model = static_patch_starts(torch.from_numpy(modality)[None].bool(), 4)[0].numpy()
        np.testing.assert_array_equal(ours, model)


def test_streaming_packing_and_sharding_match_the_in_memory_pipeline(tokenizer, sources):
    from lst_speech.training.data.pipeline import shard_for_process

    documents = build_format(sources["paired"].select(range(120)), tokenizer, "cst_text_speech")
    in_memory = [list(r) for r in pack(documents, 64, batch_size=40)["input_ids"]]
    streamed = pack(documents.to_iterable_dataset(num_shards=2), 64, batch_size=40)
    assert [np.asarray(r["input_ids"]).tolist() for r in streamed] == in_memory
    shards = [shard_for_process(documents, rank, 2) for rank in (0, 1)]
    assert len(shards[0]) + len(shards[1]) == len(documents)
    assert list(shards[0]["input_ids"]) + list(shards[1]["input_ids"]) == list(documents["input_ids"])
