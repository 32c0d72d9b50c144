"""`lst experiment` on a tiny budget: the protocols' counters, FLOPs from the accounting, a two-ratio sweep
with a complete report, resuming and adding a variant, a second protocol that trains only its baseline, and bad
experiment input refused before training."""

from __future__ import annotations

import json

import pytest

from lst_speech.training.experiments.experiment import ExperimentArguments, main, patching_flags

pytestmark = pytest.mark.slow  # subprocesses, several processes or whole jobs: `-m "not slow"` skips them

TINY = ["--preset", "tiny", "--max_steps", "4", "--spoken_utterances", "40", "--held_out_utterances", "10",
        "--cloze_items", "8", "--num_units", "20", "--vocab_size", "400", "--sequence_length", "48",
        "--batch_size", "4"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    output = tmp_path_factory.mktemp("experiment")
    main(["--output_dir", str(output), *TINY, "--patching", "static", "--speech_per_text", "0.5", "0.2"])
    return output


def read_log(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_the_compute_protocol_gives_equal_global_positions_per_step(experiment):
    for ratio in ("speech_per_text-0.5", "speech_per_text-0.2"):
        lst = read_log(experiment / "runs" / ratio / "static" / "seed-0")
        llama = read_log(experiment / "runs" / ratio / "llama+compute" / "seed-0")
        assert [r["step"] for r in lst] == [r["step"] for r in llama] == [1, 2, 3, 4]
        for lst_step, llama_step in zip(lst, llama):  # static LST: patches packed to 4 x 48, as the baseline's tokens
            assert llama_step["global_positions"] == llama_step["tokens"] <= 4 * 48
            assert abs(lst_step["global_positions"] - llama_step["global_positions"]) <= 0.15 * 4 * 48
            assert lst_step["tokens"] >= llama_step["global_positions"]  # text-only batches: tokens are patches
        assert sum(r["tokens"] for r in lst) > 1.1 * sum(r["tokens"] for r in llama)  # LST reads more data


def test_the_report_holds_every_cell_with_flops_from_the_accounting(experiment):
    report = json.loads((experiment / "report.json").read_text())
    assert {(c["mixture"], c["model"]) for c in report["cells"]} == {
        (r, m) for r in ("speech_per_text-0.5", "speech_per_text-0.2") for m in ("static", "llama+compute")}
    for run in report["runs"]:
        log = read_log(experiment / "runs" / run["ratio"] / run["model"] / f"seed-{run['seed']}")
        assert run["training_flops"] == pytest.approx(3 * sum(r["flops"] for r in log))
        assert run["steps"] == 4 and set(run["topic_cloze"]) == {"S->S", "T->T"}
    realised = {name: facts["train_mixture"]["speech_per_text"] for name, facts in report["data"].items()}
    # 40 spoken verses are few: the realised ratios are measured and reported beside the asked ones, and keep
    # their order (the asked ratio tilts the source weights; the mixture's draw decides what is realised)
    assert realised["speech_per_text-0.5"] > realised["speech_per_text-0.2"] > 0
    markdown = (experiment / "report.md").read_text()
    assert "Protocol: **compute**" in markdown and f"{realised['speech_per_text-0.2']:.3f}" in markdown
    assert (experiment / "ratio_sweep.png").stat().st_size > 0
    # LST minus the baseline of its mixture, item by item on the same cloze items and seed
    runs = {(r["ratio"], r["model"]): r for r in report["runs"]}
    assert {(c["mixture"], c["model"]) for c in report["minus_baseline"]} == {
        ("speech_per_text-0.5", "static"), ("speech_per_text-0.2", "static")}
    assert "## LST minus the baseline, on the same items" in markdown
    for comparison in report["minus_baseline"]:
        assert comparison["baseline"] == "llama+compute"
        lst, llama = (runs[(comparison["mixture"], m)]["topic_cloze"] for m in ("static", "llama+compute"))
        for direction in ("S->S", "T->T"):
            expected = lst[direction]["accuracy_context_gain"] - llama[direction]["accuracy_context_gain"]
            assert comparison["difference"][direction] == pytest.approx(expected)
            low, high = comparison["interval"][direction]
            assert low <= expected <= high


def test_running_again_adds_a_variant_and_keeps_finished_runs(experiment):
    finished = experiment / "runs" / "speech_per_text-0.5" / "llama+compute" / "seed-0" / "results.json"
    before = finished.stat().st_mtime_ns
    main(["--output_dir", str(experiment), *TINY, "--patching", "bpe:merged", "--speech_per_text", "0.5"])
    assert finished.stat().st_mtime_ns == before  # not trained again
    run = json.loads((experiment / "runs" / "speech_per_text-0.5" / "bpe+merged" / "seed-0" / "run.json").read_text())
    assert (run["patching_mode"], run["aligned_by"], run["aligned_silences"]) == ("bpe", "piece", "merged")
    cells = {(c["mixture"], c["model"]) for c in json.loads((experiment / "report.json").read_text())["cells"]}
    assert ("speech_per_text-0.5", "bpe+merged") in cells and len(cells) == 5
    assert "| speech_per_text-0.2 | 0.2 |" in (experiment / "report.md").read_text()  # every mixture's data facts
    with pytest.raises(ValueError, match=r"holds an experiment with other settings .*max_steps"):
        main(["--output_dir", str(experiment), *TINY, "--max_steps", "5"])


def test_a_baseline_folder_without_its_protocol_is_refused(tmp_path):
    from lst_speech.training.experiments.experiment import collect

    (tmp_path / "runs" / "recipe" / "llama" / "seed-0").mkdir(parents=True)
    (tmp_path / "runs" / "recipe" / "llama" / "seed-0" / "results.json").write_text("{}")
    with pytest.raises(ValueError, match=r"llama is a baseline run from before .* rename the folder to llama\+"):
        collect(tmp_path)


def test_the_data_protocol_joins_the_folder_with_its_own_baseline(experiment):
    """A second protocol trains only its baseline: the LST runs serve both, on the same sequences as before.
    (The folder is moved first: where it lies is not a setting its runs must share.)"""
    lst_results = experiment / "runs" / "speech_per_text-0.5" / "static" / "seed-0" / "results.json"
    before = lst_results.stat().st_mtime_ns
    moved = experiment.with_name(experiment.name + "-moved")
    experiment.rename(moved)
    try:
        main(["--output_dir", str(moved), *TINY, "--protocol", "data", "--patching", "static",
              "--speech_per_text", "0.5"])
    finally:
        moved.rename(experiment)
    ratio = experiment / "runs" / "speech_per_text-0.5"
    assert lst_results.stat().st_mtime_ns == before  # LST is not trained again
    lst, llama = read_log(ratio / "static" / "seed-0"), read_log(ratio / "llama+data" / "seed-0")
    assert [r["tokens"] for r in lst] == [r["tokens"] for r in llama]  # the same sequences, step by step
    assert sum(r["global_positions"] for r in lst) < sum(r["global_positions"] for r in llama)
    assert sum(r["flops"] for r in lst) < sum(r["flops"] for r in llama)  # LST spends less compute
    report = json.loads((experiment / "report.json").read_text())
    assert report["protocols"] == ["compute", "data"]
    against = {(c["model"], c["baseline"]) for c in report["minus_baseline"] if c["mixture"] == ratio.name}
    variants = {c["model"] for c in report["cells"] if c["mixture"] == ratio.name} - {"llama+compute", "llama+data"}
    assert "static" in variants
    assert against == {(m, f"llama+{p}") for m in variants for p in ("compute", "data")}
    assert "Protocols: **compute**" in (experiment / "report.md").read_text()


def test_bad_experiments_are_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown patching mode 'entropy' in variant 'entropy'; choose one of"):
        ExperimentArguments(patching=["entropy"])
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['silent'\] in variant 'aligned:silent'"):
        patching_flags("aligned:silent", 10)
    with pytest.raises(ValueError, match="protocol must be one of"):
        ExperimentArguments(protocol="flops")
    with pytest.raises(ValueError, match="speech_per_text values must be positive"):
        ExperimentArguments(speech_per_text=[0.5, 0])
    (tmp_path / "experiment.yaml").write_text("patching: [curriculum, wordpiece]\n")
    with pytest.raises(ValueError, match=r"Unknown patching mode 'wordpiece'"):
        main([str(tmp_path / "experiment.yaml")])
    with pytest.raises(ValueError, match=r"out of reach of these sources \(from .* to .*\)"):
        main(["--output_dir", str(tmp_path / "far"), *TINY, "--speech_per_text", "50"])
    assert not (tmp_path / "far" / "runs").exists()  # nothing trained
    assert patching_flags("curriculum:piece:merged", 9) == {
        "patching_mode": "curriculum", "curriculum_aligned_until": 3, "curriculum_static_from": 6,
        "aligned_by": "piece", "aligned_silences": "merged"}


def test_several_seeds_compare_seed_by_seed():
    from lst_speech.training.experiments.experiment_report import _paired_comparisons

    def run(seed, correct):
        return {"seed": seed, "topic_cloze": {"T->T": {"correct_context_gain": correct}}}

    cells = {("recipe", "llama+compute"): [run(0, [1, 0, 0, 0]), run(1, [1, 1, 0, 0])],
             ("recipe", "static"): [run(0, [1, 1, 1, 0]), run(1, [1, 1, 0, 0]), run(2, [1, 1, 1, 1])]}
    (comparison,) = _paired_comparisons(cells, ["T->T"], "llama")
    assert comparison["model"] == "static" and comparison["seeds"] == [0, 1]  # seed 2 has no baseline to pair with
    assert comparison["difference"]["T->T"] == pytest.approx(0.25)  # the mean of +50 and +0 points
    assert comparison["seed_range"]["T->T"] == [0.0, 0.5]
    # the interval resamples the 4 items of the seed-averaged outcomes: differences per item 0, +0.5, +0.5, 0
    low, high = comparison["interval"]["T->T"]
    assert 0.0 <= low < 0.25 < high <= 0.5
    assert comparison["text"]["T->T"] == f"+25 points [{100 * low:+.0f}, {100 * high:+.0f}] (seeds +0 to +50)"


def test_seeds_averaged_item_by_item_narrow_the_paired_interval():
    """Two seeds that agree on a 10-point gain over 200 items: averaging each item's outcomes over the seeds
    gives an interval around that gain no wider than either seed's own."""
    import numpy as np

    from lst_speech.evaluation.uncertainty import paired_difference_interval
    from lst_speech.training.experiments.experiment_report import _paired_comparisons

    rng = np.random.default_rng(0)
    base = [rng.random(200) < 0.6 for _ in range(2)]
    # each seed's LST gets 30 of its baseline's misses right and 10 of its hits wrong: +10 points
    lst = []
    for seed, outcome in enumerate(base):
        flipped = outcome.copy()
        misses, hits = np.flatnonzero(~outcome), np.flatnonzero(outcome)
        flipped[rng.choice(misses, 30, replace=False)] = True
        flipped[rng.choice(hits, 10, replace=False)] = False
        lst.append(flipped)

    def runs(outcomes):
        return [{"seed": seed, "topic_cloze": {"T->T": {"correct_context_gain": outcome.tolist()}}}
                for seed, outcome in enumerate(outcomes)]

    (comparison,) = _paired_comparisons({("recipe", "llama+data"): runs(base), ("recipe", "static"): runs(lst)},
                                        ["T->T"], "llama")
    assert comparison["difference"]["T->T"] == pytest.approx(0.10)
    pooled = comparison["interval"]["T->T"]
    for seed in range(2):
        _, (low, high) = paired_difference_interval(lst[seed], base[seed])
        assert pooled[1] - pooled[0] <= high - low
    assert pooled[0] < 0.10 < pooled[1] and pooled[0] > 0
