#!/usr/bin/env bash
# The main job on the built-in offline default: sets up .venv if needed, then speaks a corpus, trains LST and
# its Llama baseline, evaluates both and writes outputs/main_job/report.md.
# Extra arguments go to the job (python -m lst_speech.training.experiments.main_job --help lists them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$repo_root"
export HF_HUB_OFFLINE=1
exec python -m lst_speech.training.experiments.main_job "$@"
