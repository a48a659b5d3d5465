#!/usr/bin/env bash
# Installs what building, running and testing berth needs on a fresh Debian 12
# machine, and nothing when it is already there (so it is cheap to call from
# every other script). Needs root or sudo for apt-get.
set -euo pipefail

packages=(
  # the Python backend's PyInstaller build (venv, shared libpython, objdump)
  python3 python3-venv python3-dev binutils
  # building the tray (gtk-rs -sys crates) and running it (dlopen'ed at run time)
  pkg-config libgtk-3-dev libayatana-appindicator3-dev
  # testing the tray like a desktop panel: a session bus and an X server
  dbus dbus-x11 xvfb xauth
  # the hash benchmark's reference, the log benchmark's reference
  openssl supervisor
  # setpriv (socket permission test), procps (ps/pgrep in tests)
  util-linux procps
  # the Debian package (scripts/package.sh) and its checks
  dpkg-dev lintian desktop-file-utils
  # opening logs and folders from the tray
  xdg-utils
  # desktop integration tests: a real notification server (dunst, dunstctl),
  # notify-send, and the desktop entry validator
  dunst libnotify-bin desktop-file-utils
  # the signature interoperability tests: Debian's minisign signs and verifies
  minisign
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node client's tests (clients/node) need any Node >= 18: a machine
# that has one keeps it; else Debian's own nodejs (18 on Debian 12).
if ! command -v node >/dev/null; then
  echo "deps: installing nodejs" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nodejs >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "deps: cargo not found: install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
