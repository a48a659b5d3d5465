#!/bin/sh
# Fuzzes manifest parsing for N seconds (default 180).
#   fuzz/run.sh [SECONDS]
# The toolchain is stable: cargo-fuzz needs -Zsanitizer, hence RUSTC_BOOTSTRAP=1.
# Crashes land in fuzz/artifacts/manifest/; turn each into a fixture in
# tests/fixtures/invalid/ with its expected message in tests/it/manifest.rs.
set -eu
cd "$(dirname "$0")"
secs="${1:-180}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/manifest
# Seeds: every fixture (libFuzzer reads them, new finds go to corpus/manifest).
exec cargo fuzz run manifest corpus/manifest ../tests/fixtures/valid ../tests/fixtures/invalid \
    -- -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048
