#!/usr/bin/env bash
# Asterisk 22 on Debian 12: builds (once) and caches a Debian sid chroot with asterisk and the Spanish
# prompts, and runs Asterisk inside it. The test suite uses it; so can anyone trying the phone line on
# bookworm, which has no Asterisk package.
#
# Usage:
#   deploy/asterisk-chroot.sh build          build if missing (idempotent), print the chroot folder
#   deploy/asterisk-chroot.sh start [ARGS]   mount proc and exec `asterisk -f ARGS` inside the chroot
#   deploy/asterisk-chroot.sh cli ARGS       run `asterisk ARGS` inside the chroot (e.g. -C conf -rx "...")
#   deploy/asterisk-chroot.sh umount         unmount the chroot's proc
#
# Environment: PALLAY_ASTERISK_CHROOT (default /var/cache/pallay/asterisk-sid), PALLAY_DEBIAN_MIRROR.
# Exit codes: 1 error, 3 the mirror could not be reached (offline).
set -euo pipefail

DIR=${PALLAY_ASTERISK_CHROOT:-/var/cache/pallay/asterisk-sid}
MIRROR=${PALLAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=asterisk,asterisk-core-sounds-es-gsm
STAMP=.pallay-complete

die() { echo "asterisk-chroot: $1" >&2; exit "${2:-1}"; }

# Unmounts everything mounted below a folder (debootstrap mounts proc and sys while it works, and an
# interrupted build can leave them behind), deepest first.
unmount_below() {
  local root mounts m
  root=$(realpath -m "$1")
  mounts=$(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
  for m in $mounts; do umount -l "$m" 2>/dev/null || true; done
}

remove_tree() {
  unmount_below "$1"
  rm -rf --one-file-system "$1"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  echo "asterisk-chroot: installing debootstrap" >&2
  apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed: are you offline?" 3
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
    || die "cannot install debootstrap"
}

# Cheap and idempotent, so it runs on every build call and repairs a chroot someone touched.
fixup() {
  local root=$1 d
  # Asterisk runs as root inside the chroot (no -U: that drops the capabilities it needs), so
  # its folders must belong to root, not to the package's asterisk user.
  for d in etc/asterisk var/lib/asterisk var/spool/asterisk var/log/asterisk var/cache/asterisk \
           var/run/asterisk usr/share/asterisk; do
    if [ -e "$root/$d" ]; then chown -R root:root "$root/$d"; fi
  done
  # The Spanish prompts install as es_MX_f_Allison; CHANNEL(language)=es looks in sounds/es.
  local sounds=$root/usr/share/asterisk/sounds
  if [ -d "$sounds/es_MX_f_Allison" ] && [ ! -e "$sounds/es" ]; then ln -s es_MX_f_Allison "$sounds/es"; fi
}

build() {
  if [ -f "$DIR/$STAMP" ]; then fixup "$DIR"; echo "$DIR"; return; fi
  [ "$(id -u)" -eq 0 ] || die "building the chroot needs root (debootstrap, chroot)"
  mkdir -p "$(dirname "$DIR")"
  # One builder at a time; a second caller waits and then finds the finished chroot.
  exec 9>"$DIR.lock"
  flock 9
  if [ -f "$DIR/$STAMP" ]; then echo "$DIR"; return; fi
  local old
  for old in "$DIR".tmp.*; do
    if [ -d "$old" ]; then remove_tree "$old"; else rm -f "$old"; fi
  done
  ensure_debootstrap
  local tmp log started
  tmp=$(mktemp -d "$DIR.tmp.XXXXXX")
  log="$tmp.log"
  trap 'remove_tree "$tmp"' EXIT
  started=$(date +%s)
  echo "asterisk-chroot: building $DIR from $MIRROR (once; about a minute and 500 MB)" >&2
  if ! debootstrap --variant=minbase --include="$PACKAGES" sid "$tmp" "$MIRROR" >"$log" 2>&1; then
    if grep -qiE "Failed getting release file|Temporary failure in name resolution|Could not resolve|Connection (refused|timed out)|Network is unreachable" "$log"; then
      die "cannot reach $MIRROR: are you offline? (log: $log)" 3
    fi
    die "debootstrap failed; last lines of $log: $(tail -n 3 "$log" | tr '\n' ' ')"
  fi
  unmount_below "$tmp"
  fixup "$tmp"
  chroot "$tmp" apt-get clean
  chroot "$tmp" /usr/sbin/asterisk -V >"$tmp/.pallay-asterisk-version"
  echo "built in $(( $(date +%s) - started )) s on $(date -u +%FT%TZ)" >"$tmp/$STAMP"
  [ -e "$DIR" ] && remove_tree "$DIR"
  mv "$tmp" "$DIR"
  trap - EXIT
  rm -f "$log"
  echo "asterisk-chroot: $(cat "$DIR/.pallay-asterisk-version"), $(cat "$DIR/$STAMP")" >&2
  echo "$DIR"
}

require_built() { [ -f "$DIR/$STAMP" ] || die "no chroot at $DIR: run $0 build first"; }

mount_proc() {
  mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc"
}

case "${1:-build}" in
  build) build ;;
  start) shift; require_built; mount_proc; exec chroot "$DIR" /usr/sbin/asterisk -f "$@" ;;
  cli) shift; require_built; exec chroot "$DIR" /usr/sbin/asterisk "$@" ;;
  umount) mountpoint -q "$DIR/proc" && umount -l "$DIR/proc"; true ;;
  *) die "unknown command ${1}; see the usage at the top of $0" ;;
esac
