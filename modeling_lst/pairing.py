"""Whether a tokenizer belongs to a model: the same joint id layout, not only the same vocabulary size.

Two joint tokenizers of one size can still place text pieces, markers and speech tokens at different ids (e.g.
1,000 text pieces and 100 units against 1,050 and 50); a model trained with one reads the other's ids as the
wrong tokens and still generates. The model's config records the layout it was built with
(`LSTConfig.from_tokenizer`), so the two are compared field by field before any work starts. The tokenizer side
comes as plain data (`SpeechUnitTextTokenizer.vocabulary_layout()`), because this package ships as remote code
without the tokenizer's.
"""

from __future__ import annotations

# The layout fields a config may record; a Llama baseline's config records the size and the special ids only.
LAYOUT_FIELDS = ("vocab_size", "text_token_range", "speech_token_range", "text_marker_id", "speech_marker_id",
                 "pad_token_id", "bos_token_id", "eos_token_id")


def layout_differences(config, layout: dict) -> list[str]:
    """Each layout field that the config records and that differs from the tokenizer's, described."""
    differences = []
    for name in LAYOUT_FIELDS:
        if getattr(config, name, None) is None or name not in layout:
            continue
        model_value, tokenizer_value = getattr(config, name), layout[name]
        if isinstance(model_value, (list, tuple)):
            model_value, tokenizer_value = list(model_value), list(tokenizer_value)
        if model_value != tokenizer_value:
            differences.append(f"{name} {model_value} in the model, {tokenizer_value} in the tokenizer")
    return differences


def check_tokenizer_matches_model(config, tokenizer, model_name, tokenizer_name) -> None:
    """One error naming both sides and every difference, or nothing. A tokenizer without a joint layout (any
    other transformers tokenizer) is compared by its size."""
    joint = hasattr(tokenizer, "vocabulary_layout")
    layout = tokenizer.vocabulary_layout() if joint else {"vocab_size": len(tokenizer)}
    differences = layout_differences(config, layout)
    if differences:
        raise ValueError(f"The tokenizer {tokenizer_name} does not belong to the model {model_name}: "
                         f"{'; '.join(differences)}. Use the tokenizer saved with the model (in its folder), or "
                         "build the model's config from this tokenizer (LSTConfig.from_tokenizer) and train it.")
