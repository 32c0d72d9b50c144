"""Training and held-out utterances for the unit vocoder: audio, its unit frames and (for scoring) its text.

Sources: a directory of audio files (with `<stem>.txt` transcripts beside them when the held-out part is to be
scored for intelligibility); a directory of recordings with a transcript file (`name: text` lines or CSV, as
`lst corpus --transcripts` reads it; the installed Asterisk prompts are one), held out by prompt
(`transcript_files.held_out_by_prompt`: about one prompt in ten, by a hash of its name, the split every model
trained on the prompts uses); or the built-in corpus, KJV verses spoken by espeak-ng (held-out verses are the ones after the
training verses, so the vocoder never heard their sentences). Units are the extractor's frame
sequence (not deduplicated): frame i covers samples [i * hop, (i + 1) * hop), the span a unit HiFi-GAN turns it
back into. Prepared utterances are saved with `datasets` so a resumed run does not speak or extract again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import numpy as np
from tqdm.auto import tqdm

from lst_speech.tokenization.speech.audio import prepare_waveform, read_audio
from lst_speech.tokenization.unit_pieces import deduplicate_units

logger = logging.getLogger(__name__)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "text": datasets.Value("string"),
    "audio": datasets.Sequence(datasets.Value("float32")),
    "units": datasets.Sequence(datasets.Value("int32")),
})


def audio_files(directory: str | Path) -> list[Path]:
    """Audio files under `directory` (recursively), in a stable order; none is an error naming the suffixes."""
    files = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ValueError(f"{directory} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
    return files


def utterance(identifier: str, text: str, waveform, sampling_rate: int, extractor) -> dict:
    """One row: the audio at the extractor's rate, cut or zero-padded to whole unit frames, and its units."""
    audio = prepare_waveform(waveform, sampling_rate, extractor.sampling_rate, name=identifier)
    units = extractor(audio, extractor.sampling_rate)
    hop = extractor.sampling_rate // extractor.frame_rate
    audio = np.pad(audio, (0, max(0, len(units) * hop - len(audio))))[: len(units) * hop]
    return {"id": identifier, "text": text, "audio": audio.astype(np.float32), "units": units.astype(np.int32)}


def utterances_from_directory(directory: str | Path, extractor, progress: bool = True):
    for path in tqdm(audio_files(directory), desc="extracting", unit="file", disable=not progress):
        transcript = path.with_suffix(".txt")
        text = transcript.read_text().strip() if transcript.exists() else ""
        waveform, rate = read_audio(path)
        yield utterance(str(path.relative_to(directory)), text, waveform, rate, extractor)


def utterances_from_recordings(items, extractor, progress: bool = True):
    for item in tqdm(items, desc="extracting", unit="file", disable=not progress):
        waveform, rate = read_audio(item.audio)
        yield utterance(item.name, item.text, waveform, rate, extractor)


def spoken_verses(texts: list[str], extractor, first_id: int = 0, progress: bool = True):
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

    synthesizer = EspeakSynthesizer()
    for index, text in enumerate(tqdm(texts, desc="speaking", unit="utt", disable=not progress)):
        speech = synthesizer.synthesize(text)
        yield utterance(f"kjv{first_id + index:06d}", text, speech.waveform, speech.sampling_rate, extractor)


def builtin_texts(num_utterances: int, held_out_utterances: int, max_words: int = 30) -> tuple[list[str], list[str]]:
    from lst_speech.tokenization.corpora.sample_text import kjv_verses

    verses = [v for v in kjv_verses() if len(v.split()) <= max_words]
    if num_utterances + held_out_utterances > len(verses):
        raise ValueError(f"The built-in corpus has {len(verses)} verses of at most {max_words} words; ask for fewer "
                         f"than {num_utterances} + {held_out_utterances}.")
    return verses[:num_utterances], verses[num_utterances: num_utterances + held_out_utterances]


def to_dataset(rows) -> datasets.Dataset:
    return datasets.Dataset.from_list(list(rows), features=FEATURES)


class SegmentBatches:
    """Random crops of `segment_frames` unit frames (and their audio) for each step, drawn from the step number, so a
    resumed run sees exactly the batches an uninterrupted one does. Deduplicated vocoders get each crop's runs
    collapsed into (unit, duration) pairs, padded; shorter utterances are zero-padded with an attention mask."""

    def __init__(self, dataset: datasets.Dataset, hop_length: int, segment_frames: int, batch_size: int,
                 deduplicated: bool, seed: int):
        if len(dataset) == 0:
            raise ValueError("The vocoder has no training utterances.")
        self.units = [np.asarray(u, dtype=np.int64) for u in dataset["units"]]
        self.audio = [np.asarray(a, dtype=np.float32) for a in dataset["audio"]]
        self.hop, self.frames, self.batch_size = hop_length, segment_frames, batch_size
        self.deduplicated, self.seed = deduplicated, seed

    def __call__(self, step: int) -> dict:
        import torch

        rng = np.random.default_rng([self.seed, step])
        rows = rng.integers(len(self.units), size=self.batch_size)
        units, durations, audio = [], [], np.zeros((self.batch_size, self.frames * self.hop), dtype=np.float32)
        for slot, row in enumerate(rows):
            start = int(rng.integers(max(1, len(self.units[row]) - self.frames + 1)))
            crop = self.units[row][start: start + self.frames]
            wave = self.audio[row][start * self.hop: (start + len(crop)) * self.hop]
            audio[slot, : len(wave)] = wave
            kept, runs = deduplicate_units(crop) if self.deduplicated else (crop, np.ones_like(crop))
            units.append(kept)
            durations.append(runs)
        width = max(len(u) for u in units)

        def padded(arrays):
            return torch.from_numpy(np.stack([np.pad(a, (0, width - len(a))) for a in arrays]))

        mask = np.stack([np.arange(width) < len(u) for u in units])
        return {"units": padded(units), "durations": padded(durations),
                "attention_mask": torch.from_numpy(mask), "audio": torch.from_numpy(audio),
                "audio_lengths": torch.tensor([int(d.sum()) * self.hop for d in durations])}
