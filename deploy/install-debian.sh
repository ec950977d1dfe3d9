#!/usr/bin/env bash
# Installs the Debian packages pallay needs, only those missing. As root it installs them;
# otherwise it prints the exact command to run.
set -euo pipefail
packages=(python3-venv ffmpeg sox libsox-fmt-all libopencore-amrnb0 libopencore-amrwb0 espeak-ng libportaudio2 "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pallay needs these Debian packages. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
apt-get update -qq || { echo "apt-get update failed: are you offline?" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
