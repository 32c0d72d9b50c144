#!/usr/bin/env bash
# Create or reuse the project's virtual environment at .venv and install the package into it.
# Sourced by scripts/demo.sh and scripts/test.sh, so each of them works on a fresh machine by itself.
# torch==2.13.0 goes in first: it is the CPU wheel on these machines, and installing it before the
# package keeps pip from resolving an unpinned torch to a multi-GB CUDA build.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
stamp="$venv/.lst-install-stamp"
python_bin="${PYTHON:-python3}"

# espeak-ng (Debian) speaks the built-in corpora and spoken benchmarks offline; its library gives word times.
if ! ldconfig -p 2>/dev/null | grep -q libespeak-ng; then
    echo "[setup] installing espeak-ng (apt)"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q espeak-ng >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q espeak-ng >/dev/null; }
    else
        echo "[setup] espeak-ng is missing and cannot be installed here: install it with 'apt-get install espeak-ng'." >&2
        exit 1
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating virtual environment at $venv"
    "$python_bin" -m venv "$venv"
fi

# Reinstall only when the dependency declaration changed since the last install.
want="$(sha256sum "$repo_root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing torch 2.13.0 (CPU) and the package with its dev extras"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
    "$venv/bin/python" -m pip install --quiet -e "$repo_root[dev]"
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
