"""A CTranslate2 Whisper model's encoder as a transformers `WhisperEncoder`, read from its `model.bin`.

CTranslate2's `Whisper.encode` returns the encoder's last layer only; Whisper-encoder units from another layer
need the encoder's weights in a framework that exposes every layer. `model.bin` is CTranslate2's own format
(`ctranslate2.specs.model_spec.ModelSpec._serialize`: a version, the spec's name and revision, then each variable
as name, shape, dtype and raw bytes); its encoder variables map one to one onto transformers' Whisper encoder,
the fused query-key-value projection split in three (Whisper's key projection has no bias).
"""

from __future__ import annotations

import os
import re
import struct

import numpy as np

_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16)  # CTranslate2's type ids; bfloat16 (5) unused here


def read_ctranslate2_variables(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 `model.bin` (arrays view the file's bytes)."""
    with open(path, "rb") as handle:
        data = handle.read()
    position = 0

    def take(fmt: str):
        nonlocal position
        (value,) = struct.unpack_from(fmt, data, position)
        position += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal position
        length = take("H")
        value = data[position: position + length - 1].decode("utf-8")
        position += length
        return value

    try:
        take("I"), text(), take("I")  # binary version, spec name, revision
        variables = {}
        for _ in range(take("I")):
            name = text()
            shape = [take("I") for _ in range(take("B"))]
            dtype, size = _DTYPES[take("B")], take("I")
            variables[name] = np.frombuffer(data, dtype, size // np.dtype(dtype).itemsize, position).reshape(shape)
            position += size
    except (struct.error, IndexError, ValueError) as error:
        raise ValueError(f"{path} is not a CTranslate2 model file this reader knows ({error}).") from error
    return variables


def encoder_layers(variables: dict, folder) -> int:
    """How many encoder layers the variables hold (`encoder/layer_<i>/...`)."""
    layers = 1 + max((int(match.group(1)) for match in map(re.compile(r"encoder/layer_(\d+)/").match, variables)
                      if match), default=-1)
    if layers == 0:
        raise ValueError(f"{folder}/model.bin has no encoder layers: it is not a CTranslate2 Whisper model.")
    return layers


def whisper_encoder_from_ctranslate2(folder: str | os.PathLike):
    """A float32 transformers `WhisperEncoder` (eval mode) with the weights of a CTranslate2 Whisper folder."""
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    variables = read_ctranslate2_variables(os.path.join(folder, "model.bin"))
    if any(name.startswith("encoder/") and name.endswith("weight_scale") for name in variables):
        raise ValueError(f"{folder} holds int8-quantized weights; convert the model with float16 or float32 weights.")
    layers = encoder_layers(variables, folder)
    conv1 = variables["encoder/conv1/weight"]
    config = WhisperConfig(num_mel_bins=conv1.shape[1], d_model=conv1.shape[0], encoder_layers=layers,
                           encoder_attention_heads=int(variables["encoder/num_heads"]),
                           encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
                           max_source_positions=variables["encoder/position_encodings/encodings"].shape[0])
    state = {"conv1.weight": conv1, "conv1.bias": variables["encoder/conv1/bias"],
             "conv2.weight": variables["encoder/conv2/weight"], "conv2.bias": variables["encoder/conv2/bias"],
             "embed_positions.weight": variables["encoder/position_encodings/encodings"],
             "layer_norm.weight": variables["encoder/layer_norm/gamma"],
             "layer_norm.bias": variables["encoder/layer_norm/beta"]}
    for index in range(layers):
        source, target = f"encoder/layer_{index}", f"layers.{index}"
        query, key, value = np.split(variables[f"{source}/self_attention/linear_0/weight"], 3)
        query_bias, _, value_bias = np.split(variables[f"{source}/self_attention/linear_0/bias"], 3)
        state.update({
            f"{target}.self_attn.q_proj.weight": query, f"{target}.self_attn.q_proj.bias": query_bias,
            f"{target}.self_attn.k_proj.weight": key,
            f"{target}.self_attn.v_proj.weight": value, f"{target}.self_attn.v_proj.bias": value_bias,
            f"{target}.self_attn.out_proj.weight": variables[f"{source}/self_attention/linear_1/weight"],
            f"{target}.self_attn.out_proj.bias": variables[f"{source}/self_attention/linear_1/bias"],
            f"{target}.self_attn_layer_norm.weight": variables[f"{source}/self_attention/layer_norm/gamma"],
            f"{target}.self_attn_layer_norm.bias": variables[f"{source}/self_attention/layer_norm/beta"],
            f"{target}.fc1.weight": variables[f"{source}/ffn/linear_0/weight"],
            f"{target}.fc1.bias": variables[f"{source}/ffn/linear_0/bias"],
            f"{target}.fc2.weight": variables[f"{source}/ffn/linear_1/weight"],
            f"{target}.fc2.bias": variables[f"{source}/ffn/linear_1/bias"],
            f"{target}.final_layer_norm.weight": variables[f"{source}/ffn/layer_norm/gamma"],
            f"{target}.final_layer_norm.bias": variables[f"{source}/ffn/layer_norm/beta"]})
    encoder = WhisperEncoder(config)
    encoder.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items()},
                            strict=True)
    return encoder.eval()
