"""Alignments at corpus scale in the sharded extraction job: a tree of MFA TextGrids matched to the audio by
name, and the pocketsphinx / CTC aligners run shard by shard on LibriSpeech-style transcripts; what failed to
align and why, and alignments that matched no audio, are in index.json."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from praatio import textgrid

from lst_speech.tokenization.alignment.sources import AlignmentFiles, find_transcripts
from lst_speech.tokenization.corpora.sharded_extraction import ShardedExtraction, run_extraction

VERSES = ["In the beginning God created the heaven and the earth",
          "And the earth was without form and void",
          "And God said let there be light and there was light",
          "And God saw the light that it was good",
          "And the evening and the morning were the first day"]


@pytest.fixture(scope="module")
def spoken_tree(tmp_path_factory):
    """Five espeak utterances in a LibriSpeech layout (speaker/chapter/ID.flac + ID-chapter.trans.txt), MFA-style
    TextGrids of four of them (the aligner 'failed' on the fifth) plus one for audio that is not there, and a
    20-unit MFCC extractor."""
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    root = tmp_path_factory.mktemp("spoken")
    synthesizer, waveforms, lines = EspeakSynthesizer(), [], {}
    for index, verse in enumerate(VERSES):
        speaker = 19 + index % 2
        utterance = f"{speaker}-198-{index:04d}"
        speech = synthesizer.synthesize(verse)
        folder = root / "LibriSpeech" / str(speaker) / "198"
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{utterance}.flac", speech.waveform, speech.sampling_rate)
        lines.setdefault(folder / f"{speaker}-198.trans.txt", []).append(f"{utterance} {verse.upper()}")
        waveforms.append(speech.waveform)
        if index != 4:
            write_textgrid(root / "mfa" / str(speaker) / f"{utterance}.TextGrid", speech.words, speech.word_times,
                           speech.waveform.size / speech.sampling_rate)
    for path, text in lines.items():
        path.write_text("\n".join(text) + "\n")
    write_textgrid(root / "mfa" / "21" / "21-198-0000.TextGrid", ["stray"], np.array([[0.1, 0.4]]), 1.0)
    MfccUnitExtractor(num_units=20).fit(waveforms, speech.sampling_rate).save_pretrained(root / "extractor")
    return root


def write_textgrid(path, words, times, duration):
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = textgrid.Textgrid()
    entries = [(float(start), float(end), word) for word, (start, end) in zip(words, times)]
    grid.addTier(textgrid.IntervalTier("words", entries, 0, duration))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def job(root, output, **options):
    return ShardedExtraction(root / "extractor", [root / "LibriSpeech"], root / output, shard_size=2, **options)


def rows_of(folder):
    import pyarrow.parquet as pq

    return [row for path in sorted(folder.glob("units-*.parquet")) for row in pq.read_table(path).to_pylist()]


def test_mfa_textgrids_are_matched_by_name_and_failures_reported(spoken_tree):
    with pytest.raises(ValueError, match="No 19-198-0004.TextGrid .*MFA writes none for utterances it could not align"):
        run_extraction(job(spoken_tree, "stopped", alignments=spoken_tree / "mfa"))
    index = run_extraction(job(spoken_tree, "mfa-units", alignments=spoken_tree / "mfa", on_error="skip"))
    assert index["rows"] == 4 and [f["path"].rsplit("/", 1)[1] for f in index["failures"]] == ["19-198-0004.flac"]
    assert "could not align" in index["failures"][0]["error"]
    assert index["unmatched_alignments"] == [str(spoken_tree / "mfa" / "21" / "21-198-0000.TextGrid")]
    rows = rows_of(spoken_tree / "mfa-units")
    by_stem = {row["path"].rsplit("/", 1)[1].split(".")[0]: row for row in rows}
    first = by_stem["19-198-0000"]
    assert " ".join(first["words"]) == first["text"] == VERSES[0]  # espeak groups some words ("In the")
    read = AlignmentFiles(spoken_tree / "mfa").alignment(spoken_tree / "19-198-0000.flac")[0]
    np.testing.assert_array_equal(first["word_spans"], read.frame_spans(50, len(first["units"]), first["duration"]))
    # Two processes write the same shards.
    two = job(spoken_tree, "mfa-two", alignments=spoken_tree / "mfa", on_error="skip")
    two.prepare_output()
    two.run_process(1, 2), two.run_process(0, 2)
    assert two.write_index()["failures"] == index["failures"] and rows_of(spoken_tree / "mfa-two") == rows


def test_two_alignments_for_one_name_are_refused(spoken_tree, tmp_path):
    write_textgrid(tmp_path / "a" / "x.TextGrid", ["in"], np.array([[0.0, 0.2]]), 1.0)
    write_textgrid(tmp_path / "b" / "x.TextGrid", ["in"], np.array([[0.0, 0.2]]), 1.0)
    with pytest.raises(ValueError, match="both align 'x'"):
        AlignmentFiles(tmp_path)


def test_librispeech_transcripts_and_lab_files_are_found(spoken_tree, tmp_path):
    transcripts = find_transcripts([spoken_tree / "LibriSpeech"])
    assert len(transcripts) == 5 and transcripts["19-198-0000"] == VERSES[0].upper()
    (tmp_path / "19-198-0000.lab").write_text("something else\n")
    with pytest.raises(ValueError, match="'19-198-0000' has two transcripts"):
        find_transcripts([spoken_tree / "LibriSpeech", tmp_path])


def test_pocketsphinx_runs_shard_by_shard_and_lists_what_it_could_not_align(spoken_tree, tmp_path):
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    for stem, text in find_transcripts([spoken_tree / "LibriSpeech"]).items():
        if stem != "19-198-0002":  # one utterance has no transcript; another has a word outside the dictionary
            (transcripts / f"{stem}.lab").write_text(text.replace("VOID", "BDELLIUM"))
    options = {"aligner": "pocketsphinx", "transcripts": [transcripts], "on_error": "skip"}
    index = run_extraction(job(spoken_tree, "sphinx", **options))
    failures = {f["path"].rsplit("/", 1)[1]: f["error"] for f in index["failures"]}
    assert sorted(failures) == ["19-198-0002.flac", "20-198-0001.flac"] and index["rows"] == 3
    assert "No transcript for" in failures["19-198-0002.flac"]
    assert "dictionary lacks ['bdellium']" in failures["20-198-0001.flac"]
    rows = rows_of(spoken_tree / "sphinx")
    for row in rows:
        assert len(row["words"]) == len(row["text"].split()) and row["character_starts"] is None
        spans = np.array(row["word_spans"])
        assert (spans[:, 1] >= spans[:, 0]).all() and (spans[1:, 0] >= spans[:-1, 1]).all()
        assert spans[-1, 1] <= len(row["units"])
    two = job(spoken_tree, "sphinx-two", **options)
    two.prepare_output()
    two.run_process(1, 2), two.run_process(0, 2)
    two.write_index()
    assert rows_of(spoken_tree / "sphinx-two") == rows
    with pytest.raises(ValueError, match="another extraction configuration .*transcripts_sha256"):
        (transcripts / "19-198-0000.lab").write_text("IN THE BEGINNING")
        run_extraction(job(spoken_tree, "sphinx", **options))


def test_the_ctc_aligner_adds_character_times(spoken_tree, tmp_path):
    from test_ctc_aligner import tiny_ctc_model

    checkpoint = tiny_ctc_model(tmp_path / "ctc")
    index = run_extraction(job(spoken_tree, "ctc", aligner=f"ctc:{checkpoint}"))
    assert index["rows"] == 5 and index["failures"] == []
    for row in rows_of(spoken_tree / "ctc"):
        assert len(row["character_starts"]) == len(row["words"])
        assert [len(c) for c in row["character_starts"]] == [len(w) for w in row["words"]]
    with pytest.raises(ValueError, match="either --alignments .* or --aligner, not both"):
        job(spoken_tree, "both", aligner="pocketsphinx", alignments=spoken_tree / "mfa")
    with pytest.raises(ValueError, match="use 'pocketsphinx' or 'ctc:<CTC model>'"):
        run_extraction(job(spoken_tree, "bad", aligner="mfa"))
