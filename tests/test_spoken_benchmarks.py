"""The released spoken benchmarks: each reader on a tiny fixture laid out as its release is, and each scoring rule
on fixed scores computed by hand (ties included)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile

from lst_speech.evaluation.benchmarks import common
from lst_speech.evaluation.benchmarks.common import Pair, Stimulus, pair_items, pair_outcomes
from lst_speech.evaluation.benchmarks.salmon import SUBSETS, load_salmon
from lst_speech.evaluation.benchmarks.sblimp import load_sblimp, summarize_sblimp
from lst_speech.evaluation.benchmarks.storycloze import load_story_cloze
from lst_speech.evaluation.benchmarks.swuggy import load_swuggy, summarize_swuggy
from lst_speech.evaluation.likelihood import ContinuationScores
from lst_speech.evaluation.multiple_choice import MultipleChoiceItem

RATE = 16000


def tone(seed: int, seconds: float = 0.3) -> np.ndarray:
    """A short distinct sound: a sine whose pitch depends on `seed`, with a little noise."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (150 + 40 * seed) * time) + 0.01 * rng.standard_normal(time.size)).astype(
        np.float32)


def write_wav(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, tone(seed), RATE)


def wav_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, tone(seed), RATE, format="WAV")
    return buffer.getvalue()


# ZeroSpeech 2021 (zerospeech2021-dataset.zip), as zerospeech2021 `lexical.py` `load_data` reads it: lexical/dev/ holds
# a wav per stimulus, named by a random 11-letter id (zerospeech/benchmarks docs/sLM21.md), and gold.csv, a row per
# wav; a word and its non-word share `id` and `voice`; non-words have no orthographic `word` (zerospeech/benchmarks
# then reads `phones`). Rows are not in pair order.
LEXICAL_GOLD = """filename,id,voice,frequency,word,phones,length,correct
ujzPdeIgxLd,1,Alex,0,wuggle,w ah g ah l,5,1
GncfBAepfJB,1,Alex,0,,w ah b ah l,5,0
dKhoOOLdKLz,1,Bruce,0,wuggle,w ah g ah l,5,1
docJisAjIhK,2,Alex,3,kettle,k eh t ah l,5,1
tJRlgLKOmxg,2,Alex,3,,k eh p ah l,5,0
JTeKdNnFRIB,1,Bruce,0,,w ah b ah l,5,0
XuDLDxtpYlS,2,Bruce,3,kettle,k eh t ah l,5,1
XpfKtHFvUCs,2,Bruce,3,,k eh p ah l,5,0
MehGAkWvjFA,3,Alex,150,the,dh ah,2,1
cQeWJKYuvSw,3,Alex,150,,dh iy,2,0
MFLZDefrESQ,3,Bruce,150,the,dh ah,2,1
edUStPKRCsT,3,Bruce,150,,dh iy,2,0
"""

# syntactic/dev/gold.csv (zerospeech2021 `syntactic.py` `load_data`): a row per wav; the k-th correct row pairs with
# the k-th incorrect one, and the two share type, subtype, id and voice (ids repeat across subtypes).
SYNTACTIC_GOLD = """filename,id,voice,type,subtype,transcription,correct
yQwbDwkNhFd,0,Alex,agreement,across_noun,the dogs bark,1
nXsiVpzzFfk,0,Alex,agreement,across_noun,the dogs barks,0
CzJriBJrTAw,0,Bruce,agreement,across_noun,the dogs bark,1
RyojfljoQoa,0,Bruce,agreement,across_noun,the dogs barks,0
FLlqsajAIxN,0,Alex,agreement,simple,a cat sleeps,1
KuiSGNPRVdD,0,Alex,agreement,simple,a cat sleep,0
XRZJzzzzgEO,0,Bruce,agreement,simple,a cat sleeps,1
zdmenCkhvMd,0,Bruce,agreement,simple,a cat sleep,0
gaKjIgxNben,5,Alex,island,wh,what did you see,1
NyjOqwMxEhh,5,Alex,island,wh,what did you see it,0
FDEEtfjgVvV,5,Bruce,island,wh,what did you see,1
qESkHbnHxjS,5,Bruce,island,wh,what did you see it,0
"""


def row_files(gold: str) -> list[str]:
    """The wav names of a gold.csv's rows, in file order."""
    return [f"{line.split(',')[0]}.wav" for line in gold.splitlines()[1:]]


LEXICAL_FILES, SYNTACTIC_FILES = row_files(LEXICAL_GOLD), row_files(SYNTACTIC_GOLD)


def zerospeech_release(root, task: str, gold: str):
    """`root/<task>/dev/` with gold.csv and a wav per row, as the ZeroSpeech 2021 zip unpacks."""
    folder = root / task / "dev"
    folder.mkdir(parents=True)
    (folder / "gold.csv").write_text(gold)
    for seed, line in enumerate(gold.splitlines()[1:]):
        write_wav(folder / f"{line.split(',')[0]}.wav", seed)
    return root


def fixed_outcomes(monkeypatch, pairs, scores_by_file: dict[str, float]) -> dict[str, np.ndarray]:
    """The outcomes `pair_outcomes` gives when each file has the given log-likelihood (a fake scorer, one token)."""
    def scorer(model, tokenizer, requests, batch_size, progress):
        values = np.array([scores_by_file[ending[0]] for _, ending in requests], dtype=float)
        return ContinuationScores(values, np.ones_like(values), np.ones_like(values))

    monkeypatch.setattr(common, "continuation_log_likelihoods", scorer)
    return pair_outcomes(None, None, [MultipleChoiceItem([], [[p.positive.name], [p.negative.name]], 0, p.id)
                                      for p in pairs])


def test_pair_outcomes_count_a_tie_as_half_under_every_normalization(monkeypatch):
    # Pair a: the positive wins on the sum and per unit, loses per token. Pair b: a tie on the sum and per unit.
    def scorer(model, tokenizer, requests, batch_size, progress):
        assert [ending for _, ending in requests] == [["p1"], ["n1"], ["p2"], ["n2"]]
        return ContinuationScores(np.array([-4.0, -5.0, -3.0, -3.0]), np.array([4.0, 10.0, 3.0, 1.0]),
                                  np.array([8.0, 2.0, 3.0, 3.0]))

    monkeypatch.setattr(common, "continuation_log_likelihoods", scorer)
    items = [MultipleChoiceItem([], [["p1"], ["n1"]], 0, "a"), MultipleChoiceItem([], [["p2"], ["n2"]], 0, "b")]
    outcomes = pair_outcomes(None, None, items)
    assert outcomes["sum"].tolist() == [1.0, 0.5]  # -4 > -5; -3 == -3
    assert outcomes["per_token"].tolist() == [0.0, 1.0]  # -1 < -0.5; -1 > -3
    assert outcomes["per_unit"].tolist() == [1.0, 0.5]  # -0.5 > -2.5; -1 == -1


def test_swuggy_reads_the_release_and_pairs_by_id_and_voice(tmp_path):
    pairs = load_swuggy(str(zerospeech_release(tmp_path, "lexical", LEXICAL_GOLD)))
    assert len(pairs) == 6
    names = {(p.id, p.fields["voice"]): (p.positive.name.rsplit("/", 1)[1], p.negative.name.rsplit("/", 1)[1])
             for p in pairs}
    f = LEXICAL_FILES  # rows 1-12
    assert names == {("1", "Alex"): (f[0], f[1]), ("1", "Bruce"): (f[2], f[5]), ("2", "Alex"): (f[3], f[4]),
                     ("2", "Bruce"): (f[6], f[7]), ("3", "Alex"): (f[8], f[9]), ("3", "Bruce"): (f[10], f[11])}
    assert pairs[0].positive.text == "wuggle" and pairs[0].negative.text is None  # non-words have no spelling
    assert len(load_swuggy(str(tmp_path / "lexical" / "dev"))) == 6  # the split folder itself works too


def test_swuggy_scores_as_the_zerospeech_toolkit(tmp_path, monkeypatch):
    pairs = load_swuggy(str(zerospeech_release(tmp_path, "lexical", LEXICAL_GOLD)))
    # Pair 1 (oov): Alex right, Bruce a tie -> 0.75. Pair 2 (frequency 3): both wrong -> 0. Pair 3 (150): right -> 1.
    scores = {f"{tmp_path}/lexical/dev/{name}": value for name, value in zip(
        LEXICAL_FILES, [-1, -2, -3, -2, -1, -3, -5, -4, -1, -2, -1, -2])}
    row = summarize_swuggy(pairs, fixed_outcomes(monkeypatch, pairs, scores))
    assert (row["num_pairs"], row["num_voiced_pairs"]) == (3, 6)
    assert row["accuracy_sum"] == pytest.approx((0.75 + 0 + 1) / 3)  # lexical_all
    assert row["in_vocab_accuracy_sum"] == pytest.approx(0.5)  # lexical_invocab: pairs 2 and 3
    assert row["by_frequency_sum"] == [{"frequency": "oov", "n": 1, "score": 0.75},
                                       {"frequency": "1-5", "n": 1, "score": 0.0},
                                       {"frequency": "6-20", "n": 0, "score": None},
                                       {"frequency": "21-100", "n": 0, "score": None},
                                       {"frequency": ">100", "n": 1, "score": 1.0}]
    assert row["by_length_sum"] == [{"length": 2.0, "n": 1, "score": 1.0}, {"length": 5.0, "n": 2, "score": 0.375}]
    low, high = row["accuracy_sum_ci95"]
    assert 0.0 <= low <= row["accuracy_sum"] <= high <= 1.0


def test_swuggy_refuses_a_pair_without_its_twin_and_a_missing_file(tmp_path):
    zerospeech_release(tmp_path, "lexical", LEXICAL_GOLD)
    gold = tmp_path / "lexical" / "dev" / "gold.csv"
    gold.write_text(LEXICAL_GOLD.replace("JTeKdNnFRIB,1,Bruce,0,,w ah b ah l,5,0\n", ""))
    with pytest.raises(ValueError, match=r"'id': '1', 'voice': 'Bruce'.* 1 correct and 0 incorrect"):
        load_swuggy(str(tmp_path))
    gold.write_text(LEXICAL_GOLD)
    (tmp_path / "lexical" / "dev" / LEXICAL_FILES[4]).unlink()
    with pytest.raises(FileNotFoundError, match=rf"gold.csv:6: its file {LEXICAL_FILES[4]}"):
        load_swuggy(str(tmp_path))
    gold.write_text(LEXICAL_GOLD.replace("frequency,", "freq,"))
    with pytest.raises(ValueError, match=r"lacks the columns \['frequency'\]"):
        load_swuggy(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no lexical/dev/gold.csv"):
        load_swuggy(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"no lexical/test/gold.csv .*gold.csv for dev only"):
        load_swuggy(str(tmp_path), split="test")  # the organisers keep the test gold


def test_swuggy_pairs_every_word_with_every_non_word_of_its_id_and_voice(tmp_path):
    # zerospeech/benchmarks merges words and non-words on (voice, id): a second non-word row of pair 3 in Alex's
    # voice makes two Alex pairs for it, each counted in that pair's mean over rows.
    extra = "QzWxEcRvTbY,3,Alex,150,,dh uw,2,0\n"
    pairs = load_swuggy(str(zerospeech_release(tmp_path, "lexical", LEXICAL_GOLD + extra)))
    alex = [p.negative.name.rsplit("/", 1)[1] for p in pairs if (p.id, p.fields["voice"]) == ("3", "Alex")]
    assert alex == [LEXICAL_FILES[9], "QzWxEcRvTbY.wav"] and len(pairs) == 7


def test_swuggy_frequency_bands_and_in_vocab_score_follow_the_toolkit():
    # pandas.cut(frequency, [0, 1, 5, 20, 100, inf], right=False): 5 falls in "6-20", 20 in "21-100", 100 in ">100";
    # an empty frequency is in no band (and not in vocabulary) but counts in the overall accuracy.
    frequencies = {"a": "0", "b": "1", "c": "4", "d": "5", "e": "20", "f": "100", "g": ""}
    scores = {"a": 1.0, "b": 0.0, "c": 0.5, "d": 1.0, "e": 1.0, "f": 0.0, "g": 1.0}
    pairs = [Pair(i, Stimulus(f"{i}w", None), Stimulus(f"{i}n", None),
                  fields={"voice": "Alex", "frequency": f, "length": "3"}) for i, f in frequencies.items()]
    row = summarize_swuggy(pairs, {"sum": np.array([scores[i] for i in frequencies])})
    assert [(b["frequency"], b["n"]) for b in row["by_frequency_sum"]] == [
        ("oov", 1), ("1-5", 2), ("6-20", 1), ("21-100", 1), (">100", 1)]
    assert row["accuracy_sum"] == pytest.approx(4.5 / 7)
    bands = [b for b in row["by_frequency_sum"] if b["frequency"] != "oov"]  # leaderboard.py `_score_invocab`
    weighted = np.average([b["score"] for b in bands], weights=[b["n"] for b in bands])
    assert row["in_vocab_accuracy_sum"] == pytest.approx(weighted) == pytest.approx(2.5 / 5)


def test_sblimp_scores_the_mean_over_pairs_not_over_types(tmp_path, monkeypatch):
    pairs = load_sblimp(str(zerospeech_release(tmp_path, "syntactic", SYNTACTIC_GOLD)))
    assert len(pairs) == 6 and pairs[0].positive.text == "the dogs bark"
    assert pairs[0].fields["negative_text"] == "the dogs barks"
    # agreement/across_noun/0: right in both voices -> 1; agreement/simple/0 (same id, another subtype): right, wrong
    # -> 0.5; island/wh/5: wrong, tie -> 0.25.
    scores = {f"{tmp_path}/syntactic/dev/{name}": value for name, value in zip(
        SYNTACTIC_FILES, [-1, -2, -1, -2, -1, -2, -2, -1, -2, -1, -3, -3])}
    row = summarize_sblimp(pairs, fixed_outcomes(monkeypatch, pairs, scores))
    assert row["num_pairs"] == 3
    assert row["accuracy_sum"] == pytest.approx((1 + 0.5 + 0.25) / 3)  # not (0.75 + 0.25) / 2 over types
    assert row["by_type_sum"] == [{"type": "agreement", "n": 2, "score": 0.75}, {"type": "island", "n": 1,
                                                                                 "score": 0.25}]


def test_sblimp_pairs_rows_by_position_as_the_toolkit_does(tmp_path):
    lines = SYNTACTIC_GOLD.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    correct = [r for r in rows if r.rstrip().endswith(",1")]
    incorrect = [r for r in rows if r.rstrip().endswith(",0")]
    # All correct rows, then all incorrect rows in the same order: the k-th with the k-th, the same six pairs.
    zerospeech_release(tmp_path / "grouped", "syntactic", header + "".join(correct + incorrect))
    pairs = load_sblimp(str(tmp_path / "grouped"))
    assert [(p.positive.name.rsplit("/", 1)[1], p.negative.name.rsplit("/", 1)[1]) for p in pairs] == [
        (f"{c.split(',')[0]}.wav", f"{n.split(',')[0]}.wav") for c, n in zip(correct, incorrect)]
    # Two incorrect rows swapped: the toolkit would pair Alex's sentence with Bruce's twin and keep Alex's labels.
    swapped = incorrect[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    zerospeech_release(tmp_path / "swapped", "syntactic", header + "".join(correct + swapped))
    with pytest.raises(ValueError, match=r"lines 2 and 8 are the toolkit's pair .* differ in"):
        load_sblimp(str(tmp_path / "swapped"))


def test_story_cloze_release_folder_in_story_order(tmp_path):
    root = tmp_path / "sSC"
    for seed, story in enumerate(["10", "2", "1"]):
        write_wav(root / f"{story}_correct.wav", 2 * seed)
        write_wav(root / f"{story}_incorrect.wav", 2 * seed + 1)
    pairs = load_story_cloze(str(root))
    assert [p.id for p in pairs] == ["1", "2", "10"] and all(p.prompt is None for p in pairs)
    assert pairs[0].positive.name.endswith("1_correct.wav") and pairs[0].negative.name.endswith("1_incorrect.wav")
    items = pair_items(pairs, "S->S", {s.name: np.array([1, 2]) for p in pairs for s in (p.positive, p.negative)})
    assert items[0].context == [] and items[0].label == 0
    with pytest.raises(ValueError, match="has no prompt: a cross-modal direction"):
        pair_items(pairs, "T->S", {})
    (root / "2_incorrect.wav").unlink()
    with pytest.raises(FileNotFoundError, match="2_incorrect.wav is missing"):
        load_story_cloze(str(root))


def test_story_cloze_cross_modal_layout_gives_all_four_directions(tmp_path):
    root = tmp_path / "tSC"
    texts = {"mutual": "Tom went out. It rained.", "correct": "He got wet.", "incorrect": "The cat sang."}
    for seed, (part, text) in enumerate(texts.items()):
        write_wav(root / "speaker1" / f"0_{part}.wav", seed)
        (root / "speaker1" / f"0_{part}.txt").write_text(text + "\n")
    (pair,) = load_story_cloze(str(root))
    assert pair.id == "speaker1/0" and pair.prompt.text == texts["mutual"] and pair.negative.text == "The cat sang."
    units = {s.name: np.array([seed]) for seed, s in enumerate((pair.prompt, pair.positive, pair.negative))}
    expected = {"S->S": ([0], [1], [2]), "T->T": (texts["mutual"], texts["correct"], texts["incorrect"]),
                "S->T": ([0], texts["correct"], texts["incorrect"]),
                "T->S": (texts["mutual"], [1], [2])}
    for direction, (context, positive, negative) in expected.items():
        (item,) = pair_items([pair], direction, units)
        flat = [s if isinstance(s, str) else s.tolist() for s in (item.context[0], item.endings[0][0],
                                                                 item.endings[1][0])]
        assert flat == [context, positive, negative], direction
    write_wav(root / "speaker1" / "1_correct.wav", 7)
    write_wav(root / "speaker1" / "1_incorrect.wav", 8)
    with pytest.raises(ValueError, match="1 of 2 stories have a prompt"):
        load_story_cloze(str(root))


def test_story_cloze_hub_schema_from_a_saved_copy(tmp_path):
    import datasets

    rows = {"positive": [{"bytes": wav_bytes(0), "path": "p0.wav"}, {"bytes": wav_bytes(1), "path": "p1.wav"}],
            "negative": [{"bytes": wav_bytes(2), "path": "n0.wav"}, {"bytes": wav_bytes(3), "path": "n1.wav"}]}
    table = datasets.Dataset.from_dict(rows)
    for column in rows:
        table = table.cast_column(column, datasets.Audio())
    table.save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "parquet").mkdir()
    table.to_parquet(str(tmp_path / "parquet" / "train-00000-of-00001.parquet"))
    for copy in ("saved", "parquet"):
        pairs = load_story_cloze(str(tmp_path / copy))
        assert [p.id for p in pairs] == ["0", "1"]
        waveform, rate = common.read_stimulus_audio(pairs[1].negative)
        assert rate == RATE and np.allclose(waveform, tone(3), atol=1e-4)
    table.remove_columns("negative").save_to_disk(str(tmp_path / "partial"))
    with pytest.raises(ValueError, match=r"lacks the audio columns \['negative'\]"):
        load_story_cloze(str(tmp_path / "partial"))


def salmon_release(root, subsets=SUBSETS, samples: int = 2):
    """`root/<subset>/sample_<i>_<j>.wav` (0 positive, 1 negative) and metadata.json, as salmon_benchmark.zip."""
    for offset, subset in enumerate(subsets):
        for index in range(samples):
            for option in (0, 1):
                write_wav(root / subset / f"sample_{index}_{option}.wav", offset + 2 * index + option)
        # the generation scripts' metadata (data_generation/*.py): a list of {"index": i, ...}; the scorer ignores it
        (root / subset / "metadata.json").write_text(json.dumps([{"index": i, "text": "..."} for i in range(samples)]))
    return root


def test_salmon_release_folder_and_hub_copy(tmp_path):
    import datasets

    root = salmon_release(tmp_path / "salmon", subsets=("speaker_consistency",), samples=3)
    pairs = load_salmon(str(root), "speaker_consistency")
    assert [p.id for p in pairs] == ["0", "1", "2"]
    assert pairs[2].positive.name.endswith("sample_2_0.wav") and pairs[2].negative.name.endswith("sample_2_1.wav")
    with pytest.raises(FileNotFoundError, match="has no gender_consistency/ folder"):
        load_salmon(str(root), "gender_consistency")
    with pytest.raises(ValueError, match="Unknown SALMon subset"):
        load_salmon(str(root), "speaker")
    with pytest.raises(ValueError, match="'all_consistency' pools SALMon's subsets"):
        load_salmon("slprl/SALMon", "all_consistency")  # a Hub config, refused before any download
    (root / "speaker_consistency" / "sample_1_1.wav").unlink()
    with pytest.raises(ValueError, match=r"sample 1 has the options \[0\]"):
        load_salmon(str(root), "speaker_consistency")

    # A copy of the slprl/SALMon repository: <subset>/train-00000-of-00001.parquet with the audio inside.
    table = datasets.Dataset.from_dict({
        "task": ["rir_consistency"] * 2, "ind": [7, 8],
        "positive_audio": [{"bytes": wav_bytes(0), "path": "a.wav"}, {"bytes": wav_bytes(1), "path": "b.wav"}],
        "negative_audio": [{"bytes": wav_bytes(2), "path": "c.wav"}, {"bytes": wav_bytes(3), "path": "d.wav"}]})
    for column in ("positive_audio", "negative_audio"):
        table = table.cast_column(column, datasets.Audio())
    (tmp_path / "hub" / "rir_consistency").mkdir(parents=True)
    table.to_parquet(str(tmp_path / "hub" / "rir_consistency" / "train-00000-of-00001.parquet"))
    pairs = load_salmon(str(tmp_path / "hub"), "rir_consistency")
    assert [p.id for p in pairs] == ["7", "8"]
    assert np.allclose(common.read_stimulus_audio(pairs[0].positive)[0], tone(0), atol=1e-4)


def test_any_saved_extractor_loads(tmp_path):
    from lst_speech.tokenization.feature_extraction_units import UnitFeatureExtractor
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    extractor = MfccUnitExtractor(4).fit([tone(seed, 1.0) for seed in range(3)], RATE)
    extractor.save_pretrained(tmp_path / "units")
    UnitFeatureExtractor.from_unit_extractor(extractor).save_pretrained(tmp_path / "release")
    for folder in ("units", "release"):
        loaded = common.load_extractor(tmp_path / folder)
        assert np.array_equal(loaded(tone(1), RATE), extractor(tone(1), RATE))
    with pytest.raises(FileNotFoundError, match="pass a saved unit extractor's folder"):
        common.load_extractor(tmp_path)


def test_stimuli_without_audio_or_text_are_refused_by_name():
    pair = Pair("0", Stimulus("pos.wav", None, "fine"), Stimulus("neg.txt", None, None))
    with pytest.raises(ValueError, match="needs the text of neg.txt"):
        pair_items([pair], "T->T", {})
    with pytest.raises(ValueError, match="needs the audio of pos.wav"):
        pair_items([pair], "S->S", {})


def test_lst_eval_spoken_runs_each_benchmark_from_its_release(tokenizer, tmp_path, capsys):
    import torch

    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
    from lst_speech.training.cli.main import main

    torch.manual_seed(0)
    model = tmp_path / "model"
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(model)
    tokenizer.save_pretrained(model)
    # The test tokenizer has 50 units, so the extractor makes 50.
    MfccUnitExtractor(50).fit([tone(seed, 1.0) for seed in range(8)], RATE).save_pretrained(tmp_path / "units")
    zerospeech = zerospeech_release(tmp_path / "zr2021", "lexical", LEXICAL_GOLD)
    zerospeech_release(zerospeech, "syntactic", SYNTACTIC_GOLD)
    cloze = tmp_path / "tSC"
    for story in range(2):
        for seed, (part, text) in enumerate({"mutual": "Tom went out.", "correct": "He got wet.",
                                              "incorrect": "The cat sang."}.items()):
            write_wav(cloze / f"{story}_{part}.wav", 3 * story + seed)
            (cloze / f"{story}_{part}.txt").write_text(text)
    salmon = salmon_release(tmp_path / "salmon", subsets=("speaker_consistency", "rir_consistency"))
    common_arguments = ["--extractor", str(tmp_path / "units"), "--model", str(model)]

    def run(benchmark, data, *extra):
        main(["eval", "spoken", "--benchmark", benchmark, "--data", str(data), *extra, *common_arguments,
              "--output", str(tmp_path / "reports" / benchmark)])
        return json.loads((tmp_path / "reports" / f"{benchmark}.json").read_text())["results"]

    lexical = run("swuggy", zerospeech)["S->S"]
    assert (lexical["num_pairs"], lexical["num_voiced_pairs"]) == (3, 6)
    assert [band["n"] for band in lexical["by_frequency_per_token"]] == [1, 1, 0, 0, 1]
    assert 0.0 <= lexical["in_vocab_accuracy_sum_ci95"][0] <= lexical["in_vocab_accuracy_sum"] <= 1.0
    syntactic = run("sblimp", zerospeech)["S->S"]
    assert syntactic["num_pairs"] == 3 and {t["type"] for t in syntactic["by_type_sum"]} == {"agreement", "island"}
    stories = run("tstorycloze", cloze, "--directions", "S->S", "T->T", "S->T", "T->S")
    assert set(stories) == {"S->S", "T->T", "S->T", "T->S"}
    assert all(row["num_pairs"] == 2 and row["accuracy_per_unit"] in (0.0, 0.25, 0.5, 0.75, 1.0)
               for row in stories.values())
    subsets = run("salmon", salmon, "--subsets", "speaker_consistency", "rir_consistency")
    assert set(subsets) == {"speaker_consistency", "rir_consistency"} and subsets["rir_consistency"]["num_pairs"] == 2
    markdown = (tmp_path / "reports" / "salmon.md").read_text()
    assert "| rir_consistency |" in markdown and "accuracy_per_token" in markdown

    capsys.readouterr()
    with pytest.raises(SystemExit) as error:
        run("salmon", salmon)  # all eight subsets by default; the fixture has two
    assert error.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("lst eval: error: ") and "has no bg_alignment/ folder" in message


def test_a_hub_id_offline_or_a_missing_folder_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="Could not load the Hub dataset slprl/SALMon .*pass a local copy"):
        load_salmon("slprl/SALMon", "speaker_consistency")
    with pytest.raises(FileNotFoundError, match="no such folder, and not a Hub dataset id"):
        load_story_cloze(str(tmp_path / "not" / "here"))
