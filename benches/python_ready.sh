#!/usr/bin/env bash
# Builds the onefile and onedir variants of the Python backend, then prints
# their time-to-ready and time-to-stop against the interpreter running
# backend.py (medians; RUNS defaults to 5). Usage: benches/python_ready.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/python/build.sh" --onedir
exec "$root/python/.venv/bin/python" "$root/benches/python_ready.py" "$@"
