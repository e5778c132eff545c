#!/usr/bin/env bash
# Starts a real one-node Slurm cluster for vov's tests, without systemd:
# munged, slurmctld and `slurmd -N localhost`, two stand-in GPUs, no accounting.
# Everything (configs, state, spool, logs, pid files, the munge key and socket)
# lives under DIR; the configs come from tests/slurm/*.conf.in.
#
# usage: scripts/slurm-up.sh [DIR]      (DIR defaults to /tmp/vov-slurm)
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge if missing, waits
# (at most ~60 s) until the node is idle and prints one line on stdout:
#   export SLURM_CONF=DIR/slurm.conf
# (everything else goes to stderr), so `eval "$(scripts/slurm-up.sh)"` works.
# Idempotent: when the daemons of DIR already run and the node is idle it only
# prints that line. On failure it prints the tail of the logs and exits non-zero.
# The daemons run as the calling user (SlurmUser); scripts/slurm-down.sh stops them.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${1:-/tmp/vov-slurm}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"
WAIT_SECS=60

log() { echo "slurm-up: $*" >&2; }

# Whether the process named in pid file $1 is alive.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The node's state as sinfo reports it ("idle", "mixed", "down*", ...), or empty.
node_state() { timeout 10 sinfo -h -N -n localhost -o %T 2>/dev/null | head -n1 || true; }

# Whether the node can take jobs now (idle, or already running some).
ready() { case "$(node_state)" in idle | mixed | allocated) return 0 ;; *) return 1 ;; esac; }

fail() {
  log "$*"
  for f in "$DIR/munge/munged.log" "$DIR/slurmctld.log" "$DIR/slurmd.log" "$DIR"/*.out; do
    [ -f "$f" ] || continue
    echo "----- tail of $f" >&2
    tail -n 30 "$f" >&2
  done
  timeout 10 sinfo -R >&2 2>&1 || true
  exit 1
}

# 1. The Debian packages.
need=()
command -v munged >/dev/null || need+=(munge)
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sinfo >/dev/null || need+=(slurm-client)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2 || true
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# One start at a time per DIR (several test processes may call this at once).
exec 9>"$DIR/up.lock"
flock 9

# 2. Already up: only the export line.
if alive "$DIR/munge/munged.pid" && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && ready; then
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

# 3. The configs, from the templates. A cold start (no daemon of DIR alive)
# also clears the previous state, so every cluster starts with no jobs.
if ! alive "$DIR/slurmctld.pid" && ! alive "$DIR/slurmd.pid"; then
  rm -rf "$DIR/state" "$DIR/spool"
fi
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"

user="$(id -un)"
for f in slurm.conf gres.conf; do
  sed -e "s|@DIR@|$DIR|g" -e "s|@USER@|$user|g" "$ROOT/tests/slurm/$f.in" >"$DIR/$f.tmp"
  mv "$DIR/$f.tmp" "$DIR/$f"
done

# 4. munged with its own key and socket under DIR (munged wants the socket's
# directory searchable by all, and the key readable by its owner only). The
# daemons' output goes to files (a caller reading our stdout must see it close)
# and they do not inherit the lock (fd 9).
if ! alive "$DIR/munge/munged.pid"; then
  chmod 755 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$DIR/munge/munge.key"
  rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
  log "starting munged"
  munged --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed" </dev/null >"$DIR/munged.out" 2>&1 9>&- ||
    fail "munged did not start"
fi

# 5. slurmctld, then slurmd under the node name "localhost" (the machine's host
# name is something else). Both fork into the background.
if ! alive "$DIR/slurmctld.pid"; then
  log "starting slurmctld"
  slurmctld -f "$CONF" </dev/null >"$DIR/slurmctld.out" 2>&1 9>&- || fail "slurmctld did not start"
fi
if ! alive "$DIR/slurmd.pid"; then
  log "starting slurmd"
  slurmd -f "$CONF" -N localhost </dev/null >"$DIR/slurmd.out" 2>&1 9>&- || fail "slurmd did not start"
fi

# 6. Wait until the node is idle.
start=$SECONDS
until ready; do
  if [ $((SECONDS - start)) -ge $WAIT_SECS ]; then
    fail "the node is not idle after ${WAIT_SECS}s (state: '$(node_state)')"
  fi
  alive "$DIR/slurmctld.pid" || fail "slurmctld exited"
  alive "$DIR/slurmd.pid" || fail "slurmd exited"
  sleep 0.5
done
log "node idle after $((SECONDS - start))s"
echo "export SLURM_CONF=$CONF"
