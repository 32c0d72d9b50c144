"""Loading what an evaluation scores: a saved LST or Llama baseline and its joint tokenizer, checked first."""

from __future__ import annotations

from pathlib import Path


def load_model_and_tokenizer(model_dir: Path):
    """A saved LST or Llama baseline (a run's final/ or a release, checked first) and its joint tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import lst_speech.modeling_lst  # noqa: F401  (registers LST with the Auto classes)
    import lst_speech.tokenization  # noqa: F401  (registers the joint tokenizer)
    from lst_speech.modeling_lst.loading_checks import check_model_directory
    from lst_speech.modeling_lst.pairing import check_tokenizer_matches_model

    # The Auto classes would call a missing directory a bad repo id: LST or the Llama baseline, check it here.
    if not model_dir.is_dir():
        raise FileNotFoundError(f"--model {model_dir}: there is no such directory; pass a saved model's folder "
                                "(a run's final/, or a release).")
    check_model_directory(str(model_dir))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)
    check_tokenizer_matches_model(model.config, tokenizer, model_dir, model_dir)
    return model, tokenizer
