"""The espeak-dtw aligner (espeak-ng's reading warped onto the recording) in the five languages of the Asterisk
prompts, against exact word times where espeak-ng made the speech."""

from __future__ import annotations

import numpy as np
import pytest

from lst_speech.tokenization.alignment.espeak_dtw_aligner import EspeakDtwAligner
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

SENTENCES = {"en-us": "Please enter your password followed by the pound key.",
             "es-419": "Por favor ingrese su contrasena seguida por la tecla de numero.",
             "fr": "Vous êtes maintenant en ligne. Composez votre numéro d'agent suivi du dièse.",
             "it": "Prego digitare il proprio numero di operatore seguito dal tasto cancelletto.",
             "ru": "Введите номер оператора и нажмите решетку."}


@pytest.mark.parametrize("voice", list(SENTENCES))
def test_another_espeak_voice_is_aligned_to_its_own_word_times(voice):
    """espeak-ng's female variant at 120 words a minute stands in for a recording whose word times are known;
    the aligner reads the text with the plain voice at 150."""
    speech = EspeakSynthesizer(f"{voice}+f3", 120).synthesize(SENTENCES[voice])
    aligned = EspeakDtwAligner(voice).align(speech.waveform, speech.sampling_rate, SENTENCES[voice])
    assert aligned.words == SENTENCES[voice].split()
    errors = 1000 * np.abs(aligned.regroup(speech.words).times - speech.word_times)  # ms, (words, start/end)
    assert np.median(errors) < 20 and errors[:, 0].max() < 100, errors.round().tolist()


def test_unspoken_tokens_get_no_time_and_bad_input_is_named():
    speech = EspeakSynthesizer("fr").synthesize("Bonjour le monde")
    aligner = EspeakDtwAligner("fr")
    aligned = aligner.align(speech.waveform, speech.sampling_rate, "Bonjour - le [@] monde")
    assert aligned.words == ["Bonjour", "le", "monde"]
    with pytest.raises(RuntimeError, match="lasts 0.1 times espeak's padded reading"):
        aligner.align(speech.waveform, speech.sampling_rate, " ".join(["Bonjour le monde"] * 10))
    with pytest.raises(ValueError, match="has no word to align"):
        aligner.align(speech.waveform, speech.sampling_rate, "- [@]")
    with pytest.raises(ValueError, match="espeak-ng has no voice 'xx' for the espeak-dtw aligner"):
        EspeakDtwAligner("xx")


def test_the_aligner_is_chosen_by_name_with_its_language():
    from lst_speech.tokenization.alignment.sources import make_aligner

    assert make_aligner("espeak-dtw:it").language == "it"
    with pytest.raises(ValueError, match=r"'espeak-dtw:<language>' \(e.g. espeak-dtw:fr\)"):
        make_aligner("espeak-dtw")
