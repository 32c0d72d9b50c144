"""Output-modality control with LST and with the Llama baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.modality import ModalityLogitsProcessor, generate_in_modality


@pytest.fixture(scope="module", params=["lst", "llama"])
def model(request, tokenizer):
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny")
    torch.manual_seed(0)
    return (LSTForCausalLM(config) if request.param == "lst" else LlamaForCausalLM(config.global_llama_config())).eval()


def test_processor_keeps_only_one_modality(tokenizer):
    scores = torch.zeros(2, len(tokenizer))
    speech = ModalityLogitsProcessor.from_tokenizer(tokenizer, "speech")(None, scores.clone())
    kept = torch.isfinite(speech[0]).nonzero().flatten().tolist()
    assert kept == [tokenizer.eos_token_id, *tokenizer.speech_token_ids]
    text = ModalityLogitsProcessor.from_tokenizer(tokenizer, "text", allow_eos=False)(None, scores.clone())
    assert torch.isfinite(text[0]).nonzero().flatten().tolist() == [*tokenizer.text_token_ids]
    every = ModalityLogitsProcessor.from_tokenizer(tokenizer, "any")(None, scores.clone())
    assert torch.isfinite(every[0, list(tokenizer.marker_token_ids)]).all()
    assert not torch.isfinite(every[0, [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id]]).any()


def test_processor_rejects_a_model_of_another_vocabulary(tokenizer):
    with pytest.raises(ValueError, match="build the processor from the model's own tokenizer"):
        ModalityLogitsProcessor.from_tokenizer(tokenizer, "text")(None, torch.zeros(1, 10))
    with pytest.raises(ValueError, match="modality must be one of"):
        ModalityLogitsProcessor.from_tokenizer(tokenizer, "video")


@pytest.mark.parametrize(("prompt_modality", "output_modality"),
                         [("speech", "text"), ("text", "speech"), ("speech", "speech"), ("text", "text")])
def test_continue_in_the_other_or_same_modality(model, tokenizer, prompt_modality, output_modality):
    prompts = [["In the beginning"], ["And God said let there be light"]] if prompt_modality == "text" else [
        [np.array([3, 4, 5, 9])], [np.array([7] * 11)]]
    continuations = generate_in_modality(model, tokenizer, prompts, output_modality, stop_at_eos=False,
                                         max_new_tokens=12, do_sample=False)
    assert len(continuations) == 2
    for segments in continuations:
        assert len(segments) == 1  # one segment, in the requested modality, with no marker
        if output_modality == "text":
            assert isinstance(segments[0], str) and len(tokenizer(segments[0], add_special_tokens=False)["input_ids"]) > 2
        else:
            assert isinstance(segments[0], np.ndarray) and segments[0].size == 12
            assert segments[0].min() >= 0 and segments[0].max() < tokenizer.num_units
