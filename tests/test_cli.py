"""`lst eval` end to end on a saved tiny model: JSON and markdown out."""

from __future__ import annotations

import json
import os

import pytest
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.training.cli.main import main

from test_multiple_choice_data import STORY_CLOZE_CSV


def test_lst_eval_mc_writes_json_and_markdown(tokenizer, tmp_path):
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (tmp_path / "cloze.csv").write_text(STORY_CLOZE_CSV)
    main(["eval", "mc", "--model", str(model_dir), "--data", str(tmp_path / "cloze.csv"), "--format", "storycloze",
          "--context_gain", "--output", str(tmp_path / "out" / "storycloze")])
    report = json.loads((tmp_path / "out" / "storycloze.json").read_text())
    result = report["results"]["T->T"]
    normalizations = ("sum", "per_token", "per_unit", "context_gain")
    assert set(result) == {"num_items"} | {f"accuracy_{n}{ci}" for n in normalizations for ci in ("", "_ci95")}
    assert result["num_items"] == 3
    for normalization in normalizations:
        accuracy, (low, high) = result[f"accuracy_{normalization}"], result[f"accuracy_{normalization}_ci95"]
        assert accuracy in (0.0, 1 / 3, 2 / 3, 1.0) and 0.0 <= low <= accuracy <= high <= 1.0
        assert high - low > 0.4  # three items tell little, and the interval says so
    markdown = (tmp_path / "out" / "storycloze.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| T->T |"))
    assert row.count("[") == 4 and "accuracy_context_gain" in markdown
    main(["eval", "mc", "--model", str(model_dir), "--data", str(tmp_path / "cloze.csv"), "--format", "storycloze",
          "--context_gain", "--no_prompt_cache", "--output", str(tmp_path / "out" / "full_forwards")])
    assert json.loads((tmp_path / "out" / "full_forwards.json").read_text())["results"]["T->T"] == result


def test_lst_help_answers_without_importing_torch():
    """`lst --help` and `lst eval --help` import no model code (they took 6-7 s when they did)."""
    import subprocess
    import sys

    script = ("import sys\nfrom lst_speech.training.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print('torch' in sys.modules)")
    for argv in ([], ["eval"], ["data"]):
        result = subprocess.run([sys.executable, "-c", script, *argv, "--help"], capture_output=True, text=True,
                                check=True)
        assert result.stdout.strip().endswith("False"), (argv, result.stdout, result.stderr)
        assert "usage: lst" in result.stdout
    full = subprocess.run([sys.executable, "-c", script, "eval", "mc", "--help"], capture_output=True, text=True)
    assert "--context_gain" in full.stdout


@pytest.mark.slow
def test_lst_eval_cra_and_spoken_mc(tokenizer, tmp_path, sample_verses):
    from lst_speech.tokenization.corpora.spoken_corpus import build_spoken_corpus
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    synthesizer = EspeakSynthesizer()
    # The test tokenizer has 50 units: fit a 50-unit extractor so the corpus's units fit its vocabulary.
    extractor = MfccUnitExtractor(50).fit([synthesizer.synthesize(v).waveform for v in sample_verses[:20]], 22050)
    extractor.save_pretrained(tmp_path / "extractor")
    build_spoken_corpus(sample_verses[:8], synthesizer, extractor, progress=False).save_to_disk(tmp_path / "corpus")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    main(["eval", "cra", "--model", str(model_dir), "--corpus", str(tmp_path / "corpus"), "--num", "8",
          "--output", str(tmp_path / "cra")])
    results = json.loads((tmp_path / "cra.json").read_text())["results"]
    assert set(results) == {"u2u", "u2t", "t2u", "t2t"} and results["u2t"]["num_contexts"] == 8

    (tmp_path / "cloze.csv").write_text(STORY_CLOZE_CSV)
    main(["eval", "mc", "--model", str(model_dir), "--data", str(tmp_path / "cloze.csv"), "--format",
          "topic-storycloze", "--directions", "S->S", "T->S", "--extractor", str(tmp_path / "extractor"),
          "--output", str(tmp_path / "tsc")])
    assert set(json.loads((tmp_path / "tsc.json").read_text())["results"]) == {"S->S", "T->S"}


def test_lst_units_fit_extract_and_corpus(tmp_path, sample_verses):
    import datasets
    import numpy as np
    import soundfile

    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

    synthesizer = EspeakSynthesizer()
    paths = []
    for index, verse in enumerate(sample_verses[:6]):
        speech = synthesizer.synthesize(verse)
        paths.append(tmp_path / f"utt{index}.wav")
        soundfile.write(paths[-1], speech.waveform, speech.sampling_rate)
        words = [{"word": w, "start": s, "end": e} for w, (s, e) in zip(speech.words, speech.word_times)]
        (tmp_path / f"utt{index}.json").write_text(json.dumps(words))
    main(["units", "fit", "--audio", *map(str, paths), "--num_units", "20", "--output", str(tmp_path / "extractor")])
    main(["units", "extract", "--extractor", str(tmp_path / "extractor"), "--audio", *map(str, paths),
          "--alignments", str(tmp_path), "--deduplicate", "--output", str(tmp_path / "units.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(set(r) == {"path", "duration", "units", "durations", "text", "word_spans", "words"}
                                  for r in rows)
    assert all(r["text"] == " ".join(r["words"]) for r in rows)
    frames = sum(rows[0]["durations"])
    assert rows[0]["word_spans"][-1][1] <= frames and max(max(r["units"]) for r in rows) < 20
    assert np.all(np.diff(rows[0]["units"]) != 0)

    (tmp_path / "texts.txt").write_text("\n".join(sample_verses[:5]) + "\n\n")
    main(["corpus", "--texts", str(tmp_path / "texts.txt"), "--num_units", "16", "--output", str(tmp_path / "corpus")])
    corpus = datasets.load_from_disk(str(tmp_path / "corpus"))
    assert corpus["text"] == sample_verses[:5]
    assert (tmp_path / "corpus" / "extractor" / "centroids.npy").exists()
    card = (tmp_path / "corpus" / "README.md").read_text()  # provenance and contents, as a DatasetCard
    assert "espeak-ng" in card and "texts.txt" in card and "**utterances**: 5" in card
    assert "MFCC k-means, 16 units" in card


def test_lst_data_builds_packed_sequences_with_a_card(tokenizer, tmp_path, sample_verses):
    import datasets
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for verse in sample_verses[:60]:
        words = verse.split()
        ends = np.cumsum(rng.integers(2, 5, len(words)))
        rows.append({"text": verse, "words": words, "units": rng.integers(0, 50, int(ends[-1])).tolist(),
                     "word_spans": np.stack([np.r_[0, ends[:-1]], ends], 1).tolist()})
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "corpus")
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "text.txt").write_text("\n".join(sample_verses[100:300]))
    main(["data", "--recipe", "lst", "--tokenizer", str(tmp_path / "tokenizer"), "--paired", str(tmp_path / "corpus"),
          "--text", str(tmp_path / "text.txt"), "--sequence_length", "64", "--output", str(tmp_path / "packed")])
    packed = datasets.load_from_disk(str(tmp_path / "packed"))
    assert set(packed.column_names) == {"input_ids", "modality_mask", "word_spans", "silence_spans", "piece_spans",
                                       "document_starts", "packed_patch_size"}
    assert set(packed.unique("packed_patch_size")) == {4}  # the lst recipe packs by static patches of 4
    card = (tmp_path / "packed" / "README.md").read_text()
    assert "**static patch size**: 4" in card and "**recipe**: lst" in card and "realised source shares" in card and "| units not deduplicated | paper |" in card


@pytest.mark.slow
def test_bad_input_ends_in_one_line_naming_the_problem(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "lst_speech.training.cli.main", "push", str(tmp_path), "--repo_id", "org/x",
                             "--dry_run"], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("lst push: error: ") and "is not a release folder" in \
        result.stderr and "Traceback" not in result.stderr
    debug = subprocess.run([sys.executable, "-m", "lst_speech.training.cli.main", "push", str(tmp_path), "--repo_id", "org/x"],
                           capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "LST_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr
