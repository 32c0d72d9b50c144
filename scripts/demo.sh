#!/usr/bin/env bash
# The main job on the built-in offline default: sets up .venv if needed, then runs the demo.
# Extra arguments go to the demo (python -m training.demo --help lists them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$repo_root"
export HF_HUB_OFFLINE=1
exec python -m training.demo "$@"
