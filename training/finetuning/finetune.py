"""Fine-tune LST (or the Llama baseline) on SLUE sentiment or NER, ASR or TTS, with LoRA through peft or in full.

    accelerate launch -m lst_speech.training.finetuning.finetune --model_name_or_path run/final --task slue-sa \\
        --train_data sa/train.parquet --validation_data sa/validation.parquet --output_dir sa-run/ \\
        --train_modality text --eval_modality speech
    accelerate launch -m lst_speech.training.finetuning.finetune sa.yaml                 # the same arguments as YAML
    lst finetune --model_name_or_path run/final ...                     # one process

    lst finetune --model_name_or_path outputs/main_job/lst/final --task asr \\
        --train_data outputs/main_job/corpus/train --validation_data outputs/main_job/corpus/held_out ...
    lst finetune ... --task tts --vocoder vocoder/vocoder          # TTS, also scored through a vocoder

SLUE rows follow the `asapp/slue` schema (voxceleb for `slue-sa`, voxpopuli for `slue-ner`); ASR and TTS read
paired rows (lst_speech.training.finetuning.paired_data: a `save_to_disk` folder or files with `text` and `units`). Speech input
reads a `units` column, or the `audio` column through `--unit_extractor` (a saved HuBERT or MFCC extractor; the
units are cached by `datasets`). `slue-sa` puts a classification head on the LM (lst_speech.training.finetuning.slue_sentiment);
`slue-ner` has the LM write the tagged transcript (lst_speech.training.finetuning.slue_ner); `asr` writes the transcript of speech
and `tts` the units of text (lst_speech.training.finetuning.speech_text_tasks). The validation split, in the evaluation
modality, is scored every `--eval_steps` (0: at the last step only), each time logged as an `eval_` row in
`log.jsonl` and to TensorBoard (`--report_to`); the best step's adapter (or model) is saved to `output_dir/best`
with `save_pretrained`, and `--merge` also writes it merged into a plain checkpoint. Checkpoints are atomic
and `--resume_from_checkpoint latest` continues exactly, as in pretraining; the loss of a step is the mean
over all its targets on all processes, so 2 processes of batch B equal one of batch 2B.
"""

from __future__ import annotations

import logging

from lst_speech.training.arguments import parse_script_arguments
from lst_speech.training.finetuning.loop import FinetuningArguments, finetune

logger = logging.getLogger("lst.finetune")


def parse_arguments(argv: list[str] | None = None) -> FinetuningArguments:
    return parse_script_arguments((FinetuningArguments,), argv)[0]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_arguments(argv)
    results = finetune(args)
    logger.info("best step %d on %s input (trained on %s): %s; %.1f examples/s", results["best"]["step"],
                args.eval_modality, args.train_modality, results["best_summary"],
                results["train_examples_per_second"])


if __name__ == "__main__":
    main()
