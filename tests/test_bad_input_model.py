"""Bad input to the models (forward, labels, generation, modality control): each gets an error that names the
argument and the problem, raised before any layer runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM, LSTForSequenceClassification, LSTModel
from lst_speech.modeling_lst.cache_lst import LSTCache
from lst_speech.modeling_lst.modality import ModalityLogitsProcessor, generate_in_modality


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()


@pytest.fixture(scope="module")
def ids(tokenizer):
    return torch.tensor([tokenizer(segments=["In the beginning", np.arange(9) % 50])["input_ids"]])


def vocabulary(model) -> int:
    return model.config.vocab_size


BAD_FORWARDS = {
    "id at vocab_size": (lambda ids, v: {"input_ids": torch.tensor([[1, v]])}, ValueError,
                         r"input_ids holds id \d+ at \(row, position\) \(0, 1\), outside the model's vocabulary"),
    "id far above": (lambda ids, v: {"input_ids": torch.tensor([[1, 2, v + 500]])}, ValueError,
                     r"outside the model's vocabulary \[0, \d+\).*from_tokenizer"),
    "negative id": (lambda ids, v: {"input_ids": torch.tensor([[1, -1]])}, ValueError, r"holds id -1"),
    "zero-length sequence": (lambda ids, v: {"input_ids": torch.zeros((1, 0), dtype=torch.long)}, ValueError,
                             r"input_ids is empty \(shape \(1, 0\)\)"),
    "empty batch": (lambda ids, v: {"input_ids": torch.zeros((0, 4), dtype=torch.long)}, ValueError,
                    r"input_ids is empty"),
    "1-D input_ids": (lambda ids, v: {"input_ids": ids[0]}, ValueError, r"shape \(batch, tokens\).*ids\[None\]"),
    "3-D input_ids": (lambda ids, v: {"input_ids": ids[None]}, ValueError, r"must have shape \(batch, tokens\)"),
    "float ids": (lambda ids, v: {"input_ids": ids.float()}, TypeError, r"integer ids, got dtype torch.float32"),
    "bool ids": (lambda ids, v: {"input_ids": ids > 3}, TypeError, r"integer ids, got dtype torch.bool"),
    "a list, not a tensor": (lambda ids, v: {"input_ids": ids[0].tolist()}, TypeError, r"must be a torch tensor"),
    "no input_ids": (lambda ids, v: {"input_ids": None}, ValueError, r"LST needs input_ids"),
    "attention_mask too short": (lambda ids, v: {"input_ids": ids, "attention_mask": torch.ones(1, 3)}, ValueError,
                                 r"attention_mask has shape \(1, 3\) but input_ids \(1, \d+\) needs"),
    "attention_mask of another batch": (lambda ids, v: {"input_ids": ids, "attention_mask": torch.ones(2, ids.shape[1])},
                                        ValueError, r"attention_mask has shape \(2, "),
    "patch_starts of the wrong shape": (lambda ids, v: {"input_ids": ids,
                                                        "patch_starts": torch.ones(1, 3, dtype=torch.bool)},
                                        ValueError, r"patch_starts has shape \(1, 3\)"),
    "labels of the wrong shape": (lambda ids, v: {"input_ids": ids, "labels": ids[:, :3]}, ValueError,
                                  r"labels has shape \(1, 3\) but input_ids"),
    "labels all ignored": (lambda ids, v: {"input_ids": ids, "labels": torch.full_like(ids, -100)}, ValueError,
                           r"Every label after the first position is -100.*nan"),
    "label at vocab_size": (lambda ids, v: {"input_ids": ids, "labels": torch.full_like(ids, v)}, ValueError,
                            r"labels hold \d+, which is neither an id in \[0, \d+\) nor -100"),
    "negative label other than -100": (lambda ids, v: {"input_ids": ids, "labels": torch.full_like(ids, -5)},
                                       ValueError, r"labels hold -5"),
    "float labels": (lambda ids, v: {"input_ids": ids, "labels": ids.float()}, TypeError, r"labels must hold integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_FORWARDS))
def test_bad_forward_inputs_are_named(model, ids, case):
    make, error, words = BAD_FORWARDS[case]
    with pytest.raises(error, match=words):
        model(**make(ids, vocabulary(model)))


def test_a_config_smaller_than_its_tokenizer_is_named_at_the_first_speech_id(tokenizer, ids):
    small = LSTConfig.from_tokenizer(tokenizer, preset="tiny", vocab_size=tokenizer.speech_token_offset + 2,
                                     speech_token_range=[tokenizer.speech_token_offset, tokenizer.speech_token_offset + 2])
    with pytest.raises(ValueError, match=r"outside the model's vocabulary.*LSTConfig.from_tokenizer"):
        LSTModel(small)(ids)


def test_all_ignored_labels_with_num_items_in_batch_give_zero_not_nan(model, ids):
    loss = model(ids, labels=torch.full_like(ids, -100), num_items_in_batch=torch.tensor(7)).loss
    assert loss.detach().item() == 0.0


def test_the_last_position_alone_labelled_is_still_no_target(model, ids):
    labels = torch.full_like(ids, -100)
    labels[0, 0] = 5  # the first label is never a target (it is shifted away)
    with pytest.raises(ValueError, match="Every label after the first position is -100"):
        model(ids, labels=labels)


def test_a_cached_step_with_a_mask_not_covering_the_cache_is_named(model, ids):
    cache = model(ids, use_cache=True).cache
    with pytest.raises(ValueError, match=rf"attention_mask has shape \(1, 1\).*needs \(1, {ids.shape[1] + 1}\)"):
        model(ids[:, -1:], cache=cache, attention_mask=torch.ones(1, 1))
    with pytest.raises(ValueError, match="The cache holds 1 rows but input_ids has 2"):
        model(ids[:, -1:].repeat(2, 1), cache=cache)


def test_an_empty_cache_is_a_full_forward(model, ids):
    full = model(ids).logits
    torch.testing.assert_close(model(ids, cache=LSTCache()).logits, full)


@pytest.mark.parametrize("labels, words", [
    (torch.tensor([0, 3]), r"labels hold 3, outside the 3 classes"),
    (torch.tensor([[0], [1]]), r"one class index per row, shape \(2,\)"),
    (torch.tensor([0, 1, 2]), r"one class index per row"),
    (torch.tensor([-1, 0]), r"labels hold -1"),
])
def test_bad_class_labels_are_named(tokenizer, ids, labels, words):
    classifier = LSTForSequenceClassification(LSTConfig.from_tokenizer(tokenizer, preset="tiny", num_labels=3))
    with pytest.raises(ValueError, match=words):
        classifier(ids.repeat(2, 1), labels=labels)


@pytest.mark.parametrize("prompt, words", [
    (torch.zeros((1, 0), dtype=torch.long), r"input_ids is empty"),
    (torch.tensor([[1, 10**6]]), r"holds id 1000000"),
])
def test_bad_generation_prompts_are_named(model, prompt, words):
    with pytest.raises(ValueError, match=words):
        model.generate(prompt, max_new_tokens=2, do_sample=False, pad_token_id=0)


@pytest.mark.parametrize("prompts", [[], (), "In the beginning"])
def test_generate_in_modality_needs_prompts(model, tokenizer, prompts):
    with pytest.raises(ValueError, match="prompts must be a non-empty list of prompts"):
        generate_in_modality(model, tokenizer, prompts, "text", max_new_tokens=2)


def test_generate_in_modality_names_a_bad_output_modality_and_a_bad_segment(model, tokenizer):
    with pytest.raises(ValueError, match="output_modality must be 'text' or 'speech', got 'audio'"):
        generate_in_modality(model, tokenizer, [["In the beginning"]], "audio")
    with pytest.raises(ValueError, match="segment 0 is None"):
        generate_in_modality(model, tokenizer, [[None]], "text", max_new_tokens=2)


def test_modality_processor_for_another_vocabulary_is_named(tokenizer):
    processor = ModalityLogitsProcessor.from_tokenizer(tokenizer, "text")
    with pytest.raises(ValueError, match=r"scores 10 ids but the modality mask covers"):
        processor(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 10))
    with pytest.raises(ValueError, match="modality must be one of"):
        ModalityLogitsProcessor.from_tokenizer(tokenizer, "audio")


@pytest.mark.parametrize("size, words", [(10, "Cannot resize the vocabulary to 10"),
                                          (None, None)])
def test_resizing_into_the_id_ranges_is_refused(tokenizer, size, words):
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
    if words is None:
        with pytest.raises(ValueError, match="New speech units must follow the current ones"):
            model.resize_token_embeddings(len(tokenizer) + 4)
            model.resize_token_embeddings(len(tokenizer) + 8, new_tokens_are_speech=True)
        return
    with pytest.raises(ValueError, match=words):
        model.resize_token_embeddings(size)
