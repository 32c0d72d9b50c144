"""PELM under a tiny external LM trained here on the built-in sample text."""

from __future__ import annotations

from pathlib import Path

import evaluate
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from tokenization import train_text_sentencepiece

PELM = Path(__file__).resolve().parent.parent / "evaluation" / "metrics" / "pelm"


@pytest.fixture(scope="module")
def external_lm(sample_verses, tmp_path_factory) -> str:
    """A 2-layer Llama trained for 150 steps on KJV verses, saved with its tokenizer."""
    text_model = train_text_sentencepiece(sample_verses, vocab_size=500)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=text_model.build_tokenizer(), bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    tokenizer.add_bos_token = True
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, pad_token_id=0, bos_token_id=1, eos_token_id=2))
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


def test_real_continuations_score_lower_than_scrambled_ones(external_lm, sample_verses):
    pelm = evaluate.load(str(PELM))
    contexts, continuations = [], []
    for verse in sample_verses[:24]:
        words = verse.split()
        contexts.append(" ".join(words[: len(words) // 2]))
        continuations.append(" ".join(words[len(words) // 2 :]))
    scrambled = [" ".join(sorted(c.split(), key=lambda w: (len(w), w[::-1]))) for c in continuations]
    result = pelm.compute(predictions=scrambled, references=continuations, contexts=contexts, model_id=external_lm)
    assert result["reference_perplexity"] < 0.7 * result["perplexity"]
    same = pelm.compute(predictions=continuations, references=continuations, contexts=contexts, model_id=external_lm)
    assert same["perplexity"] == pytest.approx(same["reference_perplexity"])
    assert same["num_scored"] == 24 and same["num_empty"] == 0


def test_repetition_shows_in_auto_bleu_and_distinct_n(external_lm):
    pelm = evaluate.load(str(PELM))
    result = pelm.compute(
        predictions=["the lord the lord the lord", "and he said unto them", ""],
        references=["and god saw the light", "that it was good", "and the evening"],
        contexts=["in the beginning", "and god said", "let there be"],
        model_id=external_lm,
    )
    # "the lord" x3 + "lord the" x2: 5 bigrams, all repeated -> 1.0; the second has none -> 0.0.
    assert result["auto_bleu"] == pytest.approx(0.5)
    # Unigrams: {the, lord} + 5 distinct of 5 = 7 distinct of 11.
    assert result["distinct_1"] == pytest.approx(7 / 11)
    assert (result["num_empty"], result["num_scored"]) == (1, 2)


def test_missing_external_lm_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Offline, pass a local directory"):
        evaluate.load(str(PELM)).compute(predictions=["a"], references=["b"], contexts=["c"],
                                         model_id=str(tmp_path / "nothing-here"))
