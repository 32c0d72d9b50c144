"""Building pretraining data from streams: `lst data --streaming` writes Parquet shards with the realised
mixture counted on the way, and no builder reads a whole streamed source before giving its first rows."""

from __future__ import annotations

import itertools
import json

import datasets
import numpy as np
import pytest

from lst_speech.training.cli.data import _text_source
from lst_speech.training.cli.main import main
from lst_speech.training.data.dataset_files import open_dataset
from lst_speech.training.data.mixing import token_counts
from lst_speech.training.data.recipes import RECIPES, build_pretraining_data, pack_with_recipe

PAIRED_FEATURES = datasets.Features({"text": datasets.Value("string"), "words": datasets.Sequence(datasets.Value("string")),
                                     "units": datasets.Sequence(datasets.Value("int32")),
                                     "word_spans": datasets.Sequence(datasets.Sequence(datasets.Value("int32")))})


def paired_rows(verses, seed=0):
    rng = np.random.default_rng(seed)
    for verse in verses:
        words = verse.split()
        ends = np.cumsum(rng.integers(2, 5, len(words)))
        yield {"text": verse, "words": words, "units": rng.integers(0, 50, int(ends[-1])).tolist(),
               "word_spans": np.stack([np.r_[0, ends[:-1]], ends], 1).tolist()}


@pytest.mark.slow
def write_parts(rows: list[dict], folder, parts: int) -> None:
    """`rows` as `parts` Parquet files of equal size in `folder`: a paired source as the Hub ships one."""
    folder.mkdir()
    size = len(rows) // parts
    for part in range(parts):
        datasets.Dataset.from_list(rows[part * size:(part + 1) * size], features=PAIRED_FEATURES).to_parquet(
            folder / f"part-{part}.parquet")


def test_lst_data_streaming_writes_shards_that_train_and_load(tokenizer, tmp_path, sample_verses):
    shards = tmp_path / "corpus"
    write_parts(list(paired_rows(sample_verses[:90])), shards, 3)  # as `lst units extract` writes them
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "text.txt").write_text("\n".join(sample_verses[100:400]) + "\n\n")
    main(["data", "--recipe", "lst", "--tokenizer", str(tmp_path / "tokenizer"), "--paired", str(shards),
          "--text", str(tmp_path / "text.txt"), "--sequence_length", "64", "--streaming", "--rows_per_shard", "20",
          "--output", str(tmp_path / "packed")])

    index = json.loads((tmp_path / "packed" / "index.json").read_text())
    assert all(shard["rows"] == 20 for shard in index["shards"][:-1]) and 1 <= index["shards"][-1]["rows"] <= 20
    written = list(datasets.load_dataset(str(tmp_path / "packed"), split="train"))  # through the card's configs
    assert len(written) == index["rows"] > 20
    # What was written is what the same recipe gives on the same streams.
    recipe = RECIPES["lst"].replace(sequence_length=64)
    mixed, _ = build_pretraining_data(recipe, tokenizer, paired=open_dataset(str(shards), streaming=True),
                                      text=_text_source(tmp_path / "text.txt", streaming=True), pack_sequences=False)
    rebuilt = [np.asarray(row["input_ids"]).tolist() for row in pack_with_recipe(mixed, recipe)]
    assert rebuilt == [row["input_ids"] for row in written]
    # The mixture counted while writing equals the tokens in the shards (packing moves no token).
    speech, text_tokens = token_counts(written, tokenizer)
    card = (tmp_path / "packed" / "README.md").read_text()
    assert f"**speech:text tokens**: {speech.sum() / text_tokens.sum():.3f}" in card
    assert f"**packed sequences**: {len(written)}" in card and "data-*.parquet" in card


@pytest.mark.slow
def test_parts_of_the_sources_build_in_parallel_into_folders_read_together(tokenizer, tmp_path, sample_verses):
    shards = tmp_path / "corpus"
    write_parts(list(paired_rows(sample_verses[:80])), shards, 4)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "text.txt").write_text("\n".join(sample_verses[100:400]))
    base = ["data", "--recipe", "lst", "--tokenizer", str(tmp_path / "tokenizer"), "--paired", str(shards), "--text",
            str(tmp_path / "text.txt"), "--sequence_length", "64", "--streaming"]
    for part in ("0/2", "1/2"):  # one --output: each part writes its own folder in it
        main([*base, "--part", part, "--output", str(tmp_path / "packed")])
    names = ("part-00000-of-00002", "part-00001-of-00002")
    parts = [list(open_dataset(str(tmp_path / "packed" / name))["input_ids"]) for name in names]
    assert parts[0] and parts[1] and not {tuple(r) for r in parts[0]} & {tuple(r) for r in parts[1]}
    together = open_dataset(str(tmp_path / "packed"), streaming=True)  # the parent folder reads both parts
    assert together.n_shards == 2 and sum(1 for _ in together) == len(parts[0]) + len(parts[1])
    assert "**part**: 1 of 2 (0-based)" in (tmp_path / "packed" / names[1] / "README.md").read_text()


def guarded(rows: list[dict], features):
    """A stream that raises if anything reads it to the end: what a builder that materialised it would do."""
    def generate():  # a closure: a list in gen_kwargs would become one shard per row
        yield from rows
        raise RuntimeError("the whole streamed source was read")
    return datasets.IterableDataset.from_generator(generate, features=features)


def test_builders_give_rows_without_reading_a_whole_stream(tokenizer, sample_verses):
    paired = guarded(list(paired_rows(sample_verses[:1500])), PAIRED_FEATURES)
    text = guarded([{"text": verse} for verse in sample_verses[1500:3000]],
                   datasets.Features({"text": datasets.Value("string")}))
    with pytest.raises(RuntimeError, match="whole streamed source"):
        list(text)  # the guard works
    for recipe in (RECIPES["lst"].replace(sequence_length=64),
                   RECIPES["lst"].replace(sequence_length=64, pack_unit="tokens")):
        mixed, _ = build_pretraining_data(recipe, tokenizer, paired=paired, text=text, pack_sequences=False)
        packed = pack_with_recipe(mixed, recipe)
        first = list(itertools.islice(packed, 3))
        assert len(first) == 3 and all(len(row["input_ids"]) > 0 for row in first)


def test_streaming_bad_input_is_named(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("LST_DEBUG", "1")  # the error itself, not the one-line exit
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    base = ["data", "--recipe", "lst", "--tokenizer", str(tmp_path / "tokenizer"), "--streaming",
            "--output", str(tmp_path / "o")]
    with pytest.raises(ValueError, match="blank.txt holds no text"):
        main([*base, "--text", str(tmp_path / "blank.txt")])
    with pytest.raises(ValueError, match="neither a dataset saved with save_to_disk nor a folder of Parquet shards"):
        main([*base, "--paired", str(tmp_path / "notes")])
    with pytest.raises(ValueError, match="--part '2/2': write I/N with 0 <= I < N"):
        main([*base, "--text", str(tmp_path / "blank.txt"), "--part", "2/2"])
    with pytest.raises(ValueError, match="--rows_per_shard must be at least 1"):
        main([*base, "--text", str(tmp_path / "blank.txt"), "--rows_per_shard", "0"])
    assert not (tmp_path / "o").exists()
