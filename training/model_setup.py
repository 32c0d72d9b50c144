"""The model a pretraining run trains: its config (a preset's or a saved model's, with the run's patching
copied in once) and the LST or Llama baseline built from it."""

from __future__ import annotations

from transformers import LlamaForCausalLM

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.training.arguments import ModelArguments, PretrainingArguments


def model_config(model_args: ModelArguments, tokenizer, args: PretrainingArguments) -> LSTConfig | None:
    """The config the run trains LST with: the preset's (with `--config_overrides`) or the saved model's, with
    the run's patching arguments copied in once; for the Llama baseline, the LST config whose global shape it
    takes (None when loading a saved baseline). Cheap: no weights are built or read."""
    patching = args.patching_overrides()
    if model_args.model_name_or_path:
        if model_args.model_type != "lst":
            return None
        return LSTConfig.from_pretrained(model_args.model_name_or_path).with_patching(**patching)
    preset = LSTConfig.from_tokenizer(tokenizer, preset=model_args.preset, **model_args.overrides())
    return preset.with_patching(**patching)


def build_model(model_args: ModelArguments, config: LSTConfig | None, args: PretrainingArguments):
    """LST from `config` (with saved weights where given), or the Llama baseline with LST's global shape."""
    if model_args.model_type == "lst":
        model = (LSTForCausalLM.from_pretrained(model_args.model_name_or_path, config=config)
                 if model_args.model_name_or_path else LSTForCausalLM(config))
    else:
        model = (LlamaForCausalLM.from_pretrained(model_args.model_name_or_path) if model_args.model_name_or_path
                 else LlamaForCausalLM(config.global_llama_config()))
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model
