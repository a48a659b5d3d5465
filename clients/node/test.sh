#!/usr/bin/env bash
# Runs the Node client's tests against the real berth and berth-tray (built
# here, a no-op when fresh) and the PyInstaller build of the Python backend
# (python/build.sh makes it). Extra arguments go to `node --test`.
# Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

major="$(node -p 'process.versions.node.split(".")[0]')"
if ((major < 18)); then
  echo "clients/node: Node >= 18 is needed, this is $(node --version)" >&2
  exit 1
fi

if [[ -z "${BERTH_BIN:-}" ]]; then
  cargo build --quiet --bin berth --bin berth-tray --manifest-path "$repo/Cargo.toml"
fi

cd "$here"
exec node --test "$@" test/*.test.js
