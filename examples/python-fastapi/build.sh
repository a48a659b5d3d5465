#!/usr/bin/env bash
# Builds the FastAPI example as a PyInstaller onefile executable:
# examples/python-fastapi/dist/app. Its dependencies (requirements.txt,
# pinned) go into the Python backend's venv, python/.venv, which
# python/build.sh creates with the pinned PyInstaller. Quiet on success;
# does nothing when dist/app is newer than its sources. Works from any
# directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python_dir="$here/../../python"
"$python_dir/build.sh"
vpy="$python_dir/.venv/bin/python"

# shellcheck source=../../python/quiet.sh
source "$python_dir/quiet.sh"

stamp="$python_dir/.venv/.fastapi-requirements.txt.stamp"
if [[ ! -f "$stamp" || "$here/requirements.txt" -nt "$stamp" ]]; then
    quiet "$vpy" -m pip install --disable-pip-version-check --no-input -q -r "$here/requirements.txt"
    touch "$stamp"
fi

up_to_date() {
    local src
    [[ -e "$here/dist/app" ]] || return 1
    for src in "$here/app.py" "$here/requirements.txt" "$python_dir/berth_backend/__init__.py" "${BASH_SOURCE[0]}"; do
        [[ "$here/dist/app" -nt "$src" ]] || return 1
    done
}

# berth_backend is found through --paths, with no hook; uvicorn's own hook
# comes with pyinstaller-hooks-contrib.
if ! up_to_date; then
    quiet "$vpy" -m PyInstaller --onefile --name app --noupx --noconfirm --clean \
        --log-level WARN --paths "$python_dir" \
        --specpath "$here/build" --workpath "$here/build/work" --distpath "$here/build/dist" \
        "$here/app.py"
    mkdir -p "$here/dist"
    mv -f "$here/build/dist/app" "$here/dist/app"
fi
