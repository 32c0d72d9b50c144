"""Spoken StoryCloze (sStoryCloze) and Topic StoryCloze (tStoryCloze), the audio released with TWIST (Hassid et al.
2023, "Textually Pretrained Speech Language Models"; slp-rl/SpokenStoryCloze `README.md` links an sSC and a tSC
zip, single-speaker TTS of the StoryCloze test stories; tStoryCloze's negative ending is another story's).

Layouts read (the same for both sets):
- the release folder, as slamkit reads it (slp-rl/slamkit `slamkit/metric/modelling_metric.py`,
  `ModellingMetricDataset`, with `config/metric/sstorycloze.yaml` and `tstorycloze.yaml`: `subfolder: false`): wavs
  whose names start with the story number and `_`, two per story, positive first; each wav is the whole spoken
  story with its right or wrong ending, scored whole (no prompt). We take the two as `<n>_correct.wav` and
  `<n>_incorrect.wav`, the names slamkit's cross-modal reader uses; files may sit one folder down
  (`subfolder: true`, slamkit's multi-speaker `ms_sSC`/`ms_tSC` configs).
- slamkit's cross-modal layout (`slamkit/metric/cross_modal_metric.py`, `CrossModalMetricDataset`):
  `<n>_mutual.wav` / `<n>_mutual.txt`, the four-sentence prompt, beside `<n>_correct.{wav,txt}` and
  `<n>_incorrect.{wav,txt}`, the endings; the endings are scored after the prompt in any direction whose files
  are there (S->S, T->T, S->T, T->S).
- the Hub schema with `positive` and `negative` audio columns, split `train` (llm-jp/llama-mimi
  `eval/sStoryCloze.py` reads the `speed/sStoryCloze` and `speed/tStoryCloze` uploads so), from the Hub or a local
  copy (parquet files, or a `save_to_disk` folder).
Scored as slamkit and TWIST do: a story counts 1 when the positive scores higher, 0.5 on a tie, 0 otherwise, and
the accuracy is the mean over stories (`modelling_metric`). slamkit's default score is the mean log-likelihood per
token of the whole wav (`mean_nll: true`, `config/metric/default.yaml`), our `accuracy_per_token`.
Two choices of ours: a cross-modal S->S story scores the ending's units given the prompt's, where slamkit
concatenates the two wavs, extracts units from the whole and averages over all of its tokens; and a story's
negative is its `_incorrect` file by name, where slamkit's plain reader takes the second file of a story in
directory order.
Not verified: the file names inside the sSC and tSC zips (no listing was readable offline; the names above are
slamkit's cross-modal ones), and the speed/ uploads' schema beyond the two columns llama-mimi reads.
"""

from __future__ import annotations

import re
from pathlib import Path

from .common import Pair, Stimulus, audio_columns, load_table, read_text

SUFFIXES = ("_correct", "_incorrect", "_mutual")


def load_story_cloze(data: str, split: str = "train") -> list[Pair]:
    """The stories of a local release folder, or of a Hub-schema dataset (an id, or a local copy)."""
    path = Path(data)
    if path.is_dir() and (any(path.glob("*_correct.wav")) or any(path.glob("*/*_correct.wav"))):
        return _release_pairs(path)
    table = audio_columns(load_table(data, split=split), ("positive", "negative"), f"StoryCloze data {data}")
    ids = table["id"] if "id" in table.column_names else range(len(table))
    return [Pair(str(i), Stimulus(f"{data} row {i} positive", row["positive"]),
                 Stimulus(f"{data} row {i} negative", row["negative"]))
            for i, row in zip(ids, table.select_columns(["positive", "negative"]))]


def _order(base: Path):
    """Stories in number order, as slamkit sorts them (`int(name.split('_')[0])`), then by name."""
    match = re.match(r"\d+", base.name)
    return (str(base.parent), int(match.group()) if match else -1, base.name)


def _stimulus(base: Path, suffix: str) -> Stimulus | None:
    """A story's prompt or ending: its wav and its txt, either of which may be missing (None if both are)."""
    wav, txt = Path(f"{base}{suffix}.wav"), Path(f"{base}{suffix}.txt")
    if not wav.is_file() and not txt.is_file():
        return None
    return Stimulus(str(wav if wav.is_file() else txt), wav if wav.is_file() else None, read_text(txt))


def _release_pairs(root: Path) -> list[Pair]:
    files = sorted(root.glob("*_*.*")) or sorted(root.glob("*/*_*.*"))
    bases = {}
    for file in files:
        stem = file.stem
        suffix = next((s for s in SUFFIXES if stem.endswith(s)), None)
        if suffix is None or file.suffix not in (".wav", ".txt"):
            continue
        bases.setdefault(file.with_name(stem[: -len(suffix)]), set()).add(suffix + file.suffix)
    pairs = []
    for base in sorted(bases, key=_order):
        present = bases[base]
        for needed in ("_correct.wav", "_incorrect.wav"):
            if needed not in present:
                raise FileNotFoundError(f"{base}{needed} is missing: each story needs both ending files "
                                        f"(found {sorted(present)}).")
        pairs.append(Pair(str(base.relative_to(root)), _stimulus(base, "_correct"), _stimulus(base, "_incorrect"),
                          _stimulus(base, "_mutual")))
    prompted = sum(pair.prompt is not None for pair in pairs)
    if 0 < prompted < len(pairs):
        raise ValueError(f"{root}: {prompted} of {len(pairs)} stories have a prompt (<n>_mutual.wav/.txt) and the "
                         "others not; a set is either whole stories or prompt + endings.")
    return pairs
