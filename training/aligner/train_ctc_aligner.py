"""Train a character-CTC head over a Whisper encoder layer on transcribed recordings, with Accelerate: a CTC
forced aligner that runs offline (`--aligner ctc:<output_dir>/aligner`), where no wav2vec 2.0 checkpoint does.

    lst aligner train --output_dir outputs/ctc_aligner --asterisk en           # the installed Asterisk prompts
    lst aligner train --output_dir DIR --audio_dir wavs/ --transcripts list.txt [--encoder_layer 3]
    accelerate launch -m lst_speech.training.aligner.train_ctc_aligner --output_dir DIR --asterisk en

Prompts are held out by a hash of their name (`--held_out_every`, the split every model trained on a prompt set
uses) and scored at the end: held-out CTC loss, and greedy CTC transcription's CER and WER with 95% bootstrap
intervals (`evaluation.json`). A transcript is trained on when every word it writes is spelled in letters
(digits, symbols and `[sounds]` have no characters to align; they are listed in `skipped.json`). The vocabulary is
the training transcripts' characters, lower-cased. The encoder is frozen, so its states are computed once; the
head trains in seconds to minutes and is not checkpointed: a stopped run is rerun. The head and its tokenizer are
saved with `save_pretrained` into `output_dir/aligner`, atomically.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import Wav2Vec2CTCTokenizer, get_scheduler

from lst_speech.evaluation.transcription.error_rates import transcript_error_rates
from lst_speech.tokenization.alignment.whisper_ctc import WhisperCtcConfig, WhisperCtcHead
from lst_speech.tokenization.alignment.word_alignment import normalise_words
from lst_speech.tokenization.atomic_files import atomic_directory, write_text_atomically
from lst_speech.tokenization.corpora.recorded_corpus import prompt_split
from lst_speech.tokenization.output_safety import check_apart, claim_directory
from lst_speech.tokenization.speech.audio import read_audio
from lst_speech.tokenization.speech.whisper_encoder import WhisperEncoderStates
from lst_speech.training.arguments import check_local_path, parse_script_arguments

logger = logging.getLogger("lst.aligner")
OWNER = "lst aligner train"
BLANK, UNKNOWN, DELIMITER = "<pad>", "<unk>", "|"  # Wav2Vec2CTCTokenizer's names: pad is the CTC blank


@dataclass
class CtcAlignerTrainingArguments:
    output_dir: str = field(metadata={"help": "log.jsonl, evaluation.json, skipped.json and the head (aligner/)"})
    asterisk: str | None = field(default=None, metadata={"help": "the installed Asterisk prompts of this language "
                                                                 "(en, es, fr, it, ru), in place of --audio_dir and "
                                                                 "--transcripts"})
    audio_dir: str | None = field(default=None, metadata={"help": "a folder of recordings"})
    transcripts: str | None = field(default=None, metadata={"help": "their transcript file (`name: text` lines or "
                                                                     "CSV, as `lst corpus` reads)"})
    held_out_every: int = field(default=10, metadata={"help": "hold out the prompts whose name's CRC-32 is N-1 "
                                                              "modulo N (about one in N)"})
    whisper_model: str = field(default="whisper", metadata={"help": "'whisper' (tiny.en, offline), a CTranslate2 "
                                                                    "Whisper folder or a transformers checkpoint"})
    encoder_layer: int | None = field(default=None, metadata={"help": "the encoder layer the head reads (default: "
                                                                      "the last)"})
    num_train_epochs: int = 40
    batch_size: int = 16
    learning_rate: float = field(default=3e-3, metadata={"help": "peak rate, decayed linearly"})
    seed: int = 0

    def __post_init__(self):
        for name in ("held_out_every", "num_train_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        if self.asterisk is not None:
            from lst_speech.tokenization.corpora.transcript_files import asterisk_source

            if self.audio_dir is not None or self.transcripts is not None:
                raise ValueError("Give --asterisk LANG or --audio_dir with --transcripts, not both.")
            self.audio_dir, self.transcripts = map(str, asterisk_source(self.asterisk))
        if self.audio_dir is None or self.transcripts is None:
            raise ValueError("Name the recordings: --asterisk LANG, or --audio_dir with --transcripts.")
        check_local_path(self.audio_dir, "--audio_dir", "a directory of audio files", local_only=True)


def spelled_words(text: str) -> list[str] | None:
    """The transcript's words as the head spells them (lower case, no surrounding punctuation), or None when a
    written token has no letters to align ("1", "#", "...") or mixes in other signs ("call-forward")."""
    words = normalise_words(text)
    if len(words) != len(text.split()) or not all(w.replace("'", "").isalpha() for w in words):
        return None
    return words


def build_tokenizer(transcripts: list[list[str]], folder: Path) -> Wav2Vec2CTCTokenizer:
    """A character tokenizer over the transcripts' letters, with the blank at id 0."""
    letters = sorted({c for words in transcripts for w in words for c in w})
    vocabulary = {token: index for index, token in enumerate([BLANK, UNKNOWN, DELIMITER, *letters])}
    (folder / "vocab.json").write_text(json.dumps(vocabulary, ensure_ascii=False))
    return Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token=BLANK, unk_token=UNKNOWN,
                                word_delimiter_token=DELIMITER, do_lower_case=False)


def encode_prompts(items, encoder: WhisperEncoderStates) -> list[np.ndarray]:
    """The encoder's states of each prompt (once: the encoder is frozen)."""
    states = []
    for item in tqdm(items, desc="Whisper encoder", unit="prompt"):
        waveform, rate = read_audio(item.audio)
        states += encoder.batch_states([waveform], rate)
    return states


def collate(examples: list[tuple[np.ndarray, list[int]]]) -> dict:
    """Padded states with their mask, and labels padded with -100 (as `Wav2Vec2ForCTC` takes them)."""
    frames = max(len(s) for s, _ in examples)
    characters = max(len(t) for _, t in examples)
    batch = {"encoder_states": torch.zeros(len(examples), frames, examples[0][0].shape[1]),
             "attention_mask": torch.zeros(len(examples), frames, dtype=torch.long),
             "labels": torch.full((len(examples), characters), -100, dtype=torch.long)}
    for row, (states, targets) in enumerate(examples):
        batch["encoder_states"][row, : len(states)] = torch.from_numpy(states)
        batch["attention_mask"][row, : len(states)] = 1
        batch["labels"][row, : len(targets)] = torch.tensor(targets)
    return batch


def evaluate(model, examples, texts: list[str], tokenizer, batch_size: int) -> dict:
    """Held-out CTC loss (mean over utterances) and greedy transcription's error rates with intervals."""
    model.eval()
    losses, hypotheses = [], []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start: start + batch_size]
            batch = {k: v.to(model.device) for k, v in collate(chunk).items()}
            output = model(**batch)
            losses.append(output.loss.item() * len(chunk))
            best = output.logits.argmax(-1).cpu().numpy()
            hypotheses += [tokenizer.decode(best[row, : len(states)]) for row, (states, _) in enumerate(chunk)]
    model.train()
    return {"held_out_loss": sum(losses) / len(examples), "utterances": len(examples),
            **transcript_error_rates(texts, hypotheses), "examples": list(zip(texts, hypotheses))[:5]}


def train(args: CtcAlignerTrainingArguments) -> dict:
    accelerator = Accelerator()
    set_seed(args.seed)
    check_apart(("--output_dir", args.output_dir), ("--audio_dir", args.audio_dir), ("--transcripts", args.transcripts))
    train_items, held_items = prompt_split(args.audio_dir, args.transcripts, args.held_out_every)
    spelled = {item.name: spelled_words(item.text) for item in train_items + held_items}
    skipped = [{"name": item.name, "text": item.text, "held_out": held}
               for items, held in ((train_items, False), (held_items, True)) for item in items
               if spelled[item.name] is None]
    train_items = [item for item in train_items if spelled[item.name] is not None]
    held_items = [item for item in held_items if spelled[item.name] is not None]
    if not train_items or not held_items:
        raise ValueError(f"{args.transcripts}: {len(train_items)} training and {len(held_items)} held-out prompts are "
                         "spelled in letters only; the head needs both (digits and symbols have no characters).")
    logger.info("%d prompts to train on, %d held out; %d skipped (digits, symbols: skipped.json)",
                len(train_items), len(held_items), len(skipped))
    output_dir = claim_directory(args.output_dir, OWNER)  # the input is known to be good: nothing is made before
    write_text_atomically(output_dir / "skipped.json", json.dumps(skipped, indent=1, ensure_ascii=False))
    write_text_atomically(output_dir / "training_args.json", json.dumps(asdict(args), indent=2))

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_tokenizer([spelled[item.name] for item in train_items], Path(folder))
    encoder = WhisperEncoderStates(args.whisper_model, args.encoder_layer)
    started = time.perf_counter()
    examples, held_texts = {}, []
    for split, items in (("train", train_items), ("held_out", held_items)):
        examples[split] = []
        for item, states in zip(items, encode_prompts(items, encoder)):
            text = " ".join(spelled[item.name])
            targets = tokenizer(text).input_ids
            if len(targets) > len(states):
                logger.warning("%s: %d characters in %d frames of 20 ms cannot be aligned; left out", item.name,
                               len(targets), len(states))
                continue
            examples[split].append((states, targets))
            if split == "held_out":
                held_texts.append(text)
    logger.info("Whisper encoder layer %d of %d: %.1f minutes", encoder.layer, encoder.num_layers,
                (time.perf_counter() - started) / 60)

    config = WhisperCtcConfig(whisper_model=args.whisper_model, encoder_layer=encoder.layer,
                              encoder_layers=encoder.num_layers, hidden_size=encoder.width,
                              vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              trained_on={"transcripts": args.transcripts, "audio_dir": args.audio_dir,
                                          "prompts": len(examples["train"]), "held_out_every": args.held_out_every})
    model = WhisperCtcHead(config)
    loader = torch.utils.data.DataLoader(examples["train"], batch_size=args.batch_size, shuffle=True,
                                         collate_fn=collate, generator=torch.Generator().manual_seed(args.seed))
    optimizer = torch.optim.AdamW(model.parameters(), args.learning_rate)
    schedule = get_scheduler("linear", optimizer, num_warmup_steps=0,
                             num_training_steps=args.num_train_epochs * len(loader))
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    log_path = output_dir / "log.jsonl"
    log_path.write_text("")
    for epoch in range(1, args.num_train_epochs + 1):
        total = 0.0
        for batch in loader:
            loss = model(**batch).loss
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            schedule.step()
            total += loss.item()
        row = {"epoch": epoch, "loss": total / len(loader), "learning_rate": schedule.get_last_lr()[0]}
        with open(log_path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        logger.info("epoch %d: loss %.4f", epoch, row["loss"])
    head = accelerator.unwrap_model(model)
    scores = evaluate(head, examples["held_out"], held_texts, tokenizer, args.batch_size)
    scores["minutes"] = (time.perf_counter() - started) / 60
    write_text_atomically(output_dir / "evaluation.json", json.dumps(scores, indent=2, ensure_ascii=False))
    logger.info("held out: CTC loss %.3f, greedy CER %.1f%% [%.1f, %.1f], WER %.1f%%", scores["held_out_loss"],
                100 * scores["cer"], *(100 * x for x in scores["cer_interval"]), 100 * scores["wer"])
    if accelerator.is_main_process:
        with atomic_directory(output_dir / "aligner", OWNER) as partial:
            head.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
    logger.info("head saved to %s: align with --aligner ctc:%s", output_dir / "aligner", output_dir / "aligner")
    return scores


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    if argv[:1] == ["train"]:  # `lst aligner train ...`; `python -m` and `accelerate launch` give the flags alone
        argv = argv[1:]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    train(parse_script_arguments((CtcAlignerTrainingArguments,), argv)[0])


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
