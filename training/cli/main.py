"""The `lst` command: one entry point, a subcommand per job (`lst eval`, `lst generate`, `lst units`, `lst corpus`,
`lst data`, `lst finetune`, `lst transfer`, `lst experiment`, `lst vocoder`, `lst aligner`, `lst slue-stand-in`,
`lst export`, `lst push`).

Each subcommand's module is imported only when that subcommand is asked for: the modules behind them import
torch and transformers (seconds), and `lst --help` should answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# subcommand -> (module whose `add_parser(subparsers)` defines it, the help `lst --help` shows)
SUBCOMMANDS = {
    "eval": ("lst_speech.training.cli.evaluate", "evaluate a saved model (multiple choice, CRA)"),
    "units": ("lst_speech.training.cli.units", "fit a unit extractor, or extract units from audio files"),
    "corpus": ("lst_speech.training.cli.units", "build a spoken corpus: espeak-ng speech, or recordings + transcripts"),
    "data": ("lst_speech.training.cli.data", "build packed pretraining data with a paper's recipe"),
    "generate": ("lst_speech.training.cli.generate",
                 "continue a text or audio prompt in text or speech (WAV via a vocoder)"),
    "finetune": ("lst_speech.training.finetuning.finetune",
                 "fine-tune on SLUE sentiment or NER, ASR or TTS (LoRA or full)"),
    "transfer": ("lst_speech.training.experiments.transfer_matrix",
                 "fine-tune on {text, speech} x test on {text, speech}, LST and baseline"),
    "experiment": ("lst_speech.training.experiments.experiment",
                   "LST vs the baseline under the compute or data protocol, with patching and speech:text ratio axes"),
    "vocoder": ("lst_speech.training.cli.vocoder", "train a unit vocoder, score its intelligibility, vocode unit files"),
    "aligner": ("lst_speech.training.aligner.train_ctc_aligner",
                "train a CTC forced aligner: a character head over a Whisper encoder layer"),
    "slue-stand-in": ("lst_speech.training.cli.slue_stand_in", "build the offline SLUE-shaped stand-in (espeak-ng)"),
    "export": ("lst_speech.training.cli.release",
               "turn a trained run into a Hub-ready release folder (card, code, extractor)"),
    "push": ("lst_speech.training.cli.release", "upload a release folder to the Hub (or --dry_run)"),
}
# Subcommands whose module parses its own arguments (HfArgumentParser dataclasses, or one YAML file), like the
# scripts `accelerate launch` runs: `lst finetune ARGS` is `python -m lst_speech.training.finetuning.finetune ARGS`.
OWN_ARGUMENTS = {"finetune", "transfer", "experiment", "vocoder", "aligner"}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of `command` only (the others listed by name and help)."""
    parser = argparse.ArgumentParser(prog="lst", description="Joint speech-unit / text language modelling.")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    if command in SUBCOMMANDS and command not in OWN_ARGUMENTS:
        module = importlib.import_module(SUBCOMMANDS[command][0])
        module.add_parser(subcommands)
    else:
        for name, (_, help_text) in SUBCOMMANDS.items():
            subcommands.add_parser(name, help=help_text)
    return parser


def main(argv=None) -> None:
    """Runs a subcommand. Bad input (our ValueErrors, and OSErrors such as a missing file or repo) ends with one
    line naming the problem and exit status 2, as argparse does for bad flags; LST_DEBUG=1 shows the traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    try:
        if command in OWN_ARGUMENTS:
            importlib.import_module(SUBCOMMANDS[command][0]).main(argv[argv.index(command) + 1 :])
            return
        arguments = build_parser(command).parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        arguments.run(arguments)
    except (ValueError, OSError) as error:
        if os.environ.get("LST_DEBUG", "0") not in ("0", ""):
            raise
        print(f"lst {command}: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
