"""`lst generate`: continue a text or audio prompt in text or speech, from a saved LST or Llama baseline.

    lst generate --model outputs/main_job/lst/final --text "In the beginning" --output_modality text
    lst generate --model outputs/main_job/lst/final --audio prompt.wav --extractor outputs/main_job/extractor \\
        --output_modality text                                                       # S->T: transcribe-like
    lst generate --model ... --text "And God said" --output_modality speech --vocoder vocoder/vocoder \\
        --wav out.wav [--transcribe]                                                 # T->S: hear it

Text output is streamed to stdout as it is generated (transformers' `TextStreamer`) and printed in full at the
end; speech output is written as a WAV through the vocoder (and transcribed with `--transcribe`), or printed as
unit ids without one. Sampling is the `generate` flags: `--do_sample` with `--temperature`, `--top_k`,
`--top_p`, seeded by `--seed`; greedy by default. `--output_json` also writes what was generated as JSON.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger("lst.generate")
OUTPUT_MODALITIES = ("text", "speech")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="continue a text or audio prompt in text or speech")
    parser.add_argument("--model", required=True, help="a saved LST or Llama baseline with its tokenizer")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--text", help="a text prompt")
    prompt.add_argument("--audio", type=Path, help="an audio prompt (any sampling rate; needs --extractor)")
    parser.add_argument("--extractor", type=Path, help="the unit extractor the model's tokenizer was built with")
    parser.add_argument("--output_modality", choices=OUTPUT_MODALITIES, default="text")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default: 60 for text, 250 for speech")
    parser.add_argument("--do_sample", action="store_true", help="sample (default: greedy)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int, default=25)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_stream", action="store_true", help="print text only when generation ends")
    parser.add_argument("--vocoder", help="a unit vocoder (lst vocoder train): speech output becomes a WAV")
    parser.add_argument("--wav", type=Path, default=Path("generated.wav"), help="where the WAV is written")
    parser.add_argument("--transcribe", action="store_true", help="also transcribe the WAV (--transcriber)")
    parser.add_argument("--transcriber", default="pocketsphinx", help="'pocketsphinx' or an ASR model's path")
    parser.add_argument("--output_json", type=Path, help="also write the prompt and the output as JSON")
    parser.set_defaults(run=run_generate)


def check_arguments(arguments) -> None:
    """Every bad combination refused before a model is loaded."""
    if arguments.audio is not None and arguments.extractor is None:
        raise ValueError("An --audio prompt needs --extractor (the unit extractor of the model's tokenizer, e.g. "
                         "outputs/main_job/extractor) to turn it into units.")
    if arguments.max_new_tokens is not None and arguments.max_new_tokens < 1:
        raise ValueError(f"--max_new_tokens must be at least 1, got {arguments.max_new_tokens}.")
    if arguments.do_sample and not arguments.temperature > 0:
        raise ValueError(f"--temperature must be positive when sampling, got {arguments.temperature}.")
    if not 0 < arguments.top_p <= 1 or arguments.top_k < 0:
        raise ValueError(f"--top_p must be in (0, 1] and --top_k at least 0; got {arguments.top_p}, {arguments.top_k}.")
    if arguments.transcribe and arguments.vocoder is None:
        raise ValueError("--transcribe listens to the WAV, so it needs --vocoder.")
    if arguments.vocoder is not None and arguments.output_modality != "speech":
        raise ValueError("--vocoder turns speech output into audio; add --output_modality speech.")
    if arguments.text is not None and not arguments.text.strip():
        raise ValueError("The --text prompt is empty: give the words to continue.")
    from lst_speech.tokenization.output_safety import check_apart

    inputs = (("--model", arguments.model), ("--audio", arguments.audio), ("--extractor", arguments.extractor),
              ("--vocoder", arguments.vocoder), ("--transcriber", arguments.transcriber))
    for flag, output in (("--wav", arguments.wav if arguments.vocoder else None),
                         ("--output_json", arguments.output_json)):
        if output is not None:  # a file the command writes by name: replaced if it exists, unless it is an input
            check_apart((flag, output), *inputs, file=True)
    if arguments.vocoder is not None:
        from lst_speech.training.arguments import check_local_path

        check_local_path(arguments.vocoder, "--vocoder", "a unit vocoder (the vocoder/ folder `lst vocoder train` "
                         "writes)")


def prompt_segment(arguments, tokenizer):
    """The prompt as a tokenizer segment: the text, or the audio's units (from an extractor of the model's
    units: another extractor's ids would be read as the wrong units, or pass unnoticed when they are fewer)."""
    if arguments.text is not None:
        return arguments.text
    from lst_speech.tokenization.speech.audio import read_audio
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

    extractor = load_unit_extractor(arguments.extractor)
    if extractor.num_units != tokenizer.num_units:
        raise ValueError(f"--extractor {arguments.extractor} makes {extractor.num_units} units but the model "
                         f"{arguments.model} reads {tokenizer.num_units}: pass the extractor its training data was "
                         "made with.")
    waveform, sampling_rate = read_audio(arguments.audio)
    units = extractor(waveform, sampling_rate)
    logger.info("audio prompt: %.2f s -> %d units", len(waveform) / sampling_rate, len(units))
    return units


def run_generate(arguments) -> dict:
    check_arguments(arguments)
    import numpy as np
    import torch
    from transformers import TextStreamer

    from lst_speech.evaluation.loading import load_model_and_tokenizer
    from lst_speech.modeling_lst.modality import generate_in_modality

    model, tokenizer = load_model_and_tokenizer(Path(arguments.model))
    speaker = _speaker(arguments, tokenizer) if arguments.vocoder else None  # checked before generating
    segment = prompt_segment(arguments, tokenizer)
    speech_out = arguments.output_modality == "speech"
    options = {"max_new_tokens": arguments.max_new_tokens or (250 if speech_out else 60)}
    if arguments.do_sample:
        options.update(do_sample=True, temperature=arguments.temperature, top_k=arguments.top_k,
                       top_p=arguments.top_p)
    else:
        options["do_sample"] = False
    if not speech_out and not arguments.no_stream:
        options["streamer"] = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    torch.manual_seed(arguments.seed)
    with torch.no_grad():
        segments = generate_in_modality(model, tokenizer, [[segment]], arguments.output_modality, **options)[0]
    result = {"prompt": arguments.text if arguments.text is not None else str(arguments.audio),
              "output_modality": arguments.output_modality}
    if not speech_out:
        result["text"] = " ".join(s for s in segments if isinstance(s, str)).strip()
        print(result["text"])
    else:
        units = np.concatenate([np.asarray(s) for s in segments if not isinstance(s, str)] or [np.zeros(0, int)])
        result["units"] = units.tolist()
        if not units.size:
            raise ValueError("The model ended the continuation before any speech unit: nothing to vocode. Try "
                             "--do_sample, another prompt, or a model fine-tuned for this direction.")
        if speaker is None:
            print(json.dumps({"units": result["units"]}))
        else:
            result.update(_write_wav(speaker, units, arguments))
    if arguments.output_json is not None:
        from lst_speech.tokenization.atomic_files import write_text_atomically

        write_text_atomically(arguments.output_json, json.dumps(result, indent=2) + "\n")
    return result


def _speaker(arguments, tokenizer):
    from transformers import AutoModel

    from lst_speech.evaluation.transcription.transcribers import UnitSpeaker
    from lst_speech.tokenization.vocoder import UnitHifiGanVocoder  # also registers it with AutoModel

    try:
        vocoder = AutoModel.from_pretrained(arguments.vocoder).eval()
    except ValueError:
        vocoder = None  # transformers' "Unrecognized model": the folder holds no model config
    if not isinstance(vocoder, UnitHifiGanVocoder):
        raise ValueError(f"--vocoder {arguments.vocoder} is not a unit vocoder: pass the vocoder/ folder "  # noqa: TRY004
                         "`lst vocoder train` writes.")
    if vocoder.config.num_units != tokenizer.num_units:
        raise ValueError(f"--vocoder {arguments.vocoder} speaks {vocoder.config.num_units} units but the model "
                         f"{arguments.model} writes {tokenizer.num_units}: pass a vocoder trained on the units of "
                         "the model's extractor.")
    return UnitSpeaker(vocoder, tokenizer.deduplicate_units)


def _write_wav(speaker, units, arguments) -> dict:
    import soundfile

    from lst_speech.tokenization.atomic_files import atomic_path

    waveform = speaker(units)
    with atomic_path(arguments.wav) as partial:
        soundfile.write(str(partial), waveform, speaker.sampling_rate, format="WAV")
    written = {"wav": str(arguments.wav), "seconds": len(waveform) / speaker.sampling_rate}
    print(f"wrote {arguments.wav} ({written['seconds']:.2f} s, {len(units)} units)")
    if arguments.transcribe:
        from lst_speech.evaluation.transcription.transcribers import load_transcriber

        written["transcript"] = load_transcriber(arguments.transcriber)(waveform, speaker.sampling_rate)
        print(f"transcript: {written['transcript'] or '(nothing heard)'}")
    return written
