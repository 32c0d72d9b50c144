"""Speech out, timed on this machine: the unit vocoder's real-time factor, and TTS through the cached LMs.

1. Vocoder real-time factor (synthesis seconds per second of audio; below 1 is faster than real time) for each
   preset, on 10 s of 50 Hz units at batch 1, median of three runs after a warm-up; `--vocoder DIR` adds a
   trained one.
2. TTS: a 16-token prompt (13 text pieces, then the speech marker), continued with `--speech_tokens` speech units
   (speech-only logits processor) by the cached `small` LST and the cached Llama baseline of its global shape
   (random weights: speed does not depend on them), at batch 1 and 8. The two are timed alternately, three
   times each, and the medians compared, so a busy machine slows both alike. Reported: tokens/s, LST/Llama,
   and the global steps each spent (LST: one per patch of `patch_size` units).
3. End to end: (LM + `small` vocoder) seconds per second of speech, for each LM at batch 1.

    python benchmarks/bench_speech_out.py [--speech_tokens 250] [--vocoder vocoder/vocoder]
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import torch
from bench_generation import NUM_UNITS, SPEECH_START, models, speech_prompt
from bench_tokenizer import median_seconds
from transformers import AutoModel, LogitsProcessorList

import lst_speech.tokenization.vocoder  # noqa: F401  (registers the vocoder with AutoModel)
from lst_speech.modeling_lst.modality import ModalityLogitsProcessor
from lst_speech.tokenization.vocoder import PRESETS, UnitHifiGanVocoder, UnitVocoderConfig

AUDIO_SECONDS = 10.0


def vocoder_rows(extra: str | None) -> dict[str, float]:
    vocoders = {}
    for preset in PRESETS:
        torch.manual_seed(0)
        vocoders[preset] = UnitHifiGanVocoder(UnitVocoderConfig.from_preset(preset, num_units=NUM_UNITS)).eval()
    if extra:
        vocoders[f"trained ({extra})"] = AutoModel.from_pretrained(extra).eval()
    print(f"Vocoder real-time factor, {AUDIO_SECONDS:.0f} s of units, batch 1, {torch.get_num_threads()} threads:")
    print("  vocoder                     parameters   seconds    RTF")
    factors = {}
    for name, vocoder in vocoders.items():
        frames = int(AUDIO_SECONDS * vocoder.config.frame_rate)
        units = np.random.default_rng(0).integers(0, vocoder.config.num_units, frames)
        with torch.no_grad():
            vocoder.synthesize(units[:50])  # warm-up
            elapsed = median_seconds(lambda: vocoder.synthesize(units), repeats=3)
        factors[name] = elapsed / AUDIO_SECONDS
        parameters = sum(p.numel() for p in vocoder.parameters())
        print(f"  {name:<26} {parameters / 1e6:>9.2f}M {elapsed:>9.2f} {factors[name]:>6.3f}")
    return factors


def tts_rows(speech_tokens: int, batch_sizes: list[int]) -> dict[str, float]:
    torch.manual_seed(0)
    lst, llama = models("small")
    vocabulary = SPEECH_START + NUM_UNITS
    allowed = torch.zeros(vocabulary, dtype=torch.bool)
    allowed[SPEECH_START:] = True
    speech_only = LogitsProcessorList([ModalityLogitsProcessor(allowed)])
    kwargs = dict(max_new_tokens=speech_tokens, do_sample=False, logits_processor=speech_only)  # no EOS allowed
    print(f"\nTTS: {speech_tokens} speech units after a text prompt, cached, `small` LST vs its Llama baseline, "
          "median of 3 alternated runs:")
    print("  batch   LST tok/s   Llama tok/s   LST/Llama   global steps LST / Llama")
    seconds_per_token = {}
    for batch in batch_sizes:
        prompt = speech_prompt(batch)
        with torch.no_grad():
            for model in (lst, llama):
                model.generate(prompt, max_new_tokens=8, do_sample=False)  # warm-up
            times = {"lst": [], "llama": []}
            for _ in range(3):
                for name, model in (("lst", lst), ("llama", llama)):
                    times[name].append(median_seconds(lambda m=model: m.generate(prompt, **kwargs), repeats=1))
        lst_time, llama_time = statistics.median(times["lst"]), statistics.median(times["llama"])
        tokens = batch * speech_tokens
        steps = math.ceil(speech_tokens / lst.config.patch_size)
        print(f"  {batch:>5} {tokens / lst_time:>11,.1f} {tokens / llama_time:>13,.1f} {llama_time / lst_time:>10.2f}x"
              f"   {steps} / {speech_tokens}")
        if batch == 1:
            seconds_per_token = {"lst": lst_time / speech_tokens, "llama": llama_time / speech_tokens}
    return seconds_per_token


def end_to_end_rows(seconds_per_token: dict[str, float], vocoder_factor: float, frame_rate: int) -> None:
    print(f"\nEnd to end TTS (LM + `small` vocoder), batch 1, seconds per second of speech at {frame_rate} units/s:")
    for name, per_token in seconds_per_token.items():
        lm = per_token * frame_rate
        print(f"  {name:<6} LM {lm:.3f} + vocoder {vocoder_factor:.3f} = {lm + vocoder_factor:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech_tokens", type=int, default=250)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--vocoder", help="also time a trained vocoder (a save_pretrained folder)")
    arguments = parser.parse_args()
    factors = vocoder_rows(arguments.vocoder)
    seconds_per_token = tts_rows(arguments.speech_tokens, arguments.batch_sizes)
    end_to_end_rows(seconds_per_token, factors["small"], UnitVocoderConfig.from_preset("small").frame_rate)


if __name__ == "__main__":
    main()
