#!/usr/bin/env bash
# ASHA against the full random search of the same configurations.
#
#   scripts/bench-search.sh [SWEEP_FILE]     (default configs/search-fmnist.toml)
#
# Runs the sweep as its file says (an adaptive [search]), then the same trials
# with kind = "grid" (every configuration to its full epochs), each on a local
# vovd with a store of its own under $OUT/<timestamp>/, and prints for each: the
# trials, the epochs run, the wall time and the best validation accuracy found
# (the best epoch of any trial, stopped ones included), then the ratios.
#
# Environment:
#   VOVCTL    vovctl binary, with vovd beside it (default <repo>/target/release/vovctl)
#   DATA_DIR  data root holding the sweep's data set  (default ./data)
#   OUT       output directory                        (default <repo>/bench-out)
# Benchmarks are slow and noisy: never run them in CI.
set -eu -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VOVCTL=${VOVCTL:-$REPO/target/release/vovctl}
DATA_DIR=${DATA_DIR:-data}
OUT=${OUT:-$REPO/bench-out}
FILE=${1:-$REPO/configs/search-fmnist.toml}
[ -x "$VOVCTL" ] || { echo "no vovctl at $VOVCTL (cargo build --release, or set VOVCTL)" >&2; exit 2; }
[ -f "$FILE" ] || { echo "no sweep file $FILE" >&2; exit 2; }

run_dir=$OUT/search-$(date +%Y%m%d-%H%M%S)
mkdir -p "$run_dir"
# The same file with its [search] table replaced by a grid.
grid_file=$run_dir/grid.toml
awk '/^\[search\]/{skip=1; print "[search]\nkind = \"grid\""; next} /^\[/{skip=0} !skip' "$FILE" >"$grid_file"

one() { # NAME FILE
    local name=$1 file=$2 start end
    start=$(date +%s.%N)
    "$VOVCTL" sweep "$file" --store "$run_dir/$name.sqlite" --data-dir "$DATA_DIR" --json \
        >"$run_dir/$name.events.jsonl" 2>"$run_dir/$name.stderr.log" || true
    end=$(date +%s.%N)
    sweep=$(awk -F'"' '/^name *=/{print $2; exit}' "$file")
    "$VOVCTL" results "$sweep" --store "$run_dir/$name.sqlite" --format json >"$run_dir/$name.json" || true
    echo "$start $end" >"$run_dir/$name.wall"
}

echo "ASHA run ($FILE) -> $run_dir" >&2
one search "$FILE"
echo "grid run of the same trials" >&2
one grid "$grid_file"

python3 - "$run_dir" <<'PY'
import json, sys
d = sys.argv[1]
def figures(name):
    rows = json.load(open(f"{d}/{name}.json"))
    start, end = map(float, open(f"{d}/{name}.wall").read().split())
    epochs = sum(r["epochs_run"] for r in rows)
    best = max(((e["val_acc"], r["config"]) for r in rows for e in r["history"]), default=(0, ""))
    return len(rows), epochs, end - start, best
s, g = figures("search"), figures("grid")
print(f"{'run':<8} {'trials':>6} {'epochs':>7} {'wall s':>8} {'best val acc %':>15}  best configuration")
for name, (n, ep, wall, (acc, cfg)) in (("search", s), ("grid", g)):
    print(f"{name:<8} {n:>6} {ep:>7} {wall:>8.1f} {acc * 100:>15.2f}  {cfg}")
print(f"epochs search/grid {s[1] / max(g[1], 1):.3f}; wall search/grid {s[2] / max(g[2], 1e-9):.3f}; "
      f"best accuracy search - grid {(s[3][0] - g[3][0]) * 100:+.2f} points")
PY
