#!/usr/bin/env bash
# Builds the Debian package target/debian/berth_<version>_<arch>.deb from a
# clean checkout (DESIGN.md, "Installed layout"): installs what is missing
# (cargo-deb included), builds the PyInstaller backend and berth in release,
# generates the man page, completions and icons from the code, pins the
# shipped manifest's digest against the packaged backend and points its
# schema modeline at the installed schema. Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
python/build.sh >&2
if ! command -v cargo-deb >/dev/null; then
  echo "package: installing cargo-deb" >&2
  cargo install --locked --quiet cargo-deb
fi

cargo build --release --quiet --features assets

stage=target/package
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/backends"
target/release/berth-assets "$stage"
gzip -9n "$stage"/man/*.1
# Relative links (Debian policy 10.5): cargo-deb follows a link whose target
# exists on the build machine and would ship a copy of an installed berth's
# binaries in their place; ../lib/berth/... never resolves inside the stage.
ln -s ../lib/berth/berth "$stage/bin/berth"
ln -s ../lib/berth/berth-tray "$stage/bin/berth-tray"

# The shipped manifest as installed: its modeline resolves from
# /usr/lib/berth/backends to /usr/share/berth, and its digest is the packaged
# backend's (pinned through the installed ${resources} layout).
sed '1s|^# yaml-language-server: \$schema=.*|# yaml-language-server: $schema=../../../share/berth/backend.schema.json|' \
  backends/python.yaml >"$stage/backends/python.yaml"
mkdir -p "$stage/resources/python"
cp python/dist/backend "$stage/resources/python/backend"
BERTH_RESOURCES="$PWD/$stage/resources" target/release/berth pin python --backends "$stage/backends" >&2
BERTH_RESOURCES="$PWD/$stage/resources" target/release/berth check "$stage/backends" >&2
rm -r "$stage/resources"

deb=$(cargo deb --no-build --strip --quiet)
echo "$deb"
