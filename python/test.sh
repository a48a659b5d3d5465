#!/usr/bin/env bash
# Builds the backend (build.sh), installs the pinned test requirements into
# python/.venv and runs pytest against both the script and the onefile
# executable. Extra arguments go to pytest (e.g. `python/test.sh -k ping`).
# Exits with pytest's status; works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/build.sh"

venv="$here/.venv"
if [[ -x "$venv/bin/python" ]]; then vpy="$venv/bin/python"; else vpy="$venv/Scripts/python.exe"; fi

stamp="$venv/.requirements-dev.txt.stamp"
if [[ ! -f "$stamp" || "$here/requirements-dev.txt" -nt "$stamp" ]]; then
    log="$(mktemp)"
    if ! "$vpy" -m pip install --disable-pip-version-check --no-input -q \
        -r "$here/requirements-dev.txt" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "test.sh: failed to install python/requirements-dev.txt" >&2
        exit 1
    fi
    rm -f "$log"
    touch "$stamp"
fi

# The executable was just built: its tests must run, never be skipped.
export BACKEND_REQUIRE_EXECUTABLE=1
cd "$here"
exec "$vpy" -m pytest -c "$here/pytest.ini" "$@"
