"""torch.compile of LST's training step and of its cached decoding step gives eager's numbers.

The tests compile with the `aot_eager` backend: it runs dynamo's graph capture (graph breaks included) and
AOTAutograd's traced backward, which is where a model can go wrong under compile, without inductor's code
generation (minutes on 2 CPU cores). Inductor's speed is measured by `benchmarks/bench_training_step.py
--compile` and `benchmarks/bench_generation.py --compile`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

pytestmark = pytest.mark.slow  # subprocesses, several processes or whole jobs: `-m "not slow"` skips them


@pytest.fixture(scope="module")
def config(tokenizer) -> LSTConfig:
    return LSTConfig.from_tokenizer(tokenizer, preset="tiny", local_attention_window=6, cross_attn_window_encoder=2,
                                    cross_attn_window_decoder=2)


@pytest.fixture(scope="module")
def batch(tokenizer) -> torch.Tensor:
    rng = np.random.default_rng(3)
    rows = [tokenizer(segments=["in the beginning", rng.integers(0, 50, 13), "and God said"])["input_ids"],
            tokenizer(segments=[rng.integers(0, 50, 9), "let there be light", rng.integers(0, 50, 6)])["input_ids"]]
    return tokenizer.pad({"input_ids": rows}, padding_side="left", return_tensors="pt")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    loss = model(**batch, labels=labels, use_cache=False).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_compiled_training_step_equals_eager(config, batch):
    torch.manual_seed(0)
    model = LSTForCausalLM(config)
    eager_loss, eager_grads = loss_and_grads(model, batch)
    model.forward = torch.compile(model.forward, backend="aot_eager")
    for _ in range(2):  # the second call runs the cached graphs
        loss, grads = loss_and_grads(model, batch)
        torch.testing.assert_close(loss, eager_loss, atol=1e-6, rtol=1e-6)
        assert grads.keys() == eager_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, eager_grads[name], atol=1e-6, rtol=1e-5, msg=name)


def test_compiled_cached_decoding_equals_eager(config, batch):
    torch.manual_seed(0)
    model = LSTForCausalLM(config).eval()
    with torch.no_grad():
        eager = model.generate(**batch, max_new_tokens=10, do_sample=False, output_logits=True,
                               return_dict_in_generate=True)
        model.forward = torch.compile(model.forward, backend="aot_eager")
        compiled = model.generate(**batch, max_new_tokens=10, do_sample=False, output_logits=True,
                                  return_dict_in_generate=True)
    assert compiled.sequences.tolist() == eager.sequences.tolist()
    for step, (got, expected) in enumerate(zip(compiled.logits, eager.logits)):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5, msg=f"step {step}")
