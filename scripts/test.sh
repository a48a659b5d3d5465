#!/usr/bin/env bash
# Runs every test of berth on a fresh Debian 12 machine: installs what is
# missing, builds the PyInstaller backend, checks formatting and lints, then
# runs the Rust tests (under a private D-Bus session and Xvfb, so the tray is
# tested like a desktop panel sees it), the Python backend's tests and the
# Node client's.
set -euo pipefail
cd "$(dirname "$0")/.."

# CI machines can be short of disk (a run once stopped with "No space left on
# device" while compiling): say what there is, and keep the build small. A
# fresh clone gains nothing from incremental caches (about 1 GB here).
df -h . | sed 's/^/disk: /' >&2
if [[ "${CI:-}" == true ]]; then
  export CARGO_INCREMENTAL=0
fi

scripts/deps.sh
python/build.sh --onedir --dev
# The backend at 1.1.0, the newer release of the update tests
# (tests/it/update/feed.rs): onedir, about 12 s to build (onefile: 25 s).
python/build.sh --version 1.1.0
# The FastAPI example (fastapi and uvicorn from PyPI into python/.venv),
# run under berth by tests/it/control/fastapi.rs.
examples/python-fastapi/build.sh
export BERTH_REQUIRE_EXAMPLE=1

cargo fmt --check

# The Debian package, unpacked and run by tests/it/install/package.rs. Built
# first so that on CI its release build can be dropped before the debug one:
# the tests need only the .deb.
scripts/package.sh >/dev/null
export BERTH_REQUIRE_DEB=1
if [[ "${CI:-}" == true ]]; then
  rm -rf target/release target/package
fi

cargo clippy --all-targets --all-features -- -D warnings
# The library's documentation (the embed API, the client) builds without a
# warning: no broken or private link, no undocumented item of the app API.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib

# The tray tests talk to a real StatusNotifier watcher over a real bus.
export NO_AT_BRIDGE=1
dbus-run-session -- xvfb-run -a -s "-screen 0 1024x768x24" cargo test
df -h . | sed 's/^/disk after the Rust tests: /' >&2

python/test.sh

# The Node client against the berth just built and the PyInstaller backend.
clients/node/test.sh
