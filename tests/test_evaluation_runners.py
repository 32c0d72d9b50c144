"""Continuation scoring, CRA and multiple choice with LST and the Llama baseline."""

from __future__ import annotations

from collections import Counter, defaultdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from lst_speech.evaluation.context_retrieval import (
    context_retrieval_accuracy,
    context_retrieval_matrix,
    split_paired_utterance,
)
from lst_speech.evaluation.likelihood import continuation_log_likelihoods
from lst_speech.evaluation.multiple_choice import MultipleChoiceItem, multiple_choice_accuracy
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

WORDS = ["in", "the", "beginning", "god", "created", "heaven", "and", "earth", "light", "darkness", "waters", "day"]


def utterance(rng, index, words=None) -> dict:
    """A paired utterance in the front end's schema: words, units and word spans in unit frames."""
    words = list(words) if words is not None else list(rng.choice(WORDS, size=int(rng.integers(4, 7))))
    lengths = rng.integers(2, 5, size=len(words))
    ends = np.cumsum(lengths)
    return {"id": str(index), "text": " ".join(words), "words": words,
            "units": rng.integers(0, 50, size=int(ends[-1])), "word_spans": np.stack([ends - lengths, ends], 1)}


def trained_on(sequences, tokenizer, steps=300):
    """A tiny LST that has memorised `sequences` (lists of segments)."""
    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
    batch = tokenizer(segments=sequences, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_scores_cover_the_continuation_tokens_only(tokenizer):
    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    context, continuation = ["In the beginning"], [np.array([3, 4, 5])]
    scores = continuation_log_likelihoods(model, tokenizer, [(context, continuation)])
    ids = torch.tensor([tokenizer(segments=context + continuation)["input_ids"]])
    with torch.no_grad():
        log_probs = model(ids).logits.log_softmax(-1)[0]
    expected = sum(log_probs[t - 1, ids[0, t]] for t in range(ids.shape[1] - 3, ids.shape[1]))  # not [Speech]
    assert scores.log_likelihood[0] == pytest.approx(float(expected), abs=1e-4)
    assert (scores.num_tokens[0], scores.num_units[0]) == (3, 3)
    assert scores.normalized("per_token")[0] == pytest.approx(float(expected) / 3, abs=1e-4)


def test_split_at_a_word_boundary_gives_matching_text_and_units():
    row = {"words": ["a", "b", "c", "d"], "word_spans": [[0, 2], [2, 5], [5, 6], [6, 9]], "units": np.arange(9)}
    split = split_paired_utterance(row)
    assert split["t"] == ("a b", "c d")
    assert split["u"][0].tolist() == [0, 1, 2, 3, 4] and split["u"][1].tolist() == [5, 6, 7, 8]
    with pytest.raises(ValueError, match="needs at least two words"):
        split_paired_utterance({"words": ["a"], "word_spans": [[0, 1]], "units": np.arange(1)})


class PrefixMemoriser(torch.nn.Module):
    """A causal LM that has memorised `sequences` of ids exactly: after a prefix it has seen, the tokens that
    followed it there take almost all the probability; after any other prefix, every token is equally likely."""

    def __init__(self, sequences, vocab_size: int):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # where `device` comes from
        self.vocab_size = vocab_size
        self.following = defaultdict(Counter)
        for ids in sequences:
            for end in range(1, len(ids)):
                self.following[tuple(ids[:end])][ids[end]] += 1

    @property
    def device(self):
        return self.anchor.device

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        for row, ids in enumerate(input_ids.tolist()):
            for position in range(len(ids)):
                for token, count in self.following.get(tuple(ids[:position + 1]), {}).items():
                    logits[row, position, token] = 10.0 + np.log(count)
        return SimpleNamespace(logits=logits)


def test_each_cra_direction_reads_its_own_prompt_and_continuation_modalities(tokenizer, sample_verses):
    rng = np.random.default_rng(0)
    rows = [utterance(rng, i, sample_verses[i * 7].lower().split()[:6]) for i in range(4)]
    splits = [split_paired_utterance(row) for row in rows]
    # Per direction, the model memorised prompt i followed by continuation pairing[i] (in the direction's
    # modalities), so continuation j retrieves context pairing^-1(j): CRA is the share of fixed points.
    pairings = {"u2u": [0, 1, 2, 3], "u2t": [1, 0, 2, 3], "t2u": [1, 2, 0, 3], "t2t": [1, 2, 3, 0]}
    memorised = [tokenizer(segments=[splits[i][d[0]][0], splits[j][d[2]][1]])["input_ids"]
                 for d, pairing in pairings.items() for i, j in enumerate(pairing)]
    model = PrefixMemoriser(memorised, len(tokenizer))
    for direction, pairing in pairings.items():
        retrieved = context_retrieval_matrix(model, tokenizer, rows, direction, batch_size=3).argmax(axis=0)
        assert retrieved.tolist() == np.argsort(pairing).tolist(), direction
    results = context_retrieval_accuracy(model, tokenizer, rows, batch_size=3)
    assert {d: r["cra"] for d, r in results.items()} == {"u2u": 1.0, "u2t": 0.5, "t2u": 0.25, "t2t": 0.0}


@pytest.mark.slow
def test_cra_is_perfect_on_memorised_pairs_and_near_chance_untrained(tokenizer, sample_verses):
    rng = np.random.default_rng(0)
    # Distinct verses, so that no two utterances share a prompt or a continuation.
    rows = [utterance(rng, i, sample_verses[i * 7].lower().split()[:6]) for i in range(6)]
    memorised = trained_on([[r["text"]] for r in rows], tokenizer)
    assert context_retrieval_accuracy(memorised, tokenizer, rows, directions=["t2t"])["t2t"]["cra"] == 1.0

    rows = [utterance(rng, i) for i in range(30)]
    torch.manual_seed(1)
    untrained = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    results = context_retrieval_accuracy(untrained, tokenizer, rows)
    assert set(results) == {"u2u", "u2t", "t2u", "t2t"}
    for result in results.values():
        assert result["chance"] == pytest.approx(1 / 30) and result["cra"] <= 5 / 30


@pytest.mark.slow
def test_multiple_choice_finds_memorised_endings_in_every_direction(tokenizer):
    rng = np.random.default_rng(3)
    stories = [(" ".join(rng.choice(WORDS, 4)), " ".join(rng.choice(WORDS, 3))) for _ in range(4)]
    speech = {text: rng.integers(0, 50, size=8) for pair in stories for text in pair}
    # Memorise each story in all four modality combinations.
    sequences = [[a if m1 == "t" else speech[a], b if m2 == "t" else speech[b]]
                 for a, b in stories for m1 in "tu" for m2 in "tu"]
    model = trained_on(sequences, tokenizer, steps=400)
    for m1 in "tu":
        for m2 in "tu":
            items = []
            for index, (context, ending) in enumerate(stories):
                wrong = stories[(index + 1) % len(stories)][1]
                endings = [[wrong if m2 == "t" else speech[wrong]], [ending if m2 == "t" else speech[ending]]]
                items.append(MultipleChoiceItem([context if m1 == "t" else speech[context]], endings, label=1))
            result = multiple_choice_accuracy(model, tokenizer, items)
            assert result["accuracy_sum"] == 1.0, (m1, m2, result)
            assert result["num_items"] == 4 and len(result["choices_per_token"]) == 4


def test_runners_work_with_the_llama_baseline(tokenizer):
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny").global_llama_config()).eval()
    item = MultipleChoiceItem([], [["light"], [np.array([1, 2])]], label=0)  # sWUGGY-style: no context
    result = multiple_choice_accuracy(llama, tokenizer, [item])
    assert set(result) >= {"accuracy_sum", "accuracy_per_token", "accuracy_per_unit"}


def test_context_gain_ranks_by_what_the_context_adds(tokenizer):
    from lst_speech.evaluation.likelihood import continuation_log_likelihoods

    torch.manual_seed(1)
    llama = LlamaForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny").global_llama_config()).eval()
    items = [MultipleChoiceItem(["in the beginning"], [["god created"], ["the waters"], [np.array([3, 4, 5])]], 0),
             MultipleChoiceItem([np.array([7, 8, 9, 10])], [["and darkness"], ["light"]], 1)]
    result = multiple_choice_accuracy(llama, tokenizer, items, context_gain=True)
    for item, choice in zip(items, result["choices_context_gain"]):
        conditional = continuation_log_likelihoods(llama, tokenizer, [(item.context, e) for e in item.endings])
        alone = continuation_log_likelihoods(llama, tokenizer, [([], e) for e in item.endings])
        assert choice == int(np.argmax(conditional.log_likelihood - alone.log_likelihood))


def test_a_tie_is_shared_among_the_tied_endings_not_given_to_the_first(monkeypatch):
    """Rigged scores: a clear win, a two-way tie (right ending first, then second), a three-way tie, and a tie the
    right ending is not in. Argmax would give both two-way ties to ending 0; credit is 1/k for a k-way tie."""
    from lst_speech.evaluation import multiple_choice
    from lst_speech.evaluation.likelihood import ContinuationScores

    scores = [-1.0, -2.0, -3.0, -3.0, -3.0, -3.0, -2.0, -2.0, -2.0, -1.0, -1.0, -5.0]

    def scorer(model, tokenizer, pairs, batch_size, progress, use_prompt_cache):
        assert len(pairs) == len(scores)
        return ContinuationScores(np.array(scores), np.ones(len(scores)), np.ones(len(scores)))

    monkeypatch.setattr(multiple_choice, "continuation_log_likelihoods", scorer)
    items = [MultipleChoiceItem([], [["a"], ["b"]], 0), MultipleChoiceItem([], [["a"], ["b"]], 0),
             MultipleChoiceItem([], [["a"], ["b"]], 1), MultipleChoiceItem([], [["a"], ["b"], ["c"]], 2),
             MultipleChoiceItem([], [["a"], ["b"], ["c"]], 2)]
    result = multiple_choice_accuracy(None, None, items)
    assert result["correct_sum"] == pytest.approx([1.0, 0.5, 0.5, 1 / 3, 0.0])
    assert result["choices_sum"] == [0, 0, 0, 0, 0]  # argmax, for callers that want one ending
    accuracy, (low, high) = result["accuracy_sum"], result["accuracy_sum_ci95"]
    assert accuracy == pytest.approx((1 + 0.5 + 0.5 + 1 / 3) / 5)
    assert 0.0 <= low <= accuracy <= high <= 1.0
    # An undefined score is never the highest: the defined ending wins alone; all undefined is an all-way tie.
    assert (multiple_choice.tie_credit(np.array([np.nan, -4.0]), 1), multiple_choice.tie_credit(
        np.array([np.nan, -4.0]), 0), multiple_choice.tie_credit(np.array([np.nan, np.nan]), 0)) == (1.0, 0.0, 0.5)


def test_accuracy_without_ties_keeps_the_wilson_interval(monkeypatch):
    from lst_speech.evaluation import multiple_choice
    from lst_speech.evaluation.likelihood import ContinuationScores
    from lst_speech.evaluation.uncertainty import proportion_interval

    def scorer(model, tokenizer, pairs, batch_size, progress, use_prompt_cache):
        values = np.array([-1.0, -2.0, -1.0, -2.0, -2.0, -1.0])
        return ContinuationScores(values, np.ones(6), np.ones(6))

    monkeypatch.setattr(multiple_choice, "continuation_log_likelihoods", scorer)
    result = multiple_choice_accuracy(None, None, [MultipleChoiceItem([], [["a"], ["b"]], 0) for _ in range(3)])
    assert result["correct_per_token"] == [1.0, 1.0, 0.0]
    assert result["accuracy_per_token_ci95"] == list(proportion_interval(2, 3))


def test_bad_item_label():
    with pytest.raises(ValueError, match="label 2 does not index one of 2 endings"):
        MultipleChoiceItem(["a"], [["b"], ["c"]], label=2, id="x")
