"""Parameter and FLOPs accounting, checked against the models themselves."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlamaForCausalLM

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.accounting import (
    SequenceShape,
    decoding_weight_reads,
    llama_flops,
    lst_flops,
    parameter_counts,
)
from lst_speech.modeling_lst.patching import patch_lengths_from_starts, static_patch_starts


@pytest.fixture(scope="module")
def config(tokenizer) -> LSTConfig:
    return LSTConfig.from_tokenizer(tokenizer, preset="tiny", local_attention_window=6,
                                    cross_attn_window_encoder=2, cross_attn_window_decoder=2)


def executed_matmul_flops(model, ids) -> int:
    with FlopCounterMode(display=False) as counter:
        model(ids)
    return sum(flops for op, flops in counter.get_flop_counts()["Global"].items() if "mm" in str(op))


def test_tiny_parameter_counts_are_pinned(config):
    counts = parameter_counts(LSTForCausalLM(config))
    assert counts == {"embeddings": 852 * 32, "local_encoder": 16512, "global_transformer": 82240,
                      "local_decoder": 18656, "lm_head": 852 * 32, "total": 171936}
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
    assert counts["total"] < 1_000_000


def test_paper_1b_global_transformer_has_the_table_7_size(tokenizer):
    with torch.device("meta"):
        model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="lst-1b"))
    counts = parameter_counts(model)
    per_layer = 4 * 2048 * 2048 + 3 * 2048 * 5632 + 2 * 2048
    assert counts["global_transformer"] == 25 * per_layer + 2048  # ~1.28B: the "1B" is the global model
    assert counts["local_decoder"] > 8 * counts["local_encoder"] / 2


def test_flops_match_the_matmuls_the_models_execute(config, tokenizer):
    torch.manual_seed(0)
    ids = torch.tensor([tokenizer(segments=["hello there friend", np.arange(23) % 50, "and more", np.arange(9) % 50])["input_ids"]])
    lengths = patch_lengths_from_starts(static_patch_starts(ids >= config.speech_token_range[0], config.patch_size))[0]
    lst = lst_flops(config, SequenceShape(ids.shape[1], tuple(lengths)), attention_scores=False)
    assert executed_matmul_flops(LSTForCausalLM(config).eval(), ids) == sum(lst.values())
    baseline = llama_flops(config.global_llama_config(), ids.shape[1], attention_scores=False)
    assert executed_matmul_flops(LlamaForCausalLM(config.global_llama_config()).eval(), ids) == sum(baseline.values())


def test_attention_scores_follow_causal_and_windowed_key_counts(config):
    no_scores = llama_flops(config.global_llama_config(), 10, attention_scores=False)["transformer"]
    with_scores = llama_flops(config.global_llama_config(), 10)["transformer"]
    # 2 layers x (QK^T + AV) x 2 FLOPs x 10 queries x mean 5.5 keys x width 64
    assert with_scores - no_scores == 2 * 2 * 2 * 10 * 5.5 * 64
    speech_only = SequenceShape(40, (4,) * 10)
    lengths_only = lst_flops(config, speech_only)["global_transformer"] - lst_flops(
        config, speech_only, attention_scores=False)["global_transformer"]
    assert lengths_only == 2 * 2 * 2 * 10 * 5.5 * 64  # the global model sees 10 patches, not 40 tokens


def test_paper_composition_shrinks_the_global_sequence_to_0_81():
    """LST Table 13: 1/3 interleaved documents (77% speech) and 2/3 text-only, static patches of 4."""
    block = [False] * 46 + [True] * 154  # [Text] + 45 text tokens, [Speech] + 153 units ... 77% speech
    interleaved = torch.tensor([(block * 21)[:4200]])
    patches = static_patch_starts(interleaved, 4).sum().item()
    ratio = (patches + 2 * 4200) / (3 * 4200)
    assert interleaved.float().mean().item() == pytest.approx(0.77)
    assert ratio == pytest.approx(0.81, abs=0.005)


def linear_calls_per_token(model, prompt, new_tokens) -> Counter:
    """How often each linear layer runs per token while `new_tokens` are fed one at a time to a warm cache."""
    calls = Counter()
    with torch.no_grad():
        cache = model(prompt, use_cache=True).cache
        cache = model(new_tokens[:, :1], cache=cache, use_cache=True).cache  # the first step catches up the prefill
        hooks = [module.register_forward_hook(lambda *_, name=name: calls.update([name]))
                 for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
        for index in range(1, new_tokens.shape[1]):
            cache = model(new_tokens[:, index : index + 1], cache=cache, use_cache=True).cache
    for hook in hooks:
        hook.remove()
    return Counter({name: count / (new_tokens.shape[1] - 1) for name, count in calls.items()})


def test_decoding_weight_reads_are_the_linear_layers_a_cached_step_runs(config):
    """Counted on real cached speech steps: global, pooling and slot projections once per patch of 4, the rest
    once per token, and every Llama layer once per token."""
    torch.manual_seed(0)
    speech = config.speech_token_range[0] + torch.arange(11)[None] % 50
    prompt = torch.cat([torch.tensor([[1, config.text_marker_id, 10, 11, config.speech_marker_id]]), speech[:, :2]], 1)
    # Fed: the 3rd speech token (warm-up), then the 4th to 11th, of which the 5th and 9th close patches.
    for model in (LSTForCausalLM(config).eval(), LlamaForCausalLM(config.global_llama_config()).eval()):
        reads = decoding_weight_reads(model)
        assert {name: per_token for name, _, per_token in reads} == linear_calls_per_token(model, prompt, speech[:, 2:])
        assert len(reads) == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    lst_reads = decoding_weight_reads(LSTForCausalLM(config))
    global_part = sum(np.prod(shape) * per_token for name, shape, per_token in lst_reads
                      if ".global_transformer." in name)
    assert global_part == (parameter_counts(LSTForCausalLM(config))["global_transformer"] - 2 * 2 * 64 - 64) / 4
