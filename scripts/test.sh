#!/usr/bin/env bash
# The README's test command: installs what the tests need from Debian if it is
# missing, starts the one-node Slurm test cluster (scripts/slurm-up.sh) and runs
# `cargo test --workspace --locked` with SLURM_CONF pointing at it.
#
# usage: scripts/test.sh [CARGO TEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Real data for the data-set tests (Fashion-MNIST, offline), systemd-analyze for
# the unit files, openssl for deploy/tls.sh, a headless Chromium and its
# WebDriver for the dashboard's tests. Slurm's packages are slurm-up.sh's.
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The Slurm tests use this cluster (exports SLURM_CONF).
eval "$(scripts/slurm-up.sh)"

cargo test --workspace --locked "$@"
