"""The package as users get it: one `lst_speech` namespace, and a built wheel that carries every file the code loads.

The wheel test builds the wheel and an sdist from this checkout, installs the wheel without dependencies into a
fresh folder outside the checkout, and uses it from a user's project that has its own `training/`,
`evaluation/` and `tokenization/` packages: `lst --help`, the public API, each `evaluate` metric module, CRA on a
tiny saved model through `lst eval cra`, and a shipped Accelerate config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
SHIPPED_DATA = ["lst_speech/training/configs/fsdp.yaml", "lst_speech/training/configs/transfer_slue_sa.yaml",
                *(f"lst_speech/evaluation/metrics/{name}/{name}.py" for name in ("cra", "pelm", "slue_sa", "slue_ner"))]


def _installed_name(folder: Path) -> str:
    """`training/data` -> `lst_speech.training.data`, through pyproject's package-dir mapping."""
    relative = folder.relative_to(REPO).as_posix()
    for package, directory in SETUPTOOLS["package-dir"].items():
        if relative == directory or relative.startswith(directory + "/"):
            return package + relative[len(directory):].replace("/", ".")
    raise AssertionError(f"{relative} is in no mapped folder")


def test_every_package_folder_is_listed_and_every_listed_package_exists():
    on_disk = {_installed_name(init.parent) for directory in SETUPTOOLS["package-dir"].values()
               for init in (REPO / directory).rglob("__init__.py")}
    metric_folders = {_installed_name(script.parent) for script in (REPO / "evaluation" / "metrics").glob("*/*.py")}
    listed = set(SETUPTOOLS["packages"])
    data_only = {"lst_speech.training.configs"}  # YAML files beside an __init__.py
    assert on_disk | metric_folders | data_only == listed


def test_the_distribution_is_not_the_unrelated_lst_on_the_index():
    assert PYPROJECT["project"]["name"] == "lst-speech"
    assert PYPROJECT["project"]["scripts"]["lst"] == "lst_speech.training.cli.main:main"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The wheel and the sdist of this checkout, built offline with the environment's own setuptools."""
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    source = tmp_path_factory.mktemp("source") / "lst"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "outputs",
                                                                "*.egg-info", "__pycache__", ".pytest_cache"))
    names = []
    for kind in ("wheel", "sdist"):  # one process each: setuptools keeps state between the two in one process
        script = f"import sys; from setuptools import build_meta; print('built', build_meta.build_{kind}(sys.argv[1]))"
        result = subprocess.run([sys.executable, "-c", script, str(out)], cwd=source, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        names.append(out / result.stdout.strip().splitlines()[-1].split()[1])
    return tuple(names)


@pytest.mark.slow
def test_wheel_and_sdist_carry_every_file_the_code_loads(built):
    wheel, sdist = built
    wheel_files = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED_DATA) <= wheel_files
    assert not any(name.startswith(("training/", "evaluation/", "tokenization/", "tests/")) for name in wheel_files)
    with tarfile.open(sdist) as archive:
        sdist_files = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "training/configs/fsdp.yaml", "evaluation/metrics/cra/cra.py"} <= sdist_files


# Runs the script sys.argv[1] as `__main__` with sys.argv[2:] as its argv, where the editable install's finder
# and path entry are gone, so that imports of lst_speech can only find the wheel's files.
HIDE_EDITABLE_AND_RUN = """
import runpy, sys
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in type(finder).__module__]
sys.path[:] = [entry for entry in sys.path if "__editable__" not in entry]
path, sys.argv = sys.argv[1], sys.argv[2:]
runpy.run_path(path, run_name="__main__")
"""

USER_SCRIPT = """
import json, sys
import training, evaluation, tokenization                      # the user's own packages, found first
from accelerate.commands.config.config_args import load_config_from_file
import evaluate
from lst_speech.evaluation.metrics import METRICS, metric_path
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.training.configs import config_path
import lst_speech.training.pretrain

metrics = {name: type(evaluate.load(metric_path(name))).__name__ for name in METRICS}
fsdp = load_config_from_file(config_path("fsdp"))
print(json.dumps({"users": [training.OWNER, evaluation.OWNER, tokenization.OWNER],
                  "files": [sys.modules["lst_speech.modeling_lst"].__file__,
                            sys.modules["lst_speech.training.pretrain"].__file__, metric_path("cra"), config_path("fsdp")],
                  "metrics": metrics, "fsdp": fsdp.distributed_type.value}))
"""


@pytest.mark.slow
def test_installed_wheel_works_from_a_project_with_its_own_training_and_evaluation_folders(built, tokenizer,
                                                                                            tmp_path):
    import datasets

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                              "--disable-pip-version-check", "--target", str(site), str(built[0])],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]

    project = tmp_path / "my_project"  # a research repository's usual layout
    for name in ("training", "evaluation", "tokenization"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(f"OWNER = 'user {name}'\n")
    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(0)
    rows = []
    for index in range(4):
        words = ["in", "the", "beginning", "god", "created"][: 3 + index % 3]
        ends = np.cumsum(rng.integers(2, 5, size=len(words)))
        rows.append({"id": str(index), "text": " ".join(words), "words": words,
                     "units": rng.integers(0, 50, size=int(ends[-1])).tolist(),
                     "word_spans": np.stack([ends - np.diff(ends, prepend=0), ends], 1).tolist()})
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "corpus"))

    # Only the wheel's copy of lst_speech may be found: the checkout's editable install is hidden.
    environment = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{project}", "HF_HUB_OFFLINE": "1"}
    python = [sys.executable, "-c", HIDE_EDITABLE_AND_RUN]
    lst = python + [str(site / "bin" / "lst"), "lst"]

    help_text = subprocess.run(lst + ["--help"], cwd=project, env=environment, capture_output=True, text=True)
    assert help_text.returncode == 0, help_text.stderr[-3000:]
    assert "eval" in help_text.stdout and "finetune" in help_text.stdout

    (project / "use_lst.py").write_text(textwrap.dedent(USER_SCRIPT))
    used = subprocess.run(python + [str(project / "use_lst.py"), "use_lst.py"], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=600)
    assert used.returncode == 0, used.stderr[-3000:]
    report = json.loads(used.stdout.strip().splitlines()[-1])
    assert report["users"] == ["user training", "user evaluation", "user tokenization"]
    assert all(Path(file).is_relative_to(site) for file in report["files"]), report["files"]
    assert set(report["metrics"]) == {"cra", "pelm", "slue_sa", "slue_ner"}
    assert report["fsdp"] == "FSDP"

    scored = subprocess.run(lst + ["eval", "cra", "--model", str(tmp_path / "model"), "--corpus",
                                   str(tmp_path / "corpus"), "--num", "4", "--directions", "t2t", "u2u",
                                   "--output", str(tmp_path / "cra")],
                            cwd=project, env=environment, capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr[-3000:]
    results = json.loads((tmp_path / "cra.json").read_text())
    cra = results["results"]
    assert {"t2t", "u2u"} <= set(cra)
    assert all(cra[d]["num_contexts"] == 4 and 0 <= cra[d]["cra"] <= 1 for d in ("t2t", "u2u"))
