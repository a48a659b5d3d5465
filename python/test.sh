#!/usr/bin/env bash
# Builds the backend and installs the pinned test requirements into
# python/.venv (build.sh --dev), then runs pytest against both the script
# and the onefile executable. Extra arguments go to pytest (e.g. `python/test.sh -k ping`).
# Exits with pytest's status; works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/build.sh" --dev

venv="$here/.venv"
if [[ -x "$venv/bin/python" ]]; then vpy="$venv/bin/python"; else vpy="$venv/Scripts/python.exe"; fi

# The executable was just built: its tests must run, never be skipped.
export BACKEND_REQUIRE_EXECUTABLE=1
cd "$here"
exec "$vpy" -m pytest -c "$here/pytest.ini" "$@"
