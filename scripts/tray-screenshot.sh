#!/usr/bin/env bash
# Saves a screenshot of berth's tray menu, opened in a real StatusNotifier
# panel (gtk-sni-tray-standalone) under Xvfb, to docs/tray.png (or $1).
#
#   scripts/tray-screenshot.sh [--title TEXT] [--icon FILE.png] [OUT.png]
#
# With --icon, the panel shows the app's icon with the state as a badge: the
# script then checks the screenshot (the icon's place on the panel) for the
# badge's colour (the scene's state is "failing") and exits 1 without it.
#
# Shows three backends: the Python backend running, one whose executable is
# missing, one stopped; plus a broken manifest. Installs what it needs with
# apt-get (Debian 12, root or sudo). Runs in a private D-Bus session and X
# server, so it neither needs nor touches a desktop.
set -euo pipefail
cd "$(dirname "$0")/.."
face=()
icon=""
while (($#)); do
  case "$1" in
    --title) face+=(--title "$2"); shift 2 ;;
    --icon) icon="$(realpath "$2")"; face+=(--icon "$icon"); shift 2 ;;
    *) break ;;
  esac
done
out="$(realpath -m "${1:-docs/tray.png}")"

if [ -z "${BERTH_SCREENSHOT_INNER:-}" ]; then
  packages=(haskell-gtk-sni-tray-utils xvfb xauth dbus dbus-x11 imagemagick xdotool fonts-noto-color-emoji
            libgtk-3-dev libayatana-appindicator3-dev)
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  cargo build --quiet --bins
  python/build.sh
  export BERTH_SCREENSHOT_INNER=1 NO_AT_BRIDGE=1
  exec dbus-run-session -- xvfb-run -a -s "-screen 0 640x400x24" "$0" "${face[@]}" "$out"
fi

berth="$PWD/target/debug/berth"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/backends" "$tmp/run"
chmod 700 "$tmp/run"
export XDG_RUNTIME_DIR="$tmp/run" XDG_STATE_HOME="$tmp/state"
sock="$tmp/run/berth.sock"

python_exe="$PWD/python/dist/backend"
cat >"$tmp/backends/python.yaml" <<EOF
id: python
name: Python Backend
version: 1.0.0
executable:
  linux:
    path: $python_exe
    sha256: "$(sha256sum "$python_exe" | cut -d' ' -f1)"
args: ["--port", "0"]
ready: { stdout_json: { status: ready }, timeout: 15s }
EOF
cat >"$tmp/backends/go.yaml" <<EOF
id: go
name: Go Backend
version: 2.1.0
executable:
  linux:
    path: ./dist/go-backend
    sha256: "$(printf '0%.0s' {1..64})"
EOF
cat >"$tmp/backends/worker.yaml" <<EOF
id: worker
name: Jobs & Queues
version: 0.3.0
executable:
  linux:
    path: /bin/sleep
    sha256: "$(sha256sum /bin/sleep | cut -d' ' -f1)"
args: ["3600"]
EOF
printf 'id: broken\nname: Broken\nversion: 1.0.0\nargz: [1]\n' >"$tmp/backends/broken.yaml"

# The panel first (it owns the watcher name), then berth.
gtk-sni-tray-standalone --watcher --top --beginning --size 32 >"$tmp/panel.log" 2>&1 &
pids+=($!)
sleep 2
"$berth" --socket "$sock" run --backends "$tmp/backends" "${face[@]}" >"$tmp/berth.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
"$berth" --socket "$sock" start python >/dev/null
"$berth" --socket "$sock" start go >/dev/null 2>&1 || true
sleep 4 # the uptime reads a few seconds; the panel has drawn the icon

# Right-click the icon, then walk to the Python Backend submenu and open it.
xdotool mousemove 16 16 click 3
sleep 1
xdotool key Down Down Down Right
sleep 1
mkdir -p "$(dirname "$out")"
import -window root "$out"
echo "saved $out" >&2

if [ -n "$icon" ]; then
  # The icon's place on the panel (top left, 32 pixels): with a broken
  # manifest and a missing executable in the scene, the badge is berth's
  # "failing" red (#d73a49), within a small tolerance.
  if convert "$out" -crop 32x32+0+0 +repage -fuzz 8% -fill black +opaque '#d73a49' \
      -fill white -opaque '#d73a49' -format '%[fx:mean*w*h]' info: | awk '{ exit !($1 >= 12) }'; then
    echo "the panel shows the app's icon with the failing badge" >&2
  else
    echo "no failing badge on the panel's icon in $out" >&2
    exit 1
  fi
fi
