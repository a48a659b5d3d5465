#!/usr/bin/env bash
# Runs every test of berth on a fresh Debian 12 machine: installs what is
# missing, builds the PyInstaller backend, checks formatting and lints, then
# runs the Rust tests (under a private D-Bus session and Xvfb, so the tray is
# tested like a desktop panel sees it) and the Python backend's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
python/build.sh --onedir

cargo fmt --check
cargo clippy --all-targets --all-features -- -D warnings

# The Debian package, unpacked and run by tests/it/install/package.rs.
scripts/package.sh >/dev/null
export BERTH_REQUIRE_DEB=1

# The tray tests talk to a real StatusNotifier watcher over a real bus.
export NO_AT_BRIDGE=1
dbus-run-session -- xvfb-run -a -s "-screen 0 1024x768x24" cargo test

python/test.sh
