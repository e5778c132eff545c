"""Tables of vovd vs PyTorch vs Keras from the JSON files of a bench-compare.sh run.

    python3 scripts/reference/compare.py bench-out/20260101-120000

Standard library only. Reads every *.json in the directory: each is the output of
`vovd bench --json` or `bench.py` (same shape). The framework is told by the start
of its "framework" string (vov, torch, keras). With several rounds each figure is
the median over rounds. Ratios are vov / other: above 1 is better for vov for
throughputs, below 1 is better for vov for latency and memory; "vov/best" compares
with the better of the others on that figure.

Under each model, a GFLOP/s line: the direct-convolution FLOPs of a training step
and of a batch-1 forward, as vov counts them from the model (the same model in
every framework), over each framework's median time, and the share of the CPU's
f32 peak that `vovd bench` reports in its machine line. At the end, one summary
row per model of the vov/best ratios.
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


def better(values, higher):
    values = [v for v in values if v]
    if not values:
        return None
    return max(values) if higher else min(values)


def medians(rs, key, scale=1.0):
    values = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
    return statistics.median(values) * scale if values else None


def gflops_line(by_fam, peak):
    """Achieved GFLOP/s per framework from vov's FLOP counts, or None."""
    vov = by_fam.get("vov", [])
    train_flops = medians(vov, "train_step_flops")
    b1_flops = medians(vov, "batch1_flops")
    if not train_flops or not b1_flops:
        return None
    parts = []
    for what, flops, key in (("train", train_flops, "train_step_ms"), ("batch-1", b1_flops, "batch1_p50_ms")):
        cells = []
        for fam in FAMILIES:
            ms = medians(by_fam.get(fam, []), key)
            if ms:
                g = flops / ms / 1e6
                share = f" ({100 * g / peak:.0f}%)" if peak else ""
                cells.append(f"{fam} {g:.1f}{share}")
        parts.append(f"{what} ({flops / 1e9:.3f} GFLOP): " + ", ".join(cells))
    head = f"  GFLOP/s (of a {peak:.1f} peak): " if peak else "  GFLOP/s: "
    return head + "; ".join(parts)


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
    peaks = [m["peak"] for fam, _, m, _ in runs if fam == "vov" and isinstance(m.get("peak"), dict)]
    peak = peaks[0]["gflops"] if peaks else None
    if peaks:
        p = peaks[0]
        machines = [f"{machines[0] if machines else '?'}; f32 peak {p['gflops']:.1f} GFLOP/s = "
                    f"{p['threads']} cores x {p['ghz']:.2f} GHz x {p['lanes']} lanes ({p['isa']}) x "
                    f"{p['fma_pipes']} FMA pipes x 2"] + machines[1:]
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
    summary = []
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
            f"{'vov/' + f:>12s}" for f in others + ["best"])
        print(header)
        row = {}
        for key, label, scale, higher in FIGURES:
            med = {fam: medians(by_fam.get(fam, []), key, scale) for fam in FAMILIES}
            best = better([med[f] for f in others], higher)
            ratios = []
            for theirs in [med[f] for f in others] + [best]:
                if med["vov"] is not None and theirs:
                    ratios.append(f"{med['vov'] / theirs:.2f}")
                else:
                    ratios.append("-")
            row[key] = ratios[-1]
            arrow = "(higher better)" if higher else "(lower better)"
            print(f"  {label:24s}" + "".join(f"{fmt(med[f]):>12s}" for f in FAMILIES)
                  + "".join(f"{x:>12s}" for x in ratios) + f"   {arrow}")
        line = gflops_line(by_fam, peak)
        if line:
            print(line)
        summary.append((model, row))

    print()
    print("vov / best of the others (throughputs: >= 1 meets the target; latency and memory: <= 1)")
    keys = [k for k, _, _, _ in FIGURES]
    print(f"  {'model':22s}" + "".join(f"{label[:14]:>16s}" for _, label, _, _ in FIGURES))
    for model, row in summary:
        print(f"  {model:22s}" + "".join(f"{row[k]:>16s}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
