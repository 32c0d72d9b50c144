"""The espeak-dtw aligner (espeak-ng's reading warped onto the recording) in the five languages of the Asterisk
prompts: against exact word times where espeak-ng made the speech, on real prompts where it did not, and the
non-English Asterisk sets through `lst corpus`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lst_speech.tokenization.alignment.espeak_dtw_aligner import EspeakDtwAligner
from lst_speech.tokenization.corpora.transcript_files import asterisk_source, read_transcript_file
from lst_speech.tokenization.speech.audio import read_audio
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

SENTENCES = {"en-us": "Please enter your password followed by the pound key.",
             "es-419": "Por favor ingrese su contrasena seguida por la tecla de numero.",
             "fr": "Vous êtes maintenant en ligne. Composez votre numéro d'agent suivi du dièse.",
             "it": "Prego digitare il proprio numero di operatore seguito dal tasto cancelletto.",
             "ru": "Введите номер оператора и нажмите решетку."}
# Two prompts per language: (seconds, transcript) as the Debian packages install them (G.722, 16 kHz).
PROMPTS = {
    "es": {"agent-loginok": (1.526, "Agente conectado"),
           "agent-pass": (4.082, "Por favor ingrese su contrasena seguida por la tecla de numero")},
    "fr": {"agent-loginok": (1.786, "Vous êtes maintenant en ligne."),
           "agent-loggedoff": (1.572, "Vous n'êtes plus en ligne.")},
    "it": {"agent-loggedoff": (1.329, "operatore disconnesso."), "agent-loginok": (1.22, "operatore connesso")},
    "ru": {"agent-loginok": (1.631, "Оператор зарегистрирован."),
           "auth-thankyou": (0.704, "Спасибо.")},
}


@pytest.mark.parametrize("voice", list(SENTENCES))
def test_another_espeak_voice_is_aligned_to_its_own_word_times(voice):
    """espeak-ng's female variant at 120 words a minute stands in for a recording whose word times are known;
    the aligner reads the text with the plain voice at 150."""
    speech = EspeakSynthesizer(f"{voice}+f3", 120).synthesize(SENTENCES[voice])
    aligned = EspeakDtwAligner(voice).align(speech.waveform, speech.sampling_rate, SENTENCES[voice])
    assert aligned.words == SENTENCES[voice].split()
    errors = 1000 * np.abs(aligned.regroup(speech.words).times - speech.word_times)  # ms, (words, start/end)
    assert np.median(errors) < 20 and errors[:, 0].max() < 100, errors.round().tolist()


@pytest.mark.parametrize("language", list(PROMPTS))
def test_recorded_prompts_decode_and_align_in_their_language(language):
    from lst_speech.tokenization.corpora.transcript_files import ASTERISK_SETS

    audio, transcripts = asterisk_source(language)
    entries = read_transcript_file(transcripts)
    aligner = EspeakDtwAligner(ASTERISK_SETS[language][3])
    for name, (seconds, text) in PROMPTS[language].items():
        waveform, rate = read_audio(audio / f"{name}.g722")
        assert rate == 16000 and waveform.ndim == 1 and len(waveform) / rate == pytest.approx(seconds, abs=0.001)
        assert entries[name][0] == text
        aligned = aligner.align(waveform, rate, text)
        assert aligned.words == text.split()
        times = aligned.times
        assert (times[:, 1] > times[:, 0]).all() and (times[1:, 0] >= times[:-1, 1]).all() and times[-1, 1] <= seconds
        # the words cover the speech: the first starts and the last ends within 150 ms of the first and last 10 ms
        # frames above -35 dBFS (these prompts are trimmed to speech, with a little silence at either end)
        level = 10 * np.log10((waveform[: len(waveform) // 160 * 160].reshape(-1, 160) ** 2).mean(1) + 1e-12)
        voiced = np.flatnonzero(level > -35) / 100
        assert abs(times[0, 0] - voiced[0]) < 0.15 and abs(times[-1, 1] - voiced[-1] - 0.01) < 0.15, (name, times)


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


def test_transcript_lists_of_the_four_sets():
    """Italian's byte-order mark is skipped, Spanish's duplicated `digits/0` row names `digits/10`, the lists'
    `name:` lines without text are no transcript, and `<beep ascending>` is a sound."""
    from lst_speech.tokenization.corpora.transcript_files import describes_a_sound

    italian = read_transcript_file(asterisk_source("it")[1])
    assert italian["activated"] == ("Attivato.", 4)
    spanish = read_transcript_file(asterisk_source("es")[1])
    assert spanish["digits/0"][0] == "cero" and spanish["digits/10"] == ("diez", 121)
    assert "dir-welcome" not in spanish and "dir-welcome" not in read_transcript_file(asterisk_source("fr")[1])
    assert describes_a_sound("<beep ascending>") and not describes_a_sound("a <b>")


def test_lst_corpus_aligns_the_french_prompts_with_espeak_dtw(tmp_path, capsys):
    import datasets

    from lst_speech.training.cli.main import main

    main(["corpus", "--output", str(tmp_path / "fr"), "--asterisk", "fr", "--num_utterances", "4", "--num_units", "8",
          "--on_error", "skip"])
    corpus = datasets.load_from_disk(str(tmp_path / "fr"))
    assert corpus["id"] == ["activated", "added", "agent-alreadyon", "agent-incorrect"]
    assert corpus["words"][2][:3] == ["Cet", "agent", "est"]
    card = (tmp_path / "fr" / "README.md").read_text()
    assert "espeak-dtw:fr (forced alignment" in card and "June Wallack" in card and "- fr\n" in card
    assert json.loads((tmp_path / "fr" / "failures.json").read_text()) == []
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "t.txt").write_text("a: Bonjour.\n")
    for bad, message in [(["--audio", str(folder), "--transcripts", str(folder / "t.txt"), "--aligner",
                           "espeak-dtw"], "--aligner espeak-dtw needs a language: espeak-dtw:<language>"),
                         (["--asterisk", "fr", "--aligner", "espeak-dtw:xx"], "espeak-ng has no voice 'xx'")]:
        with pytest.raises(SystemExit):
            main(["corpus", "--output", str(tmp_path / "other"), *bad])
        assert message in capsys.readouterr().err
