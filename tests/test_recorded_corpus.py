"""Spoken-corpus rows from recorded speech: a folder of Asterisk prompts and a transcript file, aligned by
pocketsphinx, through `build_recorded_corpus` and `lst corpus`, with bad input named by file and row."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_whisper_transcriber import PROMPTS  # tests/ is on sys.path (pytest's prepend import mode)

from lst_speech.tokenization.corpora.recorded_corpus import build_recorded_corpus, recordings
from lst_speech.tokenization.corpora.transcript_files import asterisk_source
from lst_speech.tokenization.speech.audio import read_audio


@pytest.fixture(scope="module")
def asterisk():
    return asterisk_source("en")


@pytest.fixture(scope="module")
def prompt_folder(asterisk, tmp_path_factory):
    """Three prompts copied into a folder of their own with a CSV transcript, plus a described sound and a
    transcript whose audio is missing: 'any folder of audio + transcripts'."""
    audio, _ = asterisk
    folder = tmp_path_factory.mktemp("prompts")
    for name in [*PROMPTS, "beep"]:
        shutil.copy(audio / f"{name}.g722", folder / f"{name}.g722")
    rows = [f"{name}.g722,{text}" for name, (_, text) in PROMPTS.items()]
    (folder / "transcripts.csv").write_text("\n".join(["file,text", *rows, "beep,[this is a simple beep tone]",
                                                       "gone.g722,Missing audio."]) + "\n")
    return folder


def test_a_recorded_corpus_has_the_spoken_corpus_rows(prompt_folder):
    from lst_speech.tokenization.alignment.pocketsphinx_aligner import PocketsphinxAligner
    from lst_speech.tokenization.corpora.spoken_corpus import FEATURES

    transcripts = prompt_folder / "transcripts.csv"
    with pytest.raises(ValueError, match=r"transcripts.csv, row 5: the transcript .* describes a sound"):
        recordings(prompt_folder, transcripts)
    corpus, extractor, failures = build_recorded_corpus(prompt_folder, transcripts, PocketsphinxAligner(),
                                                        num_units=8, on_error="skip", progress=False)
    assert [(f["row"], f["reason"].split(",")[0]) for f in failures] == [
        (5, "the transcript '[this is a simple beep tone]' describes a sound"), (6, "no audio gone{.wav")]
    assert corpus.features == FEATURES and corpus["id"] == list(PROMPTS)
    for row, (seconds, text) in zip(corpus, PROMPTS.values()):
        assert row["text"] == text and row["words"] == text.split()
        assert abs(len(row["units"]) - 50 * seconds) <= 1 and max(row["units"]) < 8
        spans = np.array(row["word_spans"])
        assert len(spans) == len(row["words"]) and (spans[:, 1] > spans[:, 0]).all()
        assert (spans[1:, 0] >= spans[:-1, 1]).all() and spans[-1, 1] <= len(row["units"])
        assert row["character_starts"] is None  # pocketsphinx times words only
        # every word span holds voiced audio: a 20 ms frame above -30 dBFS (these prompts are trimmed to speech)
        waveform, _ = read_audio(prompt_folder / f"{row['id']}.g722")
        level = 10 * np.log10((waveform[: len(waveform) // 320 * 320].reshape(-1, 320) ** 2).mean(1) + 1e-12)
        assert all(level[start:end].max() > -30 for start, end in spans), (row["id"], spans.tolist())
    assert extractor.num_units == 8


def test_lst_corpus_builds_from_a_folder_of_recordings_and_names_bad_input(prompt_folder, tmp_path, capsys):
    import datasets

    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
    from lst_speech.training.cli.main import main

    command = ["corpus", "--output", str(tmp_path / "corpus"), "--audio", str(prompt_folder), "--transcripts",
               str(prompt_folder / "transcripts.csv"), "--num_units", "8"]
    with pytest.raises(SystemExit):  # stops at the first bad row, named in one line
        main(command)
    assert "transcripts.csv, row 5: the transcript '[this is a simple beep tone]' describes a sound" in \
        capsys.readouterr().err
    assert not (tmp_path / "corpus").exists()
    main(command + ["--on_error", "skip"])
    corpus = datasets.load_from_disk(str(tmp_path / "corpus"))
    assert corpus["id"] == list(PROMPTS) and corpus["text"] == [text for _, text in PROMPTS.values()]
    failures = json.loads((tmp_path / "corpus" / "failures.json").read_text())
    assert [failure["row"] for failure in failures] == [5, 6]
    assert load_unit_extractor(tmp_path / "corpus" / "extractor").num_units == 8
    card = (tmp_path / "corpus" / "README.md").read_text()
    assert "pocketsphinx (forced alignment" in card and "**left out**: 2 (failures.json)" in card
    for bad, message in [(["--asterisk", "en", "--audio", str(prompt_folder)], "Give one source"),
                         (["--audio", str(prompt_folder)], "needs both --audio"),
                         (["--asterisk", "xx"], "No Asterisk prompt set 'xx'")]:
        with pytest.raises(SystemExit):
            main(["corpus", "--output", str(tmp_path / "other"), *bad])
        assert message in capsys.readouterr().err


def test_an_entry_in_another_case_than_its_file_takes_that_file(asterisk, tmp_path):
    """Asterisk's Spanish list names `digits/1f` for `digits/1F.g722`: the entry takes the one file of its name in
    any case (and the file's name), unless another entry names that file exactly."""
    audio, _ = asterisk
    source = audio / "agent-pass.g722"
    (tmp_path / "digits").mkdir()
    for name in ("digits/1F", "d", "D"):
        (tmp_path / f"{name}.g722").write_bytes(source.read_bytes())
    (tmp_path / "list.txt").write_text("digits/1f: one\nd: dee\nE: missing\n")
    failures = []
    found = recordings(tmp_path, tmp_path / "list.txt", failures=failures)
    assert [(item.name, item.audio.name, item.text) for item in found] == [("digits/1F", "1F.g722", "one"),
                                                                         ("d", "d.g722", "dee")]
    assert [failure["row"] for failure in failures] == [3]


def test_lst_corpus_from_the_asterisk_prompts(tmp_path):
    import datasets

    from lst_speech.training.cli.main import main

    main(["corpus", "--output", str(tmp_path / "asterisk"), "--asterisk", "en", "--num_utterances", "3",
          "--num_units", "10"])
    corpus = datasets.load_from_disk(str(tmp_path / "asterisk"))
    assert corpus["id"] == ["activated", "added", "agent-alreadyon"]
    assert corpus[2]["words"][:4] == ["That", "agent", "is", "already"] and len(corpus[2]["word_spans"]) == 16
    assert "cc-by-sa-3.0" in (tmp_path / "asterisk" / "README.md").read_text()


def test_lst_corpus_holds_out_by_prompt_name_whatever_fails_to_align(asterisk, tmp_path, capsys):
    """--held_out_every 2 over four recordings: those whose name's CRC-32 is odd are held out; the one that fails
    to align ('aaa-unalignable', odd too) is in neither split and moves none."""
    import datasets

    from lst_speech.training.cli.main import main

    audio, _ = asterisk
    folder = tmp_path / "prompts"
    folder.mkdir()
    for name in PROMPTS:
        shutil.copy(audio / f"{name}.g722", folder / f"{name}.g722")
    shutil.copy(audio / "agent-pass.g722", folder / "aaa-unalignable.g722")
    lines = [f"{name}: {text}" for name, (_, text) in PROMPTS.items()] + ["aaa-unalignable: Xqzzv blorft."]
    (folder / "transcripts.txt").write_text("\n".join(lines) + "\n")
    command = ["corpus", "--output", str(tmp_path / "corpus"), "--audio", str(folder), "--transcripts",
               str(folder / "transcripts.txt"), "--num_units", "8", "--on_error", "skip"]
    main(command + ["--held_out_every", "2"])
    corpus = datasets.load_from_disk(str(tmp_path / "corpus"))
    assert {split: rows["id"] for split, rows in corpus.items()} == {
        "train": ["agent-pass"], "held_out": ["agent-loginok", "auth-thankyou"]}
    assert [failure["row"] for failure in json.loads((tmp_path / "corpus" / "failures.json").read_text())] == [4]
    assert "train 1 utterances (0.06 min), held_out 2 utterances (0.05 min)" in \
        (tmp_path / "corpus" / "README.md").read_text()
    for bad, message in [(["--held_out_every", "1"], "--held_out_every 1 leaves nothing to train on"),
                         (["--texts", str(folder / "transcripts.txt"), "--held_out_every", "2"],
                          "--held_out_every splits recorded speech")]:
        with pytest.raises(SystemExit):
            main(["corpus", "--output", str(tmp_path / "other"), *bad])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_the_processor_turns_a_recorded_prompt_into_model_inputs(asterisk, tokenizer):
    """A recorded prompt through extraction, alignment and the processor: the ids are the rows' units and text,
    and every word of the transcript has a span."""
    from lst_speech.tokenization.alignment.pocketsphinx_aligner import PocketsphinxAligner
    from lst_speech.tokenization.processing_lst import SpeechTextProcessor
    from lst_speech.tokenization.segments import SpeechSegment
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    audio, _ = asterisk
    clips = [read_audio(audio / f"{name}.g722")[0] for name in PROMPTS]
    extractor = MfccUnitExtractor(tokenizer.num_units).fit(clips, 16000)
    text = PROMPTS["agent-pass"][1]
    alignment = PocketsphinxAligner().align(clips[2], 16000, text)
    inputs = SpeechTextProcessor(extractor, tokenizer)(audio=clips[2], sampling_rate=16000, text=text,
                                                      alignment=alignment)
    units = extractor(clips[2], 16000)
    spans = alignment.frame_spans(extractor.frame_rate, len(units), len(clips[2]) / 16000)
    assert inputs["input_ids"] == tokenizer(segments=[SpeechSegment(units, spans), text])["input_ids"]
    assert len(inputs["word_spans"]) == 9 and len(units) == 165  # 3.285 s at 50 frames a second


def test_lst_units_extract_reads_a_folder_of_g722_prompts(prompt_folder, tmp_path):
    from lst_speech.training.cli.main import main

    main(["units", "fit", "--audio", *(str(prompt_folder / f"{name}.g722") for name in PROMPTS), "--num_units", "8",
          "--output", str(tmp_path / "units")])
    main(["units", "extract", "--extractor", str(tmp_path / "units"), "--audio", str(prompt_folder), "--output",
          str(tmp_path / "units.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
    assert sorted(row["path"].rsplit("/", 1)[1] for row in rows) == sorted(f"{n}.g722" for n in [*PROMPTS, "beep"])
    assert {round(row["duration"], 3) for row in rows} >= {seconds for seconds, _ in PROMPTS.values()}
