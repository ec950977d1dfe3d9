#!/usr/bin/env bash
# Asterisk 22 on Debian 12: builds (once) and caches a Debian sid chroot with asterisk and the Spanish
# prompts, and runs Asterisk inside it. The test suite uses it; so can anyone trying the phone line on
# bookworm, which has no Asterisk package.
#
# Usage (as root, from the checkout):
#   deploy/asterisk-chroot.sh build             build if missing (idempotent), print the chroot folder
#   deploy/asterisk-chroot.sh configure [--data DIR]
#        install pallay's Asterisk files (deploy/asterisk/) into the chroot's /etc/asterisk, with the
#        AMI secret and the test softphone's password kept in the data folder (ami.secret,
#        sip-phone.secret; made once, mode 0600); prints the softphone's settings (idempotent)
#   deploy/asterisk-chroot.sh start [--data DIR] [ARGS]
#        mount proc and the data folder (at the same absolute path, so pallay's prompts play), then
#        exec `asterisk -f ARGS` inside the chroot
#   deploy/asterisk-chroot.sh cli ARGS          run `asterisk ARGS` inside the chroot (e.g. -rx "...")
#   deploy/asterisk-chroot.sh stop [ARGS]       stop that Asterisk, then umount
#   deploy/asterisk-chroot.sh umount            unmount proc and the data folders once nothing runs
#                                               inside the chroot any more
#
# The data folder is pallay's: --data DIR, else $PALLAY_DATA, else ./data (a relative one is taken
# from the current folder, as `pallay` does). configure reads the ports pallay uses from the same
# variables as pallay: PALLAY_IVR_LISTEN (FastAGI, default 127.0.0.1:4573) and PALLAY_IVR_AMI_PORT
# (5038); PALLAY_SIP_BIND (default 0.0.0.0:5060) is where Asterisk listens for SIP.
# Environment: PALLAY_ASTERISK_CHROOT (default /var/cache/pallay/asterisk-sid), PALLAY_DEBIAN_MIRROR.
# Exit codes: 1 error, 3 the mirror could not be reached (offline).
set -euo pipefail

DIR=${PALLAY_ASTERISK_CHROOT:-/var/cache/pallay/asterisk-sid}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIRROR=${PALLAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=asterisk,asterisk-core-sounds-es-gsm
STAMP=.pallay-complete

die() { echo "asterisk-chroot: $1" >&2; exit "${2:-1}"; }

# Unmounts everything mounted below a folder (debootstrap mounts proc and sys while it works, and an
# interrupted build can leave them behind), deepest first.
unmount_below() {
  local root m
  root=$(realpath -m "$1")
  # /proc/mounts writes a space in a path as \040: printf %b turns it back.
  awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
    while IFS= read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
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
    # Only what is not root's yet: a plain chown -R would rewrite every file each time.
    if [ -e "$root/$d" ]; then
      find "$root/$d" \( ! -user 0 -o ! -group 0 \) -exec chown -h root:root {} +
    fi
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

# pallay's data folder, absolute and without symlinks: what pallay itself names in every STREAM FILE.
data_folder() { realpath -m -- "${DATA_ARG:-${PALLAY_DATA:-data}}"; }

# The processes whose root is the chroot: Asterisk and its consoles.
inside_pids() {
  local root p
  root=$(realpath "$DIR")
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then echo "${p#/proc/}"; fi
  done
}

mount_proc() {
  mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc"
}

# Bind-mounts the data folder into the chroot at the path it has here, so the paths pallay sends
# (STREAM FILE /srv/pallay/media/...) name the same files inside. Where that path crosses a symlink
# of the chroot (/var/run -> /run), the mount point is where the chroot resolves it.
mount_data() {
  local data inside target
  data=$(data_folder)
  if [ ! -d "$data" ]; then
    [ -z "${DATA_ARG:-}${PALLAY_DATA:-}" ] || die "no data folder at $data"
    echo "asterisk-chroot: no data folder at $data (run \`pallay init\` there, or pass --data DIR):" \
         "Asterisk will not find pallay's prompts" >&2
    return 0
  fi
  [ "$data" != / ] || die "the data folder cannot be /"
  inside=$(chroot "$DIR" realpath -m -- "$data")
  target=$DIR$inside
  if mountpoint -q "$target"; then
    # A second start finds it mounted; a data folder replaced since then is mounted anew.
    [ "$(stat -c %d:%i "$data")" != "$(stat -c %d:%i "$target")" ] || return 0
    umount -l "$target"
  fi
  mkdir -p "$target"
  mount --bind "$data" "$target"
  echo "asterisk-chroot: Asterisk sees pallay's data folder $data" >&2
}

# Unmounts proc and the data folders, but only once no process runs inside the chroot: several
# Asterisks (the test suite's, a technician's) may share one chroot, and a process whose files
# vanish under it fails in odd ways.
release() {
  local pids
  pids=$(inside_pids | tr '\n' ' ')
  if [ -n "$pids" ]; then
    echo "asterisk-chroot: still running inside $DIR (pid $pids): its mounts stay" >&2
    return 1
  fi
  unmount_below "$DIR"
}

asterisk_up() { chroot "$DIR" /usr/sbin/asterisk "$@" -rx "core show uptime" >/dev/null 2>&1; }

# The pid of the Asterisk that answers on the control socket ARGS name (-C conf), if one does.
asterisk_pid() {
  local rundir
  rundir=$(chroot "$DIR" /usr/sbin/asterisk "$@" -rx "core show settings" 2>/dev/null |
           sed -n 's|^ *Run/Sockets directory: *||p') || true
  [ -z "$rundir" ] || chroot "$DIR" cat "$rundir/asterisk.pid" 2>/dev/null || true
}

# A zombie (exited, not yet reaped by whoever started it) counts as stopped.
alive() {
  [ -r "/proc/$1/stat" ] && [ "$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

stop_asterisk() {
  local pid tries
  pid=$(asterisk_pid "$@")
  if [ -n "$pid" ]; then
    # Gracefully: a call in progress may end first; after 10 s calls are cut.
    chroot "$DIR" /usr/sbin/asterisk "$@" -rx "core stop gracefully" >/dev/null 2>&1 || true
    for tries in $(seq 150); do
      alive "$pid" || break
      if [ "$tries" = 50 ]; then
        chroot "$DIR" /usr/sbin/asterisk "$@" -rx "core stop now" >/dev/null 2>&1 || true
      fi
      sleep 0.2
    done
    ! alive "$pid" || die "Asterisk (pid $pid) did not stop within 30 s"
    echo "asterisk-chroot: Asterisk stopped" >&2
  fi
  release || true
}

# A secret kept in the data folder, printed: the one there, or a new random one (hex, mode 0600,
# owned like the folder so that pallay, running as its own user, can read it).
secret_in() {
  local file=$1 bytes=$2 value=""
  if [ ! -s "$file" ]; then
    (umask 077; od -An -N"$bytes" -tx1 /dev/urandom | tr -d ' \n' >"$file.tmp"; echo >>"$file.tmp")
    chown --reference="$(dirname "$file")" "$file.tmp"
    mv "$file.tmp" "$file"
    echo "asterisk-chroot: made $file" >&2
  fi
  read -r value <"$file" || true
  [[ $value =~ ^[A-Za-z0-9._+=-]+$ ]] ||
    die "$file: use letters and digits only (openssl rand -hex 32); ; # and spaces break Asterisk's files"
  printf '%s' "$value"
}

# Copies a template, replacing each PLACEHOLDER VALUE pair (bash, not sed: a secret may hold / or &).
render() {
  local from=$1 to=$2 text
  shift 2
  text=$(<"$from")
  while [ $# -gt 1 ]; do
    [[ $text == *"$1"* ]] || die "$from no longer holds '$1'"
    text=${text//"$1"/"$2"}
    shift 2
  done
  printf '%s\n' "$text" >"$to.tmp"
  mv "$to.tmp" "$to"
}

include_once() { grep -qxF "$2" "$1" || printf '\n%s\n' "$2" >>"$1"; }

configure() {
  local data etc ami_secret phone_secret agi=${PALLAY_IVR_LISTEN:-127.0.0.1:4573}
  local ami_port=${PALLAY_IVR_AMI_PORT:-5038} sip_bind=${PALLAY_SIP_BIND:-0.0.0.0:5060}
  [[ $agi =~ ^[A-Za-z0-9.-]+:[0-9]+$ ]] || die "PALLAY_IVR_LISTEN=$agi: expected host:port"
  [[ $ami_port =~ ^[0-9]+$ ]] || die "PALLAY_IVR_AMI_PORT=$ami_port: expected a port number"
  [[ $sip_bind =~ ^[0-9.]+:[0-9]+$ ]] || die "PALLAY_SIP_BIND=$sip_bind: expected address:port"
  data=$(data_folder)
  [ -d "$data" ] || die "no data folder at $data: run \`pallay init\` (or make run) first, or pass --data DIR"
  ami_secret=$(secret_in "$data/ami.secret" 32)
  phone_secret=$(secret_in "$data/sip-phone.secret" 8)
  etc=$DIR/etc/asterisk
  umask 077  # two of these files hold a secret; Asterisk runs as root in the chroot
  mkdir -p "$etc/manager.d"
  render "$HERE/asterisk/extensions_pallay.conf" "$etc/extensions_pallay.conf" \
    "agi://127.0.0.1:4573/" "agi://$agi/"
  render "$HERE/asterisk/manager_pallay.conf" "$etc/manager.d/pallay.conf" \
    CHANGE-ME-TO-A-LONG-RANDOM-SECRET "$ami_secret"
  render "$HERE/asterisk/pjsip_pallay.conf" "$etc/pjsip_pallay.conf" \
    "bind = 0.0.0.0:5060" "bind = $sip_bind"
  render "$HERE/asterisk/pjsip_pallay_phone.conf" "$etc/pjsip_pallay_phone.conf" \
    CHANGE-ME-TO-A-RANDOM-PASSWORD "$phone_secret"
  include_once "$etc/extensions.conf" "#include extensions_pallay.conf"
  include_once "$etc/pjsip.conf" "#include pjsip_pallay.conf"
  include_once "$etc/pjsip.conf" "#include pjsip_pallay_phone.conf"
  sed -i -E -e "s/^enabled[[:space:]]*=.*/enabled = yes/" -e "s/^port[[:space:]]*=.*/port = $ami_port/" \
    -e "s/^bindaddr[[:space:]]*=.*/bindaddr = 127.0.0.1/" "$etc/manager.conf"
  include_once "$etc/manager.conf" '#include "manager.d/*.conf"'
  if asterisk_up; then
    chroot "$DIR" /usr/sbin/asterisk -rx "core reload" >/dev/null
    echo "asterisk-chroot: the running Asterisk reloaded its configuration" >&2
  fi
  print_softphone "$data" "$sip_bind" "$phone_secret"
}

print_softphone() {
  local data=$1 bind=$2 password=$3 host
  host=${bind%:*}
  if [ "$host" = 0.0.0.0 ]; then host=$(hostname -I 2>/dev/null | awk '{ print $1 }' || true); fi
  [ -n "$host" ] || host="this machine's LAN address"
  cat <<TEXT
pallay's Asterisk files are in $DIR/etc/asterisk (FastAGI ${PALLAY_IVR_LISTEN:-127.0.0.1:4573}, AMI 127.0.0.1:${PALLAY_IVR_AMI_PORT:-5038}).
Test softphone (a SIP app on a phone on this network):
  server    $host, port ${bind##*:} (UDP)
  user      pallay-phone
  password  $password   (kept in $data/sip-phone.secret)
  dial      100
TEXT
}

# start/configure take --data DIR (or --data=DIR) before Asterisk's own arguments.
DATA_ARG=""
take_data_option() {
  case "${1:-}" in
    --data) [ $# -ge 2 ] || die "--data needs a folder"; DATA_ARG=$2; SHIFT=2 ;;
    --data=*) DATA_ARG=${1#--data=}; SHIFT=1 ;;
    *) SHIFT=0 ;;
  esac
}

COMMAND=${1:-build}
[ $# -eq 0 ] || shift
case "$COMMAND" in
  build) build ;;
  configure)
    take_data_option "$@"; shift "$SHIFT"
    [ $# -eq 0 ] || die "configure takes only --data DIR"
    require_built; configure ;;
  start)
    take_data_option "$@"; shift "$SHIFT"
    require_built; mount_proc; mount_data
    exec chroot "$DIR" /usr/sbin/asterisk -f "$@" ;;
  cli) require_built; exec chroot "$DIR" /usr/sbin/asterisk "$@" ;;
  stop) require_built; stop_asterisk "$@" ;;
  umount) release ;;
  *) die "unknown command $COMMAND; see the usage at the top of $0" ;;
esac
