#!/usr/bin/env bash
# Stops the one-node Slurm cluster that scripts/slurm-up.sh started in DIR:
# slurmd, then slurmctld, then munged, each by its pid file. Jobs still running
# end with slurmd. The directory (logs, state) is kept.
#
# usage: scripts/slurm-down.sh [DIR]    (DIR defaults to /tmp/vov-slurm)
set -euo pipefail

DIR="${1:-/tmp/vov-slurm}"

# Sends SIGTERM to the process in pid file $1 and waits (at most ~10 s) for it to exit.
stop() {
  local pidfile=$1 name=$2 pid
  [ -s "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    echo "slurm-down: stopping $name ($pid)" >&2
    kill -TERM "$pid"
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm-down: $name ($pid) still alive after 10s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

stop "$DIR/slurmd.pid" slurmd
stop "$DIR/slurmctld.pid" slurmctld
stop "$DIR/munge/munged.pid" munged
