"""Trains one preset in Keras with vov's protocol and prints one JSON line per epoch.

The accuracy reference for `vovd train`: same model, data (Fashion-MNIST from
Debian's dataset-fashion-mnist, zero-padded to 32x32, scaled to [0, 1]; or the
first N images of the official files), optimizer (Adam 1e-3, Keras defaults),
batch size and augmentation (`standard`: whole-pixel shifts of -4..4 with nearest
fill plus horizontal flips, drawn per image per epoch; or `none`).

    python train_keras.py --model densenet-koshian-2 --epochs 3 \
        --train-limit 10000 --val-limit 2000 --bn-momentum 0.9 --seed 0
"""

import argparse
import gzip
import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402

import keras_models  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion(prefix, limit):
    images = idx(f"{FASHION}/{prefix}-images-idx3-ubyte.gz")[:limit]
    labels = idx(f"{FASHION}/{prefix}-labels-idx1-ubyte.gz")[:limit]
    padded = np.zeros((len(images), 32, 32, 1), np.float32)
    padded[:, 2:30, 2:30, 0] = images / 255.0
    return padded, labels.astype(np.int64)


def augment(x, rng):
    out = np.empty_like(x)
    n, h, w, _ = x.shape
    for i in range(n):
        dy, dx = rng.integers(-4, 5, size=2)
        rows = np.clip(np.arange(h) - dy, 0, h - 1)
        cols = np.clip(np.arange(w) - dx, 0, w - 1)
        img = x[i][rows][:, cols]
        out[i] = img[:, ::-1] if rng.random() < 0.5 else img
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="densenet-koshian-2", choices=keras_models.PRESETS)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument("--val-limit", type=int, default=2000)
    p.add_argument("--bn-momentum", type=float, default=0.99)
    p.add_argument("--augmentation", choices=["none", "standard"], default="standard")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    keras.utils.set_random_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    x, y = fashion("train", a.train_limit)
    xv, yv = fashion("t10k", a.val_limit)
    model = keras_models.build(a.model, (32, 32, 1), a.bn_momentum)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    for epoch in range(a.epochs):
        xa = augment(x, rng) if a.augmentation == "standard" else x
        h = model.fit(xa, y, batch_size=a.batch_size, epochs=1, shuffle=True, verbose=0)
        val_loss, val_acc = model.evaluate(xv, yv, batch_size=a.batch_size, verbose=0)
        print(json.dumps({
            "epoch": epoch + 1,
            "train_loss": h.history["loss"][0],
            "train_acc": h.history["accuracy"][0],
            "val_loss": val_loss,
            "val_acc": val_acc,
            "params": model.count_params(),
        }), flush=True)


if __name__ == "__main__":
    main()
