"""LoRA through peft on LST: trains, saves and reloads with peft's own API, merges, and generates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

peft = pytest.importorskip("peft")


def batch_of(tokenizer) -> torch.Tensor:
    rng = np.random.default_rng(0)
    rows = [tokenizer(segments=["in the beginning", rng.integers(0, 50, size=9), "God said"])["input_ids"]
            for _ in range(4)]
    return torch.tensor(rows)


@pytest.mark.slow
def test_lora_on_the_global_transformer_and_decoder_trains_saves_reloads_and_merges(tokenizer, tmp_path):
    torch.manual_seed(0)
    base = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
    base.save_pretrained(tmp_path / "base")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=r".*(global_transformer|decoder)\..*\.(q_proj|v_proj)",
                           lora_dropout=0.0)
    model = peft.get_peft_model(base, lora)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert all("lora_" in name for name in trainable)
    assert any(".global_transformer." in name for name in trainable) and any(".decoder." in name for name in trainable)

    ids = batch_of(tokenizer)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(30):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.2, losses

    model.eval()
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()

    reloaded = peft.PeftModel.from_pretrained(LSTForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "adapter")
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(input_ids=ids).logits, tuned, atol=1e-5, rtol=1e-5)
        generated = reloaded.generate(input_ids=ids[:1, :6], max_new_tokens=5, do_sample=False)
        merged = reloaded.merge_and_unload()
        assert isinstance(merged, LSTForCausalLM)
        torch.testing.assert_close(merged(input_ids=ids).logits, tuned, atol=1e-4, rtol=1e-4)
        assert merged.generate(input_ids=ids[:1, :6], max_new_tokens=5, do_sample=False).tolist() == generated.tolist()
