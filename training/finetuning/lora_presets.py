"""Named LoRA targets for LST and the Llama baseline, as peft `LoraConfig`s.

peft cannot guess the targets of a custom architecture, and LST's parts have different roles, so the presets
name them: `global` adapts only the global transformer (the part that holds the language model's knowledge),
`global+local` adds the local encoder's and decoder's attention and MLP blocks and the decoder's
cross-attention, `all` adds the pooling cross-attention, the patch queries' projection and the decoder's
projection of global states. (`encoder.patch_projection` is left out: it is an identity in the presets,
where k x local width equals the global width, and peft cannot adapt an identity.) The baseline
has one preset, `all` (every attention and MLP projection). A task head (`score` for classification) is
trained in full and saved with the adapter through `modules_to_save`, under its real name: otherwise peft
would save no head and a reload would start from a random one.
"""

from __future__ import annotations

import peft

_BLOCK = r"(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
_CROSS = r"cross_attention\.(q|k|v|o)_proj"

LORA_PRESETS: dict[str, dict[str, str]] = {
    "lst": {
        "global": rf".*\.global_transformer\.layers\.\d+\.{_BLOCK}",
        "global+local": rf".*\.(global_transformer|encoder|decoder)\.layers\.\d+\.({_BLOCK}|{_CROSS})",
        "all": rf".*\.((global_transformer|encoder|decoder)\.layers\.\d+\.({_BLOCK}|{_CROSS})"
               r"|encoder\.pooling\.(q|k|v|o)_proj|encoder\.query_projection|decoder\.global_projection)",
    },
    "llama": {"all": rf".*\.layers\.\d+\.{_BLOCK}"},
}


def lora_config(model_type: str, preset: str, task: str, rank: int = 8, alpha: int = 16,
                dropout: float = 0.05, new_token_ids: list[int] | None = None) -> peft.LoraConfig:
    """The LoRA config of `preset` for `model_type` ("lst" or "llama"); `task` is "classification" (the `score`
    head is trained and saved with the adapter) or "generation". `new_token_ids`, tokens added to the
    tokenizer (the base resized for them first), get trainable input embeddings (peft's
    `trainable_token_indices`: only those rows are trained and saved); for generation the output head is
    trained and saved in full too, since it must learn to emit them."""
    if model_type not in LORA_PRESETS:
        raise ValueError(f"model_type must be one of {sorted(LORA_PRESETS)}, got {model_type!r}.")
    presets = LORA_PRESETS[model_type]
    if preset not in presets:
        raise ValueError(f"LoRA preset {preset!r} does not exist for {model_type}; choose one of {sorted(presets)}.")
    if task not in ("classification", "generation"):
        raise ValueError(f"task must be 'classification' or 'generation', got {task!r}.")
    saved = ["score"] if task == "classification" else (["lm_head"] if new_token_ids else None)
    return peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=presets[preset], modules_to_save=saved,
        trainable_token_indices=list(new_token_ids) if new_token_ids else None,
        task_type=peft.TaskType.SEQ_CLS if task == "classification" else peft.TaskType.CAUSAL_LM,
    )
