#!/usr/bin/env bash
# One prepared check of a CUDA build of vovd on a machine with an NVIDIA GPU
# (a few minutes on an H100):
#   (a) vovd models            parameter counts
#   (b) vovd devices           the GPUs found, driver and CUDA versions
#   (c) vovd train             vovnet-27-slim, synthetic set, batch 128, 200 steps on
#                              cuda:0, then batch-1 and batch-32 timings over 10,000 images
#   (d) vovd devices --compare one forward pass on the GPU against the CPU
# and writes one JSON summary (train images/s, s/epoch extrapolated to CIFAR-10's
# 50,000 images, batch-1 p50 ms, batch-32 images/s, max abs difference).
#
# usage: scripts/gpu-check.sh [VOVD] [OUT.json]
#   VOVD defaults to target/release/vovd; OUT to gpu-check.json.
# env:   LAUNCH  a command to run vovd through, e.g. a wrapper that sets
#                LD_LIBRARY_PATH to the CUDA libraries (default: none)
#        DEVICE  the GPU to check (default cuda:0)
#        STEPS   training steps (default 200)
#        VAL     validation images, timed at batch 1 and 32 (default 10000)
set -euo pipefail
VOVD=${1:-target/release/vovd}
OUT=${2:-gpu-check.json}
DEVICE=${DEVICE:-cuda:0}
STEPS=${STEPS:-200}
VAL=${VAL:-10000}
LAUNCH=${LAUNCH:-}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

run() { # name, args...: stdout to $WORK/name.json, stderr to the terminal
  local name=$1; shift
  echo "== vovd $*" >&2
  local start=$SECONDS
  # shellcheck disable=SC2086
  if $LAUNCH "$VOVD" "$@" > "$WORK/$name.json"; then
    echo "   ok in $((SECONDS - start)) s" >&2
  else
    echo "   FAILED (exit $?) after $((SECONDS - start)) s" >&2
    echo '{"error": "failed"}' > "$WORK/$name.json"
  fi
}

run models models --json
run devices devices --json
run train train --model vovnet-27-slim --dataset synthetic --device "$DEVICE" \
  --epochs 2 --batch-size 128 --train-limit $((STEPS / 2 * 128)) --val-limit "$VAL" \
  --bn-momentum 0.9 --augmentation standard --json
run compare devices --compare "$DEVICE" --model vovnet-27-slim --batch 8 --json

python3 - "$WORK" "$OUT" <<'PY'
import json, sys, os
work, out = sys.argv[1], sys.argv[2]
load = lambda n: json.load(open(os.path.join(work, n + ".json")))
train, compare = load("train"), load("compare")
summary = {
    "models": load("models"),
    "devices": load("devices"),
    "compare": compare,
    "train": {k: v for k, v in train.items() if k not in ("spec", "history")},
    "history": train.get("history"),
}
ips = train.get("train_images_per_s")
summary["figures"] = {
    "device": train.get("fingerprint", {}).get("device_name"),
    "train_images_per_s": ips,
    "train_s_per_epoch_50k": 50000 / ips if ips else None,
    "batch1_p50_ms": (train.get("batch1") or {}).get("p50_ms"),
    "batch1_total_s": (train.get("batch1") or {}).get("total_s"),
    "batch32_images_per_s": (train.get("batch32") or {}).get("images_per_s"),
    "max_abs_diff_eval": compare.get("max_abs_diff_eval"),
    "max_abs_diff_train": compare.get("max_abs_diff_train"),
    "max_abs_logit": compare.get("max_abs_logit"),
    "peak_rss_bytes": train.get("peak_rss_bytes"),
}
json.dump(summary, open(out, "w"), indent=2)
print(json.dumps(summary["figures"], indent=2))
PY
echo "wrote $OUT" >&2
