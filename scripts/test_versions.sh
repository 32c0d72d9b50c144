#!/usr/bin/env bash
# Run the test suite in a throw-away environment with other versions than the pinned set (constraints.txt):
#
#   bash scripts/test_versions.sh latest [--refresh] [pytest args]   # the newest release of every dependency
#   bash scripts/test_versions.sh lowest [pytest args]               # each direct dependency at its lower bound
#
# `latest` prints which versions differ from the pinned set; with --refresh, and only if the suite passed,
# it rewrites constraints.txt with them (commit that together with the README's version table).
# `latest` takes the newest torch too: PyPI's Linux wheel, a CUDA build that runs on a CPU (about 4 GB with its
# CUDA libraries); LST_VERSIONS_TORCH=2.13.0 keeps the CPU wheel instead. The pins keep the CPU wheel 2.13.0
# whatever torch the check ran with (scripts/pinned_versions.py write), so set-up never downloads CUDA.
# `lowest` checks the lower bounds that pyproject.toml claims, torch's (2.13.0, the CPU wheel) included.
# The environment lives in a temporary directory (LST_VERSIONS_VENV to choose one) and is removed after.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
case "$mode" in
    latest|lowest) shift ;;
    *) echo "usage: bash scripts/test_versions.sh latest [--refresh] [pytest args] | lowest [pytest args]" >&2; exit 2 ;;
esac
refresh=0
if [ "${1:-}" = "--refresh" ]; then
    [ "$mode" = latest ] || { echo "--refresh goes with 'latest' only" >&2; exit 2; }
    refresh=1; shift
fi

work="$(mktemp -d)"
venv="${LST_VERSIONS_VENV:-$work/venv}"
trap 'rm -rf "$work"' EXIT
python_bin="${PYTHON:-python3}"
echo "[versions] $mode: building $venv"
"$python_bin" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip setuptools packaging  # packaging: for scripts/pinned_versions.py
if [ "$mode" = latest ]; then
    # A machine-wide pip constraint file (some hosts cap torch at what lies on their disk) must not hold the
    # newest releases back.
    export PIP_CONSTRAINT=/dev/null
    "${pip[@]}" install --quiet --upgrade "torch${LST_VERSIONS_TORCH:+==$LST_VERSIONS_TORCH}"
else
    "${pip[@]}" install --quiet "torch==2.13.0"
fi
# Whatever was installed stays: the package's own install must not move torch.
"$venv/bin/python" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > "$work/torch.txt"
echo "[versions] $(cat "$work/torch.txt")"
if [ "$mode" = latest ]; then
    "${pip[@]}" install --quiet --upgrade --upgrade-strategy eager -c "$work/torch.txt" -e "$repo_root[dev,whisper]"
else
    "$venv/bin/python" "$repo_root/scripts/pinned_versions.py" lowest "$repo_root/pyproject.toml" > "$work/lowest.txt"
    echo "[versions] lower bounds:"; sed 's/^/  /' "$work/lowest.txt"
    "${pip[@]}" install --quiet -c "$work/lowest.txt" -c "$work/torch.txt" -e "$repo_root[dev,whisper]"
fi
"${pip[@]}" check
"${pip[@]}" freeze --all --exclude-editable > "$work/freeze.txt"
"$venv/bin/python" "$repo_root/scripts/pinned_versions.py" compare "$repo_root/constraints.txt" "$work/freeze.txt"

cd "$repo_root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
status=0
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -p no:cacheprovider "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "[versions] the suite FAILED with the $mode versions above (exit $status); constraints.txt is unchanged." >&2
    exit "$status"
fi
echo "[versions] the suite passed with the $mode versions above."
if [ "$refresh" = 1 ]; then
    "$venv/bin/python" scripts/pinned_versions.py write "$work/freeze.txt" constraints.txt
    echo "[versions] constraints.txt refreshed: update the README's version table, run bash scripts/test.sh, commit."
fi
