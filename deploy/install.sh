#!/usr/bin/env bash
# Installs (or removes) vovd on this host: binary, systemd units, example config,
# the vovd user, the state directory and a random bearer token. Idempotent: run it
# again to upgrade the binary and units; an existing config or token is never
# overwritten.
#
#   sudo deploy/install.sh                           # from a checkout after `cargo build --release`
#   sudo deploy/install.sh --binary ./vovd --per-gpu 4
#   deploy/install.sh --prefix /tmp/root             # everything below /tmp/root, no root needed
#   DESTDIR=/tmp/stage deploy/install.sh             # stage a package tree
#   sudo deploy/install.sh --fetch-data              # and download CIFAR-10 (checksum verified)
#   sudo deploy/install.sh --uninstall [--purge]
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: install.sh [options]
  --binary PATH    vovd binary to install [target/release/vovd beside this checkout]
  --prefix DIR     install below DIR: DIR/bin, and DIR/etc, DIR/var/lib unless DIR is
                   /usr or /usr/local (then /etc and /var/lib) [/usr/local]
  --per-gpu N      also write /etc/vovd/gpu{0..N-1}.env for the vovd@ template
                   (ports 7070+i)
  --no-start       do not enable or start the service
  --fetch-data[=NAMES]
                   then fetch data sets (comma list; default cifar10) as the vovd
                   user into the configured data_dir: vovd data fetch NAME
  --data-url URL   with --fetch-data: a site mirror (vovd data fetch --url)
  --data-from PATH with --fetch-data: an archive or directory copied in by hand
  --data-checksum ALGO:HEX
                   with --fetch-data: the checksum of a site's own archive
  --uninstall      remove the binary and units (keeps config, token and state)
  --purge          with --uninstall: also remove config, token and state
  -h, --help       this text
environment:
  DESTDIR          stage every file below this directory (paths inside files stay final)
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
binary="$here/../target/release/vovd"
prefix=/usr/local
per_gpu=0
start=1
uninstall=0
purge=0
fetch_data=
fetch_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --per-gpu) per_gpu=${2:?--per-gpu needs a count}; shift 2 ;;
    --no-start) start=0; shift ;;
    --fetch-data) fetch_data=cifar10; shift ;;
    --fetch-data=*) fetch_data=${1#--fetch-data=}; shift
      [ -n "$fetch_data" ] || { echo "install.sh: --fetch-data= needs data set names (cifar10,fashion-mnist)" >&2; exit 2; } ;;
    --data-url) fetch_args+=(--url "${2:?--data-url needs a URL}"); shift 2 ;;
    --data-from) fetch_args+=(--from "${2:?--data-from needs a path}"); shift 2 ;;
    --data-checksum) fetch_args+=(--checksum "${2:?--data-checksum needs ALGO:HEX}"); shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ ${#fetch_args[@]} -gt 0 ]; then
  case "$fetch_data" in
    '') echo "install.sh: --data-url, --data-from and --data-checksum need --fetch-data" >&2; exit 2 ;;
    *,*) echo "install.sh: --data-url, --data-from and --data-checksum name one data set's files; give --fetch-data one name" >&2; exit 2 ;;
  esac
fi
case "$per_gpu" in ''|*[!0-9]*) echo "install.sh: --per-gpu: $per_gpu is not a count" >&2; exit 2 ;; esac
prefix=${prefix%/}
destdir=${DESTDIR:-}
destdir=${destdir%/}

case "$prefix" in
  /usr|/usr/local|'') etc=/etc; var=/var/lib ;;
  *) etc=$prefix/etc; var=$prefix/var/lib ;;
esac
bin=$prefix/bin
units=$etc/systemd/system
# A real install: as root, into /, with the standard layout. Only then are users
# created and systemd told.
system=0
if [ -z "$destdir" ] && [ "$etc" = /etc ] && [ "$(id -u)" -eq 0 ]; then system=1; fi
have_systemd=0
if [ "$system" = 1 ] && [ -d /run/systemd/system ]; then have_systemd=1; fi

say() { echo "install.sh: $*"; }

if [ "$uninstall" = 1 ]; then
  if [ "$have_systemd" = 1 ]; then
    systemctl disable --now vovd.service 2>/dev/null || true
    systemctl stop 'vovd@*.service' 2>/dev/null || true
  fi
  rm -f "$destdir$bin/vovd" "$destdir$units/vovd.service" "$destdir$units/vovd@.service"
  say "removed $bin/vovd and the units"
  if [ "$purge" = 1 ]; then
    rm -rf "$destdir$etc/vovd" "$destdir$var/vovd"
    say "purged $etc/vovd and $var/vovd"
    if [ "$system" = 1 ] && id vovd >/dev/null 2>&1; then userdel vovd || true; fi
  else
    say "kept $etc/vovd (config, token) and $var/vovd (jobs, results); --purge removes them"
  fi
  if [ "$have_systemd" = 1 ]; then systemctl daemon-reload; fi
  exit 0
fi

[ -x "$binary" ] || { echo "install.sh: no vovd binary at $binary (build with cargo build --release, or pass --binary)" >&2; exit 1; }

# Rewrites the default paths in a shipped file to this layout.
place() {
  sed -e "s|/usr/local/bin/vovd|$bin/vovd|g" \
      -e "s|/etc/vovd|$etc/vovd|g" \
      -e "s|/var/lib/vovd|$var/vovd|g" "$1"
}

# 1. The user (real installs only).
if [ "$system" = 1 ] && ! id vovd >/dev/null 2>&1; then
  useradd --system --home-dir "$var/vovd" --no-create-home --shell /usr/sbin/nologin vovd
  say "created user vovd"
fi
owner() { if [ "$system" = 1 ]; then chown "$@"; fi; }

# 2. Binary and units (always replaced: this is the upgrade path).
install -d -m 0755 "$destdir$bin" "$destdir$units"
install -m 0755 "$binary" "$destdir$bin/vovd.new"
mv -f "$destdir$bin/vovd.new" "$destdir$bin/vovd"
for unit in vovd.service vovd@.service; do
  place "$here/systemd/$unit" > "$destdir$units/$unit.new"
  chmod 0644 "$destdir$units/$unit.new"
  mv -f "$destdir$units/$unit.new" "$destdir$units/$unit"
done
say "installed $bin/vovd and $units/vovd.service, vovd@.service"

# 3. Config and token: never overwritten.
install -d -m 0755 "$destdir$etc/vovd"
if [ -e "$destdir$etc/vovd/vovd.toml" ]; then
  say "kept existing $etc/vovd/vovd.toml"
else
  place "$here/vovd.toml" > "$destdir$etc/vovd/vovd.toml"
  chmod 0644 "$destdir$etc/vovd/vovd.toml"
  say "wrote $etc/vovd/vovd.toml"
fi
if [ -e "$destdir$etc/vovd/token" ]; then
  say "kept existing $etc/vovd/token"
else
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$destdir$etc/vovd/token")
  chmod 0600 "$destdir$etc/vovd/token"
  owner vovd:vovd "$destdir$etc/vovd/token"
  say "wrote a new token to $etc/vovd/token (0600): give it to vovctl users"
fi
for i in $(seq 0 $((per_gpu - 1))); do
  env_file="$destdir$etc/vovd/gpu$i.env"
  if [ ! -e "$env_file" ]; then
    echo "VOVD__LISTEN=0.0.0.0:$((7070 + i))" > "$env_file"
    say "wrote $etc/vovd/gpu$i.env (port $((7070 + i)))"
  fi
done

# 4. State directory (systemd's StateDirectory= would create it too).
install -d -m 0750 "$destdir$var/vovd" "$destdir$var/vovd/data"
owner -R vovd:vovd "$destdir$var/vovd"

# 5. systemd.
if [ "$have_systemd" = 1 ]; then
  systemctl daemon-reload
  if [ "$start" = 1 ] && [ "$per_gpu" = 0 ]; then
    systemctl enable vovd.service
    systemctl restart vovd.service
    say "vovd.service (re)started: journalctl -u vovd"
  fi
elif [ "$system" = 0 ]; then
  say "staged below ${destdir:-$prefix}; no user created and systemd not told"
fi

# 6. Data sets: fetched as the vovd user into the configured data_dir, so the
# daemon (which never downloads on its own) finds them.
if [ -n "$fetch_data" ]; then
  if [ -n "$destdir" ]; then
    say "--fetch-data skipped: a DESTDIR stage is not the host (run vovd data fetch there)"
  else
    IFS=, read -r -a names <<< "$fetch_data"
    as_vovd=()
    if [ "$system" = 1 ]; then as_vovd=(runuser -u vovd --); fi
    for name in "${names[@]}"; do
      say "fetching $name into the configured data_dir"
      # ${a[@]+"${a[@]}"}: an empty array under set -u, on every bash.
      ${as_vovd[@]+"${as_vovd[@]}"} "$bin/vovd" data fetch "$name" --config "$etc/vovd/vovd.toml" \
        ${fetch_args[@]+"${fetch_args[@]}"}
    done
  fi
fi
