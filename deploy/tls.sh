#!/usr/bin/env bash
# A site CA and per-host certificates for vovd's TLS, with openssl.
#
#   deploy/tls.sh ca DIR                      # DIR/ca.pem, DIR/ca-key.pem (keep the key offline)
#   deploy/tls.sh host DIR NAME [IP ...]      # DIR/NAME.pem, DIR/NAME-key.pem for host NAME
#   deploy/tls.sh client DIR NAME             # DIR/NAME.pem, DIR/NAME-key.pem for mutual TLS
#
# Host certificates carry NAME (and any IPs) as subject alternative names: clients
# must connect by that name (https://NAME:7070). Keys are P-256, certificates last
# 825 days.
set -euo pipefail
umask 077

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { usage >&2; exit 2; }
mkdir -p "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

sign() { # name, extensions file
  local name=$1 ext=$2
  [ -f "$dir/ca.pem" ] && [ -f "$dir/ca-key.pem" ] || { echo "tls.sh: make the CA first: tls.sh ca $dir" >&2; exit 1; }
  key "$dir/$name-key.pem"
  openssl req -new -key "$dir/$name-key.pem" -subj "/CN=$name" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -days 825 -sha256 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext"
  chmod 0644 "$dir/$name.pem"
  echo "tls.sh: wrote $dir/$name.pem and $dir/$name-key.pem"
}

case "$cmd" in
  ca)
    key "$dir/ca-key.pem"
    openssl req -x509 -new -key "$dir/ca-key.pem" -subj "/CN=vov site CA" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$dir/ca.pem"
    chmod 0644 "$dir/ca.pem"
    echo "tls.sh: wrote $dir/ca.pem (give to every host and client) and $dir/ca-key.pem (keep safe)"
    ;;
  host)
    name=${3:?tls.sh host DIR NAME [IP ...]}; shift 3
    san="DNS:$name"
    for ip in "$@"; do san="$san,IP:$ip"; done
    ext=$(mktemp)
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" > "$ext"
    sign "$name" "$ext"
    ;;
  client)
    name=${3:?tls.sh client DIR NAME}
    ext=$(mktemp)
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > "$ext"
    sign "$name" "$ext"
    ;;
  *) usage >&2; exit 2 ;;
esac
