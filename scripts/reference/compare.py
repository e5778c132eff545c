"""Tables of vovd vs PyTorch vs Keras from the JSON files of a bench-compare.sh run.

    python3 scripts/reference/compare.py bench-out/20260101-120000

Standard library only. Reads every *.json in the directory: each is the output of
`vovd bench --json` or `bench.py` (same shape). The framework is told by the start
of its "framework" string (vov, torch, keras). With several rounds each figure is
the median over rounds. Ratios are vov / other: above 1 is better for vov for
throughputs, below 1 is better for vov for latency and memory.
"""

import json
import os
import statistics
import sys

FAMILIES = ["vov", "torch", "keras"]
FIGURES = [
    # key, label, scale, higher is better
    ("train_images_per_s", "train images/s", 1.0, True),
    ("train_step_ms", "train step ms", 1.0, False),
    ("batch1_p50_ms", "batch-1 p50 ms", 1.0, False),
    ("batch1_p99_ms", "batch-1 p99 ms", 1.0, False),
    ("batch32_images_per_s", "batch-32 images/s", 1.0, True),
    ("peak_rss_bytes", "peak RSS MiB", 1.0 / 2**20, False),
]


def family(framework):
    name = framework.strip().lower()
    for f in FAMILIES:
        if name.startswith(f):
            return f
    return name.split()[0] if name else "?"


def load(directory):
    runs = []  # (family, framework string, machine, result)
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".json"):
            continue
        path = os.path.join(directory, entry)
        try:
            with open(path) as f:
                doc = json.load(f)
            fam = family(doc["framework"])
            for r in doc["results"]:
                runs.append((fam, doc["framework"], doc.get("machine", {}), r))
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"skipping {path}: {e}", file=sys.stderr)
    return runs


def fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs = load(argv[1])
    if not runs:
        print(f"no results in {argv[1]}", file=sys.stderr)
        return 1

    machines = sorted({
        f"{m.get('cpu_model', '?')}, {m.get('threads', '?')} thread(s)" for _, _, m, _ in runs
    })
    names = {}
    for fam, framework, _, _ in runs:
        names.setdefault(fam, set()).add(framework)
    print("machine: " + " | ".join(machines))
    print("frameworks: " + " | ".join(
        f"{fam}: {', '.join(sorted(names[fam]))}" for fam in FAMILIES + sorted(set(names) - set(FAMILIES))
        if fam in names))

    models = []
    for _, _, _, r in runs:
        if r["model"] not in models:
            models.append(r["model"])
    others = FAMILIES[1:]
    for model in models:
        by_fam = {}
        for fam, _, _, r in runs:
            if r["model"] == model:
                by_fam.setdefault(fam, []).append(r)
        params = sorted({(r.get("params"), r.get("trainable")) for rs in by_fam.values() for r in rs},
                        key=str)
        counts = ", ".join(f"{p:,} / {t:,}" if isinstance(p, int) and isinstance(t, int) else f"{p} / {t}"
                           for p, t in params)
        rounds = ", ".join(f"{f} {len(by_fam[f])}" for f in FAMILIES if f in by_fam)
        print()
        print(f"{model}: params {counts} (total / trainable); runs: {rounds}")
        if len(params) > 1:
            print("  WARNING: the frameworks disagree on the parameter count")
        header = f"  {'figure':24s}" + "".join(f"{f:>12s}" for f in FAMILIES) + "".join(
            f"{'vov/' + f:>12s}" for f in others)
        print(header)
        for key, label, scale, higher in FIGURES:
            med = {}
            for fam in FAMILIES:
                values = [r[key] for r in by_fam.get(fam, []) if isinstance(r.get(key), (int, float))]
                med[fam] = statistics.median(values) * scale if values else None
            ratios = []
            for f in others:
                if med["vov"] is not None and med[f]:
                    ratios.append(f"{med['vov'] / med[f]:.2f}")
                else:
                    ratios.append("-")
            arrow = "(higher better)" if higher else "(lower better)"
            print(f"  {label:24s}" + "".join(f"{fmt(med[f]):>12s}" for f in FAMILIES)
                  + "".join(f"{x:>12s}" for x in ratios) + f"   {arrow}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
