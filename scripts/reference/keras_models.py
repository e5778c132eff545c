"""The benchmark's eight models in Keras, built exactly as models.md specifies.

Used as the reference that vov's candle models are checked against: same layers,
same Keras defaults (Glorot-uniform kernels, zero biases, BatchNorm momentum 0.99
and epsilon 1e-3), same parameter counts.
"""

import keras
from keras import layers

VOVNET = {
    "vovnet-27-slim": ([64, 80, 96, 112], [128, 256, 384, 512], [1, 1, 1, 1]),
    "vovnet-39": ([128, 160, 192, 224], [256, 512, 768, 1024], [1, 1, 2, 2]),
    "vovnet-57": ([128, 160, 192, 224], [256, 512, 768, 1024], [1, 1, 4, 3]),
}
DENSENET = {
    "densenet-koshian-2": (16, [1, 2, 4, 3]),
    "densenet-koshian-3": (32, [1, 2, 4, 3]),
    "densenet-koshian-4": (16, [2, 4, 8, 5]),
    "densenet-koshian-5": (16, [3, 6, 12, 8]),
    "densenet-koshian-6": (16, [6, 12, 24, 16]),
}
PRESETS = list(DENSENET) + list(VOVNET)


def _cbr(x, channels, size, bn_momentum):
    x = layers.Conv2D(channels, size, padding="same")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=1e-3)(x)
    return layers.ReLU()(x)


def _osa(x, width, out, n, bn_momentum):
    outs = []
    for _ in range(n):
        x = _cbr(x, width, 3, bn_momentum)
        outs.append(x)
    return _cbr(layers.Concatenate()(outs), out, 1, bn_momentum)


def vovnet(name, input_shape, bn_momentum=0.99):
    widths, outputs, reps = VOVNET[name]
    inp = keras.Input(input_shape)
    x = inp
    for c in (64, 64, 128):
        x = _cbr(x, c, 3, bn_momentum)
    for width, out, r in zip(widths, outputs, reps):
        x = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
        for _ in range(r):
            x = _osa(x, width, out, 5, bn_momentum)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(10)(x), name=name)


def densenet(name, input_shape, bn_momentum=0.99):
    growth, blocks = DENSENET[name]
    inp = keras.Input(input_shape)
    x = layers.Conv2D(16, 1)(inp)
    channels = 16
    for b, n in enumerate(blocks):
        for _ in range(n):
            h = layers.BatchNormalization(momentum=bn_momentum, epsilon=1e-3)(x)
            h = layers.Conv2D(128, 1)(layers.ReLU()(h))
            h = layers.BatchNormalization(momentum=bn_momentum, epsilon=1e-3)(h)
            h = layers.Conv2D(growth, 3, padding="same")(layers.ReLU()(h))
            x = layers.Concatenate()([x, h])
            channels += growth
        if b + 1 < len(blocks):
            channels = channels // 2
            x = layers.AveragePooling2D(2)(layers.Conv2D(channels, 1)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(10)(x), name=name)


def build(name, input_shape=(32, 32, 3), bn_momentum=0.99):
    """The preset `name` for NHWC inputs of `input_shape`; outputs logits."""
    if name in VOVNET:
        return vovnet(name, input_shape, bn_momentum)
    return densenet(name, input_shape, bn_momentum)


def trainable_count(model):
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
