#!/usr/bin/env bash
# Runs berth with the shipped backends/ on a fresh Debian 12 machine: installs
# what is missing, builds the Python backend with PyInstaller, pins its digest
# into backends/python.yaml, then starts the launcher (tray, or headless when
# there is no display). Extra arguments go to `berth run`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
python/build.sh
cargo build --release --quiet
target/release/berth pin python --backends backends
exec target/release/berth run --backends backends "$@"
