"""Shared fixtures: small joint tokenizers trained on the built-in sample text (well under a second each)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lst_speech.tokenization import SpeechUnitTextTokenizer, train_text_sentencepiece
from lst_speech.tokenization.corpora.sample_text import kjv_verses

NUM_UNITS = 50


@pytest.fixture(scope="session")
def sample_verses() -> list[str]:
    return list(kjv_verses(3000))


@pytest.fixture(scope="session")
def tokenizer(sample_verses) -> SpeechUnitTextTokenizer:
    """LST mode: raw units, no deduplication, a unigram text model."""
    return SpeechUnitTextTokenizer.train(sample_verses, vocab_size=800, model_type="unigram", num_units=NUM_UNITS)


@pytest.fixture(scope="session")
def unit_sequences() -> list[np.ndarray]:
    """Unit sequences with repeated structure (a few 'words' of units, with repeats), for unit pieces."""
    rng = np.random.default_rng(0)
    words = [rng.integers(0, NUM_UNITS, size=rng.integers(2, 6)) for _ in range(40)]
    sequences = []
    for _ in range(300):
        chosen = [np.repeat(w, rng.integers(1, 3, size=w.size)) for w in rng.choice(len(words), 12)
                  for w in [words[w]]]
        sequences.append(np.concatenate(chosen))
    return sequences


@pytest.fixture(scope="session")
def piece_tokenizer(sample_verses, unit_sequences) -> SpeechUnitTextTokenizer:
    """SUTLM mode: deduplicated units, BPE pieces over units, a BPE text model."""
    return SpeechUnitTextTokenizer.train(
        sample_verses,
        vocab_size=800,
        model_type="bpe",
        num_units=NUM_UNITS,
        unit_sequences=unit_sequences,
        unit_vocab_size=200,
        deduplicate_units=True,
    )


def random_text_lm(text_model, hidden_size: int, num_layers: int):
    """A randomly initialised Llama over a SentencePiece text model, and its fast tokenizer (BOS added): an
    external, text-only LM as PELM and the baselines load one."""
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=text_model.build_tokenizer(), bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    tokenizer.add_bos_token = True
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                                         intermediate_size=2 * hidden_size, num_hidden_layers=num_layers,
                                         num_attention_heads=hidden_size // 16, pad_token_id=0, bos_token_id=1,
                                         eos_token_id=2))
    return model, tokenizer


@pytest.fixture(scope="session")
def external_lm(sample_verses, tmp_path_factory) -> str:
    """A 2-layer Llama trained for 150 steps on KJV verses, saved with its tokenizer."""
    model, tokenizer = random_text_lm(train_text_sentencepiece(sample_verses, vocab_size=500), 64, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = tokenizer(sample_verses[:512], padding=True, truncation=True, max_length=32, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    for step in range(150):
        rows = slice((step * 32) % 512, (step * 32) % 512 + 32)
        loss = model(input_ids=batch["input_ids"][rows], attention_mask=batch["attention_mask"][rows],
                     labels=labels[rows]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    directory = tmp_path_factory.mktemp("external_lm")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def bases(tokenizer, tmp_path_factory):
    """A tiny LST (`bases/lst`) and the Llama baseline of its global shape (`bases/llama`), with the tokenizer."""
    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

    root = tmp_path_factory.mktemp("bases")
    torch.manual_seed(0)
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny")
    LSTForCausalLM(config).save_pretrained(root / "lst")
    LlamaForCausalLM(config.global_llama_config()).save_pretrained(root / "llama")
    for name in ("lst", "llama"):
        tokenizer.save_pretrained(root / name)
    return root


def save_packed_lst_data(tokenizer, verses: list[str], directory, paired: int, text: slice) -> None:
    """LST-recipe sequences of 48 global positions, saved with `save_to_disk`: the first `paired` verses as
    stand-in speech (random units in word spans with pauses between words) interleaved with their text, plus
    the `text` verses as text only."""
    import datasets

    from lst_speech.training.data.recipes import RECIPES, build_pretraining_data

    rng = np.random.default_rng(0)
    rows = []
    for verse in verses[:paired]:
        words = verse.split()
        lengths, gaps = rng.integers(2, 6, len(words)), rng.integers(0, 3, len(words) + 1)
        starts = np.cumsum(np.r_[gaps[0], (lengths + gaps[1:])[:-1]])
        spans = np.stack([starts, starts + lengths], 1)
        rows.append({"text": verse, "words": words, "word_spans": spans.tolist(),
                     "units": rng.integers(0, NUM_UNITS, int(spans[-1, 1] + gaps[-1])).tolist()})
    packed, _ = build_pretraining_data(RECIPES["lst"].replace(sequence_length=48), tokenizer,
                                       paired=datasets.Dataset.from_list(rows),
                                       text=datasets.Dataset.from_dict({"text": verses[text]}))
    packed.save_to_disk(str(directory))
