#!/usr/bin/env bash
# vovd vs PyTorch vs Keras on the same CPU benchmark, side by side.
#
#   scripts/bench-compare.sh [MODEL...|all]  (default: vovnet-27-slim densenet-koshian-2;
#                                             all: the eight presets `vovd models` lists)
#
# For each round and each model, back to back: `vovd bench --models M --threads T --json`,
# then scripts/reference/bench.py for M under PyTorch, then under Keras; each run's
# JSON goes to $OUT/<timestamp>/r<round>-<model>-<vov|torch|keras>.json (progress to
# the terminal and to stderr.log there). Then scripts/reference/compare.py (system
# python3, standard library only) prints one table per model: each framework's
# figures (median over rounds) and the ratios vov/torch and vov/keras.
# Re-print the tables of an earlier run: python3 scripts/reference/compare.py DIR
#
# Environment (paths are relative to the current directory; defaults to the repo):
#   VOVD       vovd binary                  (default <repo>/target/release/vovd)
#   TORCH_PY   python with torch            (default <repo>/.venv-torch/bin/python)
#   KERAS_PY   python with tensorflow/keras (default <repo>/.venv-keras/bin/python)
#   ROUNDS     rounds of the whole sequence (default 1)
#   OUT        output directory             (default <repo>/bench-out)
#   THREADS    threads for every framework  (default 2)
#   VOVD_ARGS  extra arguments for vovd bench, BENCH_ARGS for bench.py (default none),
#              e.g. BENCH_ARGS="--train-steps 2 --batch1-images 50"
# A framework whose binary or interpreter is missing is skipped with a message.
# Benchmarks are slow and noisy: never run them in CI.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VOVD=${VOVD:-$REPO/target/release/vovd}
TORCH_PY=${TORCH_PY:-$REPO/.venv-torch/bin/python}
KERAS_PY=${KERAS_PY:-$REPO/.venv-keras/bin/python}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$REPO/bench-out}
THREADS=${THREADS:-2}
VOVD_ARGS=${VOVD_ARGS:-}
BENCH_ARGS=${BENCH_ARGS:-}
BENCH_PY=$REPO/scripts/reference/bench.py

if [ "$#" -gt 0 ]; then models=("$@"); else models=(vovnet-27-slim densenet-koshian-2); fi
if [ "${models[*]}" = all ]; then
  # The presets, from the one list vovd has (its `models --json`).
  mapfile -t models < <("$VOVD" models --json | python3 -c 'import json, sys; [print(m["name"]) for m in json.load(sys.stdin)]') || true
  if [ "${#models[@]}" -eq 0 ]; then echo "all: cannot list the presets with $VOVD models --json" >&2; exit 1; fi
fi
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "ROUNDS must be a positive integer" >&2; exit 2 ;; esac

runnable() { [ -x "$1" ] && [ ! -d "$1" ] || command -v "$1" >/dev/null 2>&1; }

frameworks=()
if runnable "$VOVD"; then frameworks+=(vov); else echo "skipping vov: no executable $VOVD (cargo build --release, or set VOVD)" >&2; fi
if runnable "$TORCH_PY"; then frameworks+=(torch); else echo "skipping torch: no interpreter $TORCH_PY (see scripts/reference/README.md, or set TORCH_PY)" >&2; fi
if runnable "$KERAS_PY"; then frameworks+=(keras); else echo "skipping keras: no interpreter $KERAS_PY (see scripts/reference/README.md, or set KERAS_PY)" >&2; fi
if [ "${#frameworks[@]}" -eq 0 ]; then echo "nothing to run" >&2; exit 1; fi

dir=$OUT/$(date +%Y%m%d-%H%M%S)
mkdir -p "$dir" || exit 1
echo "models: ${models[*]}; frameworks: ${frameworks[*]}; rounds: $ROUNDS; threads: $THREADS; output: $dir" >&2

failed=0
for ((round = 1; round <= ROUNDS; round++)); do
  for model in "${models[@]}"; do
    for fw in "${frameworks[@]}"; do
      case $fw in
        vov) cmd=("$VOVD" bench --models "$model" --threads "$THREADS" --json) ; extra=$VOVD_ARGS ;;
        torch) cmd=("$TORCH_PY" "$BENCH_PY" --framework torch --models "$model" --threads "$THREADS") ; extra=$BENCH_ARGS ;;
        keras) cmd=("$KERAS_PY" "$BENCH_PY" --framework keras --models "$model" --threads "$THREADS") ; extra=$BENCH_ARGS ;;
      esac
      # shellcheck disable=SC2206  # extra arguments split on spaces on purpose
      [ -n "$extra" ] && cmd+=($extra)
      file=$dir/r$round-$model-$fw.json
      echo "== round $round/$ROUNDS, $model, $fw: ${cmd[*]}" | tee -a "$dir/stderr.log" >&2
      if "${cmd[@]}" >"$file.part" 2> >(tee -a "$dir/stderr.log" >&2) && [ -s "$file.part" ]; then
        mv "$file.part" "$file"
      else
        echo "== $fw failed on $model (output kept in $file.failed)" | tee -a "$dir/stderr.log" >&2
        mv "$file.part" "$file.failed"
        failed=1
      fi
    done
  done
done
wait  # let the stderr tee processes finish before the tables

echo
python3 "$REPO/scripts/reference/compare.py" "$dir" || failed=1
echo
echo "JSON outputs: $dir"
exit "$failed"
