#!/usr/bin/env bash
# Create or reuse the project's virtual environment at .venv and install the package into it, with exactly
# the versions in constraints.txt (the set the test suite last passed with). Sourced by scripts/demo.sh and
# scripts/test.sh, so each of them works on a fresh machine by itself.
# torch==2.13.0 goes in first: it is the CPU wheel on these machines, and installing it before the
# package keeps pip from resolving torch to a multi-GB CUDA build.
# The pinned set moves only through scripts/test_versions.sh latest --refresh (see the README).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LST_VENV:-$repo_root/.venv}"
constraints="$repo_root/constraints.txt"
stamp="$venv/.lst-install-stamp"
python_bin="${PYTHON:-python3}"

# Debian packages: espeak-ng speaks the built-in corpora and spoken benchmarks offline (its library gives word
# times); the Asterisk prompts (G.722, with their transcript lists) are the recorded human voices of the tests
# and of `lst corpus --asterisk en|es|fr|it|ru`. Each is installed only when missing.
# (grep reads all of ldconfig's output: with -q it would close the pipe early, and pipefail would report that.)
apt_missing=()
ldconfig -p 2>/dev/null | grep libespeak-ng >/dev/null || apt_missing+=(espeak-ng)
for package in asterisk-core-sounds-en-g722 asterisk-core-sounds-en \
               asterisk-core-sounds-{es,fr,it,ru}-g722 asterisk-core-sounds-{es,fr,it,ru}; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep "ok installed" >/dev/null || apt_missing+=("$package")
done
if [ "${#apt_missing[@]}" -gt 0 ]; then
    echo "[setup] installing ${apt_missing[*]} (apt)"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q "${apt_missing[@]}" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q "${apt_missing[@]}" >/dev/null; }
    else
        echo "[setup] ${apt_missing[*]} missing and cannot be installed here: 'apt-get install ${apt_missing[*]}'." >&2
        exit 1
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating virtual environment at $venv"
    "$python_bin" -m venv "$venv"
fi

# Reinstall only when the dependency declaration or the pinned set changed since the last install.
want="$(cat "$repo_root/pyproject.toml" "$constraints" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing the pinned set (constraints.txt): torch 2.13.0 (CPU), then the package [dev,whisper]"
    pip=("$venv/bin/python" -m pip --disable-pip-version-check)
    # pip and setuptools come from the pinned set too; --build-constraint pins what sdists (and this package)
    # are built with, which pip's isolated build environments would otherwise take at their newest.
    "${pip[@]}" install --quiet -c "$constraints" pip setuptools
    "${pip[@]}" install --quiet -c "$constraints" "torch==2.13.0"
    "${pip[@]}" install --quiet -c "$constraints" --build-constraint "$constraints" -e "$repo_root[dev,whisper]"
    "${pip[@]}" check
    echo "$want" > "$stamp"
fi
# The test suite's Hub-protocol server (olah) has its own environment: its fastapi-utils needs psutil < 6,
# which the pinned set above cannot hold. Rebuilt only when constraints-olah.txt changes.
olah_venv="${LST_OLAH_VENV:-$repo_root/.venv-olah}"
olah_stamp="$olah_venv/.lst-install-stamp"
olah_want="$(sha256sum "$repo_root/constraints-olah.txt" | cut -d' ' -f1)"
if [ ! -f "$olah_stamp" ] || [ "$(cat "$olah_stamp")" != "$olah_want" ]; then
    echo "[setup] installing the test Hub server (olah, constraints-olah.txt) into $olah_venv"
    rm -rf "$olah_venv"
    "$python_bin" -m venv "$olah_venv"
    "$olah_venv/bin/python" -m pip --disable-pip-version-check install --quiet -c "$repo_root/constraints-olah.txt" olah
    echo "$olah_want" > "$olah_stamp"
fi
export PATH="$venv/bin:$PATH"
