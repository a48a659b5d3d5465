#!/usr/bin/env bash
# Builds the backend as a PyInstaller onefile executable: python/dist/backend.
#
#   python/build.sh            build dist/backend unless it is up to date
#   python/build.sh --onedir   also build the onedir variant into
#                              dist/onedir/backend/ (used by the benchmark)
#   python/build.sh --dev      also install requirements-dev.txt into the
#                              venv (pytest, and the PyPI sdnotify client the
#                              Rust tests run under berth)
#   python/build.sh --version V   only a onedir build whose __version__ is V
#                              into dist-V/backend/ (the update tests' newer
#                              release); the normal build is left alone
#
# Idempotent and quiet: prints nothing on success, the tool's output on
# failure. Works from any directory. Needs python3 with the venv module
# (Debian: python3-venv), the shared libpython (Debian: libpython3.11, pulled
# by python3-dev) and binutils (PyInstaller runs objdump/objcopy on Linux).
# PYTHON overrides the interpreter used to create the venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

onedir=false
dev=false
version=""
while (($#)); do
    arg="$1"
    shift
    case "$arg" in
        --onedir) onedir=true ;;
        --dev) dev=true ;;
        --version)
            version="${1:-}"
            shift || true
            if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
                echo "build.sh: --version needs a version like 1.1.0, got: ${version:-nothing}" >&2
                exit 2
            fi
            ;;
        -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

# shellcheck source=quiet.sh
source "$(dirname "${BASH_SOURCE[0]}")/quiet.sh"

if [[ ! -x "$venv/bin/python" && ! -x "$venv/Scripts/python.exe" ]]; then
    quiet "$python" -m venv "$venv"
fi
if [[ -x "$venv/bin/python" ]]; then vpy="$venv/bin/python"; else vpy="$venv/Scripts/python.exe"; fi

# Installs a requirements file once, again only when it changes.
install_requirements() {
    local req="$1" stamp="$venv/.$(basename "$1").stamp"
    if [[ ! -f "$stamp" || "$req" -nt "$stamp" ]]; then
        quiet "$vpy" -m pip install --disable-pip-version-check --no-input -q -r "$req"
        touch "$stamp"
    fi
}
install_requirements "$here/requirements-build.txt"
if $dev; then
    install_requirements "$here/requirements-dev.txt"
fi

exe="backend"
case "$(uname -s)" in MINGW* | MSYS* | CYGWIN*) exe="backend.exe" ;; esac

# Newer than the script, the pinned requirements and this file (which holds
# the options): nothing to do.
up_to_date() {
    local target="$1" src
    [[ -e "$target" ]] || return 1
    for src in "$here/backend.py" "$here/requirements-build.txt" "${BASH_SOURCE[0]}"; do
        [[ "$target" -nt "$src" ]] || return 1
    done
}

# Options shared by both variants:
# --python-option u: unbuffered stdout/stderr in the frozen program. A frozen
#   app ignores PYTHONUNBUFFERED (it runs with ignore_environment), and a
#   supervisor reading a pipe must see each line when it is printed, not when
#   a 8 KiB buffer fills. backend.py flushes anyway; this covers every print.
# No --bootloader-ignore-signals: with it the bootloader ignores SIGTERM
#   instead of forwarding it, so a supervisor that signals only the PID it
#   spawned (the reference Electron app, `kill PID` by hand) could never stop
#   the Python child. berth signals the whole group, so the child receives
#   SIGTERM twice; backend.py's handler is idempotent, which makes both kinds
#   of supervisor work.
# Build output goes to build/ (spec files included), the result is moved into
#   dist/ only once complete, so an interrupted build never leaves a partial
#   executable that looks up to date.
pyinstaller_build() {
    local mode="$1" name="$2" script="${3:-$here/backend.py}" base="${4:-$here/build/$1}"
    quiet "$vpy" -m PyInstaller \
        "--$mode" \
        --name "$name" \
        --python-option u \
        --noupx \
        --noconfirm \
        --clean \
        --log-level WARN \
        --specpath "$base" \
        --workpath "$base/work" \
        --distpath "$base/dist" \
        --paths "$here" \
        "$script"
}

# Another version: backend.py with its __version__ replaced, built onedir
# (faster to build and to start than onefile; see the timings in
# scripts/test.sh) into its own folders, so it never touches dist/.
if [[ -n "$version" ]]; then
    target="$here/dist-$version/backend/$exe"
    if ! up_to_date "$target"; then
        base="$here/build/version-$version"
        src="$base/src"
        rm -rf "$src"
        mkdir -p "$src"
        sed "s/^__version__ = \".*\"$/__version__ = \"$version\"/" "$here/backend.py" >"$src/backend.py"
        grep -q "^__version__ = \"$version\"$" "$src/backend.py" || {
            echo "build.sh: no __version__ line to replace in backend.py" >&2
            exit 1
        }
        pyinstaller_build onedir backend "$src/backend.py" "$base"
        rm -rf "$here/dist-$version"
        mkdir -p "$here/dist-$version"
        mv "$base/dist/backend" "$here/dist-$version/backend"
    fi
    exit 0
fi

mkdir -p "$here/dist"
if ! up_to_date "$here/dist/$exe"; then
    pyinstaller_build onefile backend
    mv -f "$here/build/onefile/dist/$exe" "$here/dist/$exe"
fi

if $onedir && ! up_to_date "$here/dist/onedir/backend/$exe"; then
    pyinstaller_build onedir backend
    rm -rf "$here/dist/onedir"
    mkdir -p "$here/dist/onedir"
    mv "$here/build/onedir/dist/backend" "$here/dist/onedir/backend"
fi
