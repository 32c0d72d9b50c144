"""Train a unit HiFi-GAN vocoder (speech units -> waveform) on any audio, with Accelerate; resumable.

    lst vocoder train --output_dir vocoder/                          # built-in corpus: KJV verses, espeak-ng
    lst vocoder train --output_dir vocoder/ --audio_dir wavs/ --extractor outputs/main_job/extractor
    lst vocoder train --output_dir vocoder/ --asterisk en --extractor outputs/main_job/extractor   # a recorded voice
    accelerate launch -m lst_speech.training.vocoder.train_vocoder --output_dir vocoder/ ...

The extractor defines the units: pass the one your LM's tokenizer was built with (the main job saves it), or
one is fitted on the training audio and saved in `output_dir/extractor`. With a transcript file (`--audio_dir`
with `--transcripts`, or `--asterisk LANG` for the installed Asterisk prompts), the held-out utterances are whole
prompts, about one in `--held_out_every` by a hash of the name (the split every model trained on the prompts
uses), and
`lst vocoder evaluate` scores them against their transcripts. Training is HiFi-GAN's: the mel loss
alone for the first `--adversarial_from_step` steps (a CPU budget learns intelligible speech from it first),
then with the period and scale discriminators' adversarial and feature-matching losses. The vocoder is saved
with `save_pretrained` to `output_dir/vocoder` (loads with `AutoModel.from_pretrained`); checkpoints are atomic
and `--resume_from_checkpoint latest` (the default) continues exactly: each step's crops come from the step.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from lst_speech.tokenization.atomic_files import atomic_directory, write_text_atomically
from lst_speech.tokenization.corpora.recorded_corpus import prompt_split
from lst_speech.tokenization.output_safety import check_apart, claim_directory
from lst_speech.tokenization.vocoder import PRESETS, UnitHifiGanVocoder, UnitVocoderConfig
from lst_speech.tokenization.vocoder.losses import (
    HifiGanDiscriminator,
    LogMelSpectrogram,
    adversarial_loss,
    discriminator_loss,
    duration_loss,
    feature_matching_loss,
)
from lst_speech.training.arguments import check_local_path, parse_script_arguments
from lst_speech.training.checkpoints import load_checkpoint, resolve_checkpoint, save_checkpoint, truncate_log
from lst_speech.training.vocoder.data import (
    SegmentBatches,
    builtin_texts,
    spoken_verses,
    to_dataset,
    utterances_from_directory,
    utterances_from_recordings,
)

logger = logging.getLogger("lst.vocoder")
LOG_FILE = "log.jsonl"
MEL_WEIGHT, DURATION_WEIGHT = 45.0, 1.0  # HiFi-GAN's mel weight; fairseq's duration loss weight
OWNER = "lst vocoder train"
DATA_EXTRACTOR = "extractor.json"  # beside the prepared units: which extractor wrote them


@dataclass
class VocoderTrainingArguments:
    output_dir: str = field(metadata={"help": "data, checkpoints, log.jsonl and the trained vocoder (vocoder/)"})
    audio_dir: str | None = field(default=None, metadata={"help": "audio files (recursively; <stem>.txt beside a "
                                                                   "file is its transcript). Default: the built-in "
                                                                   "corpus spoken by espeak-ng"})
    transcripts: str | None = field(default=None, metadata={"help": "a transcript file of --audio_dir (`name: text` "
                                                                     "lines or CSV, as `lst corpus` reads): prompts "
                                                                     "are held out by name (--held_out_every)"})
    asterisk: str | None = field(default=None, metadata={"help": "the installed Asterisk prompts of this language "
                                                                 "(en), in place of --audio_dir and --transcripts"})
    held_out_fraction: float = field(default=0.05, metadata={"help": "share of --audio_dir (without --transcripts) "
                                                                     "kept out of training: its last files"})
    held_out_every: int = field(default=10, metadata={"help": "with a transcript file: hold out the prompts whose "
                                                              "name's CRC-32 is N-1 modulo N (about one in N)"})
    num_utterances: int = field(default=1000, metadata={"help": "built-in corpus: training verses"})
    held_out_utterances: int = field(default=50, metadata={"help": "built-in corpus: held-out verses"})
    extractor: str | None = field(default=None, metadata={"help": "a saved unit extractor (default: fit MFCC "
                                                                   "k-means on the training audio)"})
    num_units: int = field(default=100, metadata={"help": "units of the fitted extractor"})
    preset: str = field(default="small", metadata={"help": f"generator shape, one of {sorted(PRESETS)}"})
    deduplicated: bool = field(default=False, metadata={"help": "vocode deduplicated units, predicting durations"})
    segment_frames: int = field(default=32, metadata={"help": "unit frames per training crop"})
    batch_size: int = 8
    max_steps: int = 1500
    adversarial_from_step: int = field(default=1000, metadata={"help": "mel loss only before this step"})
    discriminator_width: int = field(default=4, metadata={"help": "channel scale of the discriminators"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak rate, decayed linearly (HiFi-GAN's 2e-4 "
                                                                 "learns the mel phase too slowly for a CPU budget)"})
    save_steps: int = 200
    logging_steps: int = 20
    resume_from_checkpoint: str | None = field(default="latest", metadata={"help": "'latest', a checkpoint-N "
                                                                                   "directory, or 'none'"})
    seed: int = 0

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}.")
        for name in ("segment_frames", "batch_size", "max_steps", "save_steps", "logging_steps", "num_utterances"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        if not 0 <= self.adversarial_from_step:
            raise ValueError(f"--adversarial_from_step must be 0 or more, got {self.adversarial_from_step}.")
        if self.asterisk is not None:
            from lst_speech.tokenization.corpora.transcript_files import asterisk_source

            if self.audio_dir is not None or self.transcripts is not None:
                raise ValueError("Give --asterisk LANG or --audio_dir (with or without --transcripts), not both.")
            self.audio_dir, self.transcripts = map(str, asterisk_source(self.asterisk))
        if self.transcripts is not None and self.audio_dir is None:
            raise ValueError("--transcripts names the prompts of an --audio_dir: pass the folder of recordings too.")
        if self.audio_dir is not None:
            check_local_path(self.audio_dir, "--audio_dir", "a directory of audio files", local_only=True)
        if self.extractor is not None:
            check_local_path(self.extractor, "--extractor", "a saved unit extractor", local_only=True)
        if self.resume_from_checkpoint == "none":
            self.resume_from_checkpoint = None


def prepare_data(args: VocoderTrainingArguments):
    """(train, held_out, extractor): prepared once into `output_dir/data`, and read from there on a resume."""
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

    output = Path(args.output_dir)
    data_dir, extractor_dir = output / "data", output / "extractor"
    prompts = None if args.transcripts is None else prompt_split(args.audio_dir, args.transcripts, args.held_out_every)
    if args.extractor is None and not (extractor_dir / "unit_extractor.json").exists():
        if args.audio_dir is not None:
            from lst_speech.tokenization.speech.audio import read_audio
            from lst_speech.training.vocoder.data import audio_files

            paths = audio_files(args.audio_dir) if prompts is None else [item.audio for item in prompts[0]]
            fit_audio = [read_audio(p) for p in paths[:300]]
            rate = fit_audio[0][1]
            fit_audio = [w for w, r in fit_audio if r == rate]
        else:
            from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

            synthesizer, rate = EspeakSynthesizer(), None
            fit_audio = [synthesizer.synthesize(t).waveform for t in builtin_texts(300, 0)[0]]
            rate = synthesizer.sampling_rate
        extractor = MfccUnitExtractor(args.num_units).fit(fit_audio, rate, seed=args.seed)
        with atomic_directory(extractor_dir, OWNER) as partial:
            extractor.save_pretrained(partial)
        logger.info("fitted %d MFCC k-means units on %d utterances", args.num_units, len(fit_audio))
    extractor = load_unit_extractor(args.extractor or extractor_dir)
    if not (data_dir / "dataset_dict.json").exists():
        if prompts is not None:
            splits = datasets.DatasetDict({"train": to_dataset(utterances_from_recordings(prompts[0], extractor)),
                                           "held_out": to_dataset(utterances_from_recordings(prompts[1], extractor))})
        elif args.audio_dir is not None:
            rows = to_dataset(utterances_from_directory(args.audio_dir, extractor))
            held = max(1, round(args.held_out_fraction * len(rows)))
            if held >= len(rows):
                raise ValueError(f"{args.audio_dir} has {len(rows)} files: too few to hold {held} out for scoring.")
            splits = datasets.DatasetDict({"train": rows.select(range(len(rows) - held)),
                                           "held_out": rows.select(range(len(rows) - held, len(rows)))})
        else:
            train_texts, held_texts = builtin_texts(args.num_utterances, args.held_out_utterances)
            splits = datasets.DatasetDict({"train": to_dataset(spoken_verses(train_texts, extractor)),
                                           "held_out": to_dataset(spoken_verses(held_texts, extractor,
                                                                                len(train_texts)))})
        with atomic_directory(data_dir, OWNER) as partial:
            splits.save_to_disk(str(partial))
            (partial / DATA_EXTRACTOR).write_text(json.dumps({"extractor": os.fspath(args.extractor or extractor_dir),
                                                              "fingerprint": extractor.fingerprint()}) + "\n")
    check_data_extractor(data_dir, extractor, args.extractor or extractor_dir)
    splits = datasets.load_from_disk(str(data_dir))
    return splits["train"], splits["held_out"], extractor


def check_data_extractor(data_dir: Path, extractor, extractor_path) -> None:
    """Units prepared by an earlier run of this folder were written by one extractor: a resume with another (even
    of the same unit count, which numbers its units differently) would train on units it does not make."""
    record_file = data_dir / DATA_EXTRACTOR
    if not record_file.is_file():
        raise ValueError(f"{data_dir} holds units without {DATA_EXTRACTOR} (an older run): which extractor wrote "
                         "them is unknown; train into a new --output_dir.")
    record = json.loads(record_file.read_text())
    if record["fingerprint"] != extractor.fingerprint():
        raise ValueError(f"The units in {data_dir} were made with the extractor {record['extractor']}, not with "
                         f"{os.fspath(extractor_path)}: resume with --extractor {record['extractor']}, or train into a "
                         "new --output_dir.")


def build_vocoder(args, extractor) -> UnitHifiGanVocoder:
    config = UnitVocoderConfig.from_preset(args.preset, num_units=extractor.num_units,
                                           sampling_rate=extractor.sampling_rate, frame_rate=extractor.frame_rate,
                                           deduplicated=args.deduplicated)
    return UnitHifiGanVocoder(config)


def train(args: VocoderTrainingArguments) -> dict:
    accelerator = Accelerator()
    set_seed(args.seed)
    # The run folder holds only this command's files: its checkpoints are rotated and its log cut on a resume.
    check_apart(("--output_dir", args.output_dir), ("--audio_dir", args.audio_dir), ("--transcripts", args.transcripts),
                ("--extractor", args.extractor))
    output_dir = claim_directory(args.output_dir, OWNER)
    train_rows, held_out, extractor = prepare_data(args)
    vocoder = build_vocoder(args, extractor)
    discriminator = HifiGanDiscriminator(args.discriminator_width)
    mel = LogMelSpectrogram(extractor.sampling_rate).to(accelerator.device)
    optimizer_g = torch.optim.AdamW(vocoder.parameters(), args.learning_rate, betas=(0.8, 0.99), weight_decay=0.01)
    optimizer_d = torch.optim.AdamW(discriminator.parameters(), args.learning_rate, betas=(0.8, 0.99),
                                    weight_decay=0.01)
    # HiFi-GAN decays its rate exponentially per epoch; a linear decay over the step budget has no epoch to know
    schedule_g = get_scheduler("linear", optimizer_g, num_warmup_steps=0, num_training_steps=args.max_steps)
    schedule_d = get_scheduler("linear", optimizer_d, num_warmup_steps=0,
                               num_training_steps=max(1, args.max_steps - args.adversarial_from_step))
    vocoder, discriminator, optimizer_g, optimizer_d, schedule_g, schedule_d = accelerator.prepare(
        vocoder, discriminator, optimizer_g, optimizer_d, schedule_g, schedule_d)
    batches = SegmentBatches(train_rows, extractor.sampling_rate // extractor.frame_rate, args.segment_frames,
                             args.batch_size, args.deduplicated, args.seed + accelerator.process_index)
    log_path, step = output_dir / LOG_FILE, 0
    checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
    if checkpoint is not None:
        step = load_checkpoint(accelerator, checkpoint)["step"]
        truncate_log(log_path, step)
        logger.info("resumed from %s at step %d", checkpoint, step)
    write_text_atomically(output_dir / "training_args.json", json.dumps(asdict(args), indent=2))

    started, window = time.perf_counter(), {}
    progress = tqdm(total=args.max_steps, initial=step, desc="vocoder", disable=not accelerator.is_main_process)
    while step < args.max_steps:
        batch = {k: v.to(accelerator.device) for k, v in batches(step).items()}
        adversarial = step >= args.adversarial_from_step
        output = vocoder(batch["units"], batch["durations"], batch["attention_mask"])
        generated, real = output.waveform, batch["audio"][:, : output.waveform.shape[1]]
        losses = {}
        if adversarial:
            loss_d = discriminator_loss(discriminator(real), discriminator(generated.detach()))
            optimizer_d.zero_grad()
            accelerator.backward(loss_d)
            optimizer_d.step()
            schedule_d.step()
            losses["discriminator"] = loss_d.item()
        loss_mel = torch.nn.functional.l1_loss(mel(generated), mel(real))
        loss_g = MEL_WEIGHT * loss_mel
        losses["mel"] = loss_mel.item()
        if output.log_duration_prediction is not None:
            loss_duration = duration_loss(output.log_duration_prediction, batch["durations"], batch["attention_mask"])
            loss_g = loss_g + DURATION_WEIGHT * loss_duration
            losses["duration"] = loss_duration.item()
        if adversarial:
            fake_outputs = discriminator(generated)
            with torch.no_grad():
                real_outputs = discriminator(real)
            loss_adv, loss_fm = adversarial_loss(fake_outputs), feature_matching_loss(real_outputs, fake_outputs)
            loss_g = loss_g + loss_adv + loss_fm
            losses.update(adversarial=loss_adv.item(), feature_matching=loss_fm.item())
        optimizer_g.zero_grad()
        accelerator.backward(loss_g)
        optimizer_g.step()
        schedule_g.step()
        step += 1
        progress.update(1)
        for key, value in losses.items():
            window.setdefault(key, []).append(value)
        if step % args.logging_steps == 0 or step == args.max_steps:
            row = {"step": step, **{k: sum(v) / len(v) for k, v in window.items()},
                   "learning_rate": schedule_g.get_last_lr()[0]}
            window = {}
            progress.set_postfix(mel=f"{row['mel']:.3f}")
            if accelerator.is_main_process:
                with open(log_path, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                logger.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        if step % args.save_steps == 0 or step == args.max_steps:
            save_checkpoint(accelerator, output_dir, step, {"step": step}, total_limit=2)
    progress.close()
    if accelerator.is_main_process:
        with atomic_directory(output_dir / "vocoder", OWNER) as partial:
            accelerator.unwrap_model(vocoder).save_pretrained(partial)
    accelerator.wait_for_everyone()
    minutes = (time.perf_counter() - started) / 60
    logger.info("trained %d steps in %.1f minutes; vocoder saved to %s", step, minutes, output_dir / "vocoder")
    return {"steps": step, "minutes": minutes, "vocoder": str(output_dir / "vocoder"),
            "extractor": args.extractor or str(output_dir / "extractor"), "held_out": len(held_out)}


def parse_arguments(argv: list[str] | None = None) -> VocoderTrainingArguments:
    return parse_script_arguments((VocoderTrainingArguments,), argv)[0]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    train(parse_arguments(argv))


if __name__ == "__main__":
    main()
