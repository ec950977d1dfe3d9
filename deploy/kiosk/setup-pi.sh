#!/usr/bin/env bash
# Turns a fresh Raspberry Pi OS (Bookworm, Lite is enough) into a pallay kiosk. Run as root
# from a checkout of pallay:   sudo bash deploy/kiosk/setup-pi.sh [MODEL]
# MODEL (optional): a speech model folder or zip brought on a USB stick, e.g.
#   /media/usb/vosk-model-small-es-0.42.zip   (without it the kiosk works with keys only)
# Needs the network once, for apt and PyPI; the kiosk itself never goes online.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "Run as root: sudo bash $0" >&2; exit 1; }
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX=/opt/pallay
DATA=/var/lib/pallay
MODEL="${1:-}"

echo "== Debian packages"
apt-get update -qq || { echo "apt-get update failed: is the Pi online?" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev ffmpeg sox \
  espeak-ng libportaudio2 alsa-utils python3-lgpio liblgpio-dev swig >/dev/null

echo "== user, folders, permissions (audio, GPIO, input devices)"
id pallay >/dev/null 2>&1 || useradd --system --home "$DATA" --shell /usr/sbin/nologin pallay
for group in audio gpio input; do
  getent group "$group" >/dev/null && usermod -aG "$group" pallay
done
mkdir -p "$PREFIX" "$DATA"
rsync -a --delete --exclude .venv --exclude .git "$SRC/" "$PREFIX/"
chown -R pallay:pallay "$DATA"

echo "== Python environment"
python3 -m venv --system-site-packages "$PREFIX/.venv"  # lgpio comes from Debian
"$PREFIX/.venv/bin/pip" install -q --upgrade pip
"$PREFIX/.venv/bin/pip" install -q "$PREFIX[kiosk]"

echo "== data, starter lessons, speech model"
sudo -u pallay PALLAY_DATA="$DATA" "$PREFIX/.venv/bin/pallay" init
if [ -n "$MODEL" ]; then
  sudo -u pallay PALLAY_DATA="$DATA" "$PREFIX/.venv/bin/pallay" models install "$MODEL"
  echo "Now set [speech] engine and model in $DATA/pallay.toml (pallay models list shows the path)."
fi
[ -f "$DATA/pallay.toml" ] || cat > "$DATA/pallay.toml" <<'TOML'
[kiosk]
device = "kiosk-1"          # the name this kiosk has in the statistics: make it unique
keys = ["auto"]             # keyboard, gpio, keypad, usb
# buttons = ["1:17", "2:27", "3:22", "0:23", "5:24", "vol+:5", "vol-:6", "talk:13"]
# keypad_rows = ["5", "6", "13", "19"]
# keypad_cols = ["12", "16", "20"]
TOML
chown pallay:pallay "$DATA/pallay.toml"

echo "== audio: the default card at a comfortable volume"
amixer -q sset PCM 90% 2>/dev/null || amixer -q sset Master 90% 2>/dev/null || true

echo "== hardware watchdog: reboot a Pi that hangs entirely"
if ! grep -q '^RuntimeWatchdogSec' /etc/systemd/system.conf; then
  echo 'RuntimeWatchdogSec=15' >> /etc/systemd/system.conf
fi

echo "== service"
install -m 0644 "$PREFIX/deploy/kiosk/pallay-kiosk.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now pallay-kiosk
echo "Done: journalctl -u pallay-kiosk -f shows what the kiosk does."
echo "For a read-only root (recommended), see deploy/kiosk/README.md."
