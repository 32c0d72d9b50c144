"""SALMon (Maimon et al. 2024, "A Suite for Acoustic Language Model Evaluation"): does a model prefer a recording
whose acoustics stay consistent (speaker, gender, sentiment, background, room) or match its content?

Layouts read, per subset:
- the release (`salmon_benchmark.zip`, linked from slp-rl/salmon `README.md`), as its scorer reads it (slp-rl/salmon
  `salmon.py`, `SalmonDataset`; the same in slp-rl/slamkit `modelling_metric.py`): `<root>/<subset>/*.wav`, grouped
  by the number after the first `_`, each group sorted by name, the first file positive and the second negative.
  The generation scripts write `sample_<i>_0.wav` for the true option and `sample_<i>_1.wav` for the other
  (slp-rl/salmon `data_generation/*.py`, e.g. `rir_consistency.py` `generate_sample`; `sentiment_alignment.py`:
  "the true sample must be with index 0") and a `metadata.json` list of {"index": i, ...} beside them, which the
  scorer does not read;
- the Hub dataset `slprl/SALMon` (its card's `dataset_info`, https://huggingface.co/api/datasets/slprl/SALMon):
  one config per subset, split `train`, 200 rows each, columns `task`, `ind`, `positive_audio` and
  `negative_audio`, files `<subset>/train-00000-of-00001.parquet`; from the Hub or a local copy of the
  repository. Its configs `all`, `all_alignment` and `all_consistency` pool subsets, which SALMon never reports
  (llm-jp/llama-mimi `eval/salmon.py` skips the `all_` ones too), so they are refused.
Scored as `salmon.py` does, per subset: 1 when the positive scores higher, 0.5 on a tie, 0 otherwise, averaged
over the subset's samples; subsets are reported separately, never pooled (`--parts all` is the eight subsets in
`SUBSETS`). The paper's TWIST and pGSLM rows use the mean log-likelihood per token (`"mean_nll": true` in
`baselines/configs/inference/*.json`; the code's default is the sum), our `accuracy_per_token`.
Not verified: the zip's own listing (no copy was readable offline); the names above are the generation scripts'.
"""

from __future__ import annotations

import re
from pathlib import Path

from .common import Pair, Stimulus, audio_columns, load_table

SUBSETS = ("bg_alignment", "bg_all_consistency", "bg_domain_consistency", "gender_consistency", "rir_consistency",
           "sentiment_alignment", "sentiment_consistency", "speaker_consistency")  # salmon.py's `--parts all`
POOLED = ("all", "all_alignment", "all_consistency")  # slprl/SALMon configs
HUB_ID = "slprl/SALMon"


def load_salmon(data: str, subset: str) -> list[Pair]:
    """The samples of one subset, from the release folder, a local copy of the Hub repository, or a Hub id."""
    if subset in POOLED:
        raise ValueError(f"{subset!r} pools SALMon's subsets, and SALMon reports each subset on its own; pass "
                         f"--subsets from {SUBSETS}.")
    if subset not in SUBSETS:
        raise ValueError(f"Unknown SALMon subset {subset!r}; the subsets are {SUBSETS}.")
    root = Path(data)
    if root.exists():
        folder = root / subset
        if not folder.is_dir():
            raise FileNotFoundError(f"{root} has no {subset}/ folder; the SALMon release has one per subset "
                                    "(or pass --subsets with those it has).")
        if any(folder.glob("*.wav")):
            return _release_pairs(folder)
        table = load_table(str(folder))
    else:
        table = load_table(data, config=subset, split="train")
    source = f"SALMon {subset} ({data})"
    table = audio_columns(table, ("positive_audio", "negative_audio"), source)
    ids = table["ind"] if "ind" in table.column_names else range(len(table))
    rows = table.select_columns(["positive_audio", "negative_audio"])
    return [Pair(str(i), Stimulus(f"{source} sample {i} positive", row["positive_audio"]),
                 Stimulus(f"{source} sample {i} negative", row["negative_audio"]))
            for i, row in zip(ids, rows)]


def _release_pairs(folder: Path) -> list[Pair]:
    samples: dict[int, dict[int, Path]] = {}
    for wav in folder.glob("*.wav"):
        match = re.fullmatch(r"sample_(\d+)_(\d+)", wav.stem)
        if match is None:
            raise ValueError(f"{wav}: not a SALMon sample name (sample_<index>_<option>.wav).")
        samples.setdefault(int(match.group(1)), {})[int(match.group(2))] = wav
    pairs = []
    for index in sorted(samples):
        options = samples[index]
        if sorted(options) != [0, 1]:
            raise ValueError(f"{folder}: sample {index} has the options {sorted(options)}; SALMon samples have a "
                             "positive (sample_<i>_0.wav) and a negative (sample_<i>_1.wav).")
        pairs.append(Pair(str(index), Stimulus(str(options[0]), options[0]), Stimulus(str(options[1]), options[1])))
    return pairs
