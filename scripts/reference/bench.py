"""Reference CPU benchmark: the figures of `vovd bench --json`, measured in PyTorch or Keras.

    python bench.py --framework torch --models vovnet-27-slim,densenet-koshian-2
    python bench.py --framework keras --threads 2 --train-steps 3
    python bench.py --framework torch --counts     # parameter counts of all presets, no benchmark

Prints one JSON object on stdout; progress goes to stderr:

    {"framework": "torch 2.x" | "keras 3.x / tensorflow 2.x",
     "machine": {"cpu_model": ..., "threads": N},
     "results": [{"model", "params", "trainable", "train_images_per_s", "train_step_ms",
                  "batch1_p50_ms", "batch1_p99_ms", "batch32_images_per_s",
                  "peak_rss_bytes"}]}

The protocol is the same for every framework (and for vovd):
- inputs 32x32x3, 10 classes; random normal inputs and random labels, drawn once
  (seed 0) before timing and reused for every step and call;
- training: batch 128, Adam lr 1e-3 (beta1 0.9, beta2 0.999, epsilon 1e-7: Keras'
  defaults), softmax cross-entropy from logits, BatchNorm in training mode;
  `--warmup` untimed steps, then `--train-steps` timed steps;
  train_images_per_s = 128 * steps / seconds, train_step_ms = seconds / steps;
- batch 1: 10 untimed calls, then `--batch1-images` single-image forward passes
  in inference mode, each timed alone; p50 and p99 by nearest rank
  (the ceil(p/100 * n)-th smallest time);
- batch 32: 2 untimed calls, then `--batch32-images` / 32 forward passes of 32
  images in inference mode, timed together; batch32_images_per_s = images / seconds;
- threads: N intra-op threads and 1 inter-op thread, set before anything is built;
- peak_rss_bytes: ru_maxrss of the process that ran the model (each model runs in
  a fresh subprocess, so it is that model's peak, framework runtime included).
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The eight presets' counts (models.md): Keras count_params() and trainable.
EXPECTED = {
    "densenet-koshian-2": (255_046, 251_614),
    "densenet-koshian-3": (505_200, 501_004),
    "densenet-koshian-4": (599_536, 591_412),
    "densenet-koshian-5": (1_104_186, 1_089_114),
    "densenet-koshian-6": (3_316_848, 3_271_120),
    "vovnet-27-slim": (2_683_690, 2_677_098),
    "vovnet-39": (18_634_282, 18_613_866),
    "vovnet-57": (30_462_858, 30_431_242),
}
DEFAULT_MODELS = "vovnet-27-slim,densenet-koshian-2"
TRAIN_BATCH = 128
CLASSES = 10
BATCH1_WARMUP = 10
BATCH32 = 32
BATCH32_WARMUP = 2
SEED = 0


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def percentile(sorted_values, p):
    """Nearest rank: the ceil(p/100 * n)-th smallest value."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def limit_threads_env(threads):
    """Thread-pool variables, for the child process, before any framework is imported."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"


def summarize(model, params, trainable, train_s, steps, batch1_s, batch32_s, batch32_images):
    batch1_ms = sorted(t * 1000.0 for t in batch1_s)
    return {
        "model": model,
        "params": int(params),
        "trainable": int(trainable),
        "train_images_per_s": round(TRAIN_BATCH * steps / train_s, 3),
        "train_step_ms": round(train_s / steps * 1000.0, 3),
        "batch1_p50_ms": round(percentile(batch1_ms, 50), 4),
        "batch1_p99_ms": round(percentile(batch1_ms, 99), 4),
        "batch32_images_per_s": round(batch32_images / batch32_s, 3),
        "peak_rss_bytes": peak_rss_bytes(),
    }


# ---------------------------------------------------------------- PyTorch


def torch_setup(threads):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return torch


def torch_framework(a):
    import torch

    name = f"torch {torch.__version__.split('+')[0]}"
    return name + (" (channels_last)" if a.layout == "nhwc" else "")


def torch_counts(name):
    import torch_models

    return torch_models.counts(torch_models.build(name))


def torch_bench(name, a):
    torch = torch_setup(a.threads)
    import torch.nn.functional as F

    import torch_models

    fmt = torch.channels_last if a.layout == "nhwc" else torch.contiguous_format
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    model = torch_models.build(name).to(memory_format=fmt)
    params, trainable = torch_models.counts(model)
    log(f"{name}: params {params:,} trainable {trainable:,} (torch, {a.layout})")

    x = torch.randn(TRAIN_BATCH, 3, 32, 32, generator=gen).contiguous(memory_format=fmt)
    y = torch.randint(0, CLASSES, (TRAIN_BATCH,), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    model.train()
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.train_steps):
        loss = step()
    train_s = time.perf_counter() - t0
    log(f"{name}: train {TRAIN_BATCH * a.train_steps / train_s:.1f} images/s (loss {loss:.3f})")

    model.eval()
    x1 = torch.randn(1, 3, 32, 32, generator=gen).contiguous(memory_format=fmt)
    x32 = torch.randn(BATCH32, 3, 32, 32, generator=gen).contiguous(memory_format=fmt)
    batch1_s = []
    with torch.inference_mode():
        for _ in range(BATCH1_WARMUP):
            model(x1)
        for _ in range(a.batch1_images):
            t0 = time.perf_counter()
            model(x1)
            batch1_s.append(time.perf_counter() - t0)
        calls = max(1, a.batch32_images // BATCH32)
        for _ in range(BATCH32_WARMUP):
            model(x32)
        t0 = time.perf_counter()
        for _ in range(calls):
            model(x32)
        batch32_s = time.perf_counter() - t0
    return summarize(name, params, trainable, train_s, a.train_steps, batch1_s, batch32_s,
                     calls * BATCH32)


# ---------------------------------------------------------------- Keras / TensorFlow


def keras_setup(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    return tf, keras


def keras_framework(a):
    import keras
    import tensorflow as tf

    return f"keras {keras.__version__} / tensorflow {tf.__version__}"


def keras_counts(name):
    import keras_models

    model = keras_models.build(name)
    return model.count_params(), keras_models.trainable_count(model)


def keras_bench(name, a):
    tf, keras = keras_setup(a.threads)
    import numpy as np

    import keras_models

    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = keras_models.build(name)
    params, trainable = model.count_params(), keras_models.trainable_count(model)
    log(f"{name}: params {params:,} trainable {trainable:,} (keras)")

    # Training through Keras' own compiled train step (train_on_batch runs the
    # tf.function that fit() uses, one batch per call). jit_compile is left at
    # "auto", which Keras resolves to no XLA on a CPU-only machine: what a Keras
    # user gets.
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = tf.constant(rng.standard_normal((TRAIN_BATCH, 32, 32, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, CLASSES, TRAIN_BATCH), dtype=tf.int32)
    for _ in range(a.warmup):  # the first call also traces the train function
        model.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(a.train_steps):
        loss = model.train_on_batch(x, y)  # returns the loss as a Python float: synchronous
    train_s = time.perf_counter() - t0
    log(f"{name}: train {TRAIN_BATCH * a.train_steps / train_s:.1f} images/s (loss {float(loss):.3f})")

    # Inference: model(x, training=False) inside one tf.function (traced once per
    # input shape, during the warm-up calls), result fetched with .numpy(). This is
    # the fastest honest way in TF2 on CPU: calling the functional model eagerly
    # dispatches every layer from Python (measured ~20x slower at batch 1 for
    # densenet-koshian-2), predict() builds a data pipeline per call, and
    # predict_on_batch() runs the same kind of tf.function with extra conversions
    # (equal within noise). Same graph as training's, no XLA.
    forward = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
    x1 = tf.constant(rng.standard_normal((1, 32, 32, 3), dtype=np.float32))
    x32 = tf.constant(rng.standard_normal((BATCH32, 32, 32, 3), dtype=np.float32))
    batch1_s = []
    for _ in range(BATCH1_WARMUP):
        forward(x1).numpy()
    for _ in range(a.batch1_images):
        t0 = time.perf_counter()
        forward(x1).numpy()
        batch1_s.append(time.perf_counter() - t0)
    calls = max(1, a.batch32_images // BATCH32)
    for _ in range(BATCH32_WARMUP):
        forward(x32).numpy()
    t0 = time.perf_counter()
    for _ in range(calls):
        forward(x32).numpy()
    batch32_s = time.perf_counter() - t0
    return summarize(name, params, trainable, train_s, a.train_steps, batch1_s, batch32_s,
                     calls * BATCH32)


FRAMEWORKS = {
    "torch": (torch_setup, torch_framework, torch_counts, torch_bench),
    "keras": (keras_setup, keras_framework, keras_counts, keras_bench),
}


# ---------------------------------------------------------------- driver


def child_args(a, model):
    return [
        sys.executable, os.path.abspath(__file__),
        "--framework", a.framework,
        "--threads", str(a.threads),
        "--train-steps", str(a.train_steps),
        "--warmup", str(a.warmup),
        "--batch1-images", str(a.batch1_images),
        "--batch32-images", str(a.batch32_images),
        "--layout", a.layout,
        "--one", model,
    ]


def run_counts(a):
    setup, _, count, _ = FRAMEWORKS[a.framework]
    setup(a.threads)
    ok = True
    for name in EXPECTED:
        total, trainable = count(name)
        want = EXPECTED[name]
        good = (total, trainable) == want
        ok &= good
        log(f"{name:20s} params {total:>11,d} trainable {trainable:>11,d}  "
            + ("ok" if good else f"MISMATCH: models.md says {want[0]:,} / {want[1]:,}"))
    log(f"{a.framework}: " + ("all eight presets match models.md" if ok else "MISMATCH"))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=sorted(FRAMEWORKS), required=True)
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help=f"comma-separated presets (default {DEFAULT_MODELS}); 'all' for all eight")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch1-images", type=int, default=200)
    p.add_argument("--batch32-images", type=int, default=640)
    p.add_argument("--layout", choices=["nchw", "nhwc"], default=None,
                   help="torch only: nhwc runs the model and inputs channels_last (default nchw)")
    p.add_argument("--counts", action="store_true",
                   help="print the parameter counts of all eight presets against models.md and exit")
    p.add_argument("--one", metavar="MODEL", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.framework == "keras" and a.layout == "nchw":
        p.error("--layout is for torch only (Keras runs NHWC)")
    a.layout = a.layout or ("nhwc" if a.framework == "keras" else "nchw")
    if a.train_steps < 1 or a.batch1_images < 1 or a.batch32_images < 1 or a.threads < 1:
        p.error("--threads, --train-steps, --batch1-images and --batch32-images must be >= 1")

    limit_threads_env(a.threads)
    setup, framework, _, bench = FRAMEWORKS[a.framework]

    if a.counts:
        return run_counts(a)

    if a.one:  # child: one model, one JSON result on stdout
        result = bench(a.one, a)
        print(json.dumps({"framework": framework(a), "result": result}), flush=True)
        return 0

    models = list(EXPECTED) if a.models == "all" else [m.strip() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in EXPECTED]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(EXPECTED)}")
    log(f"{a.framework}: {len(models)} model(s), {a.threads} thread(s), train {a.warmup}+"
        f"{a.train_steps} steps of {TRAIN_BATCH}, batch-1 {a.batch1_images} calls, "
        f"batch-32 {max(1, a.batch32_images // BATCH32)} calls")
    results, name, failed = [], None, []
    for model in models:
        # A fresh process per model, so ru_maxrss is that model's peak.
        proc = subprocess.run(child_args(a, model), stdout=subprocess.PIPE, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            log(f"{model}: FAILED (exit {proc.returncode})")
            failed.append(model)
            continue
        out = json.loads(lines[-1])
        name = out["framework"]
        r = out["result"]
        log(f"{model}: train {r['train_images_per_s']:.1f} img/s, batch-1 p50 "
            f"{r['batch1_p50_ms']:.2f} ms p99 {r['batch1_p99_ms']:.2f} ms, batch-32 "
            f"{r['batch32_images_per_s']:.1f} img/s, peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB")
        results.append(r)
    print(json.dumps({
        "framework": name or a.framework,
        "machine": {"cpu_model": cpu_model(), "threads": a.threads},
        "results": results,
    }), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
