"""The tokenizers pipeline built from a SentencePiece proto gives sentencepiece's own ids."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lst_speech.tokenization.sentencepiece_text import TextPieceEncoder, TextPieceModel, train_text_sentencepiece

# Letters, digits, punctuation, whitespace of several kinds, accents, CJK, emoji, full-width forms that
# NFKC rewrites, and the strings of control and byte pieces: the cases where a hand-built pipeline would
# drift from sentencepiece.
PIECE_LOOKALIKES = ["<s>", "</s>", "<unk>", "<pad>", "<0x41>", "<0x0A>", "<", ">"]
TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.sampled_from(list("abcdefghij ABC  \t\n.,;:!?'-0123456789éüßçñ中文☃😀ＡＢ\u3000\u00a0ﬁ"))),
        st.sampled_from(PIECE_LOOKALIKES),
    ),
    max_size=8,
).map("".join)


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def trained(request, sample_verses) -> TextPieceModel:
    return train_text_sentencepiece(sample_verses, vocab_size=700, model_type=request.param)


@pytest.fixture(scope="module")
def llama_style(sample_verses) -> TextPieceModel:
    """Like Llama-2's tokenizer.model: unk/bos/eos at 0-2, no pad, no normalisation, whitespace kept."""
    return train_text_sentencepiece(
        sample_verses,
        vocab_size=700,
        model_type="bpe",
        pad_id=-1,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
    )


def test_trained_model_puts_pad_bos_eos_unk_first(trained):
    assert trained.num_leading_specials == 4
    assert (trained.pad_piece, trained.bos_piece, trained.eos_piece, trained.unk_piece) == ("<pad>", "<s>", "</s>", "<unk>")
    assert trained.vocab_size == 700


def test_llama_style_model_has_three_specials_and_no_pad(llama_style):
    assert llama_style.num_leading_specials == 3
    assert llama_style.pad_piece is None and llama_style.unk_piece == "<unk>"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_encoder_ids_equal_sentencepiece_ids(trained, text):
    reference = trained.processor()
    encoder = TextPieceEncoder(trained)
    assert encoder.encode(text).tolist() == reference.encode(text)
    assert encoder.decode(reference.encode(text)) == reference.decode(reference.encode(text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_encoder_matches_sentencepiece_without_whitespace_cleanup(llama_style, text):
    reference = llama_style.processor()
    assert TextPieceEncoder(llama_style).encode(text).tolist() == reference.encode(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("abcdefghij ABC  \t\n.,;:!?'-0123456789ＡＢ\u3000ﬁ"))))
def test_fast_pipeline_alone_matches_sentencepiece_on_ordinary_text(trained, text):
    """The fast path itself, without the reference fallback, on text with no byte fallback or lookalikes."""
    assert trained.build_tokenizer().encode(text, add_special_tokens=False).ids == trained.processor().encode(text)


@pytest.mark.parametrize("text", ["<s>", "a </s> b", "<unk>", "<pad>x", "<0x41><0x0A>"])
def test_control_and_byte_piece_strings_in_text_stay_text(trained, text):
    reference = trained.processor()
    ids = TextPieceEncoder(trained).encode(text).tolist()
    assert ids == reference.encode(text)
    assert not set(ids) & set(range(trained.num_leading_specials))


def test_flat_encoding_lays_texts_end_to_end(trained):
    texts = ["In the beginning", "<s> and ☃", "God"]
    ids, lengths = TextPieceEncoder(trained).encode_flat(texts)
    reference = [trained.processor().encode(t) for t in texts]
    assert lengths.tolist() == [len(r) for r in reference]
    assert ids.tolist() == [i for r in reference for i in r]


def test_rejects_a_file_that_is_not_a_sentencepiece_model(tmp_path):
    path = tmp_path / "broken.model"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(ValueError, match="Not a SentencePiece model"):
        TextPieceModel.from_file(path)


def test_training_rejects_unknown_model_type(sample_verses):
    with pytest.raises(ValueError, match="unigram' or 'bpe"):
        train_text_sentencepiece(sample_verses, model_type="char")
