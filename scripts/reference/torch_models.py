"""The benchmark's eight models in PyTorch (NCHW), layer for layer as keras_models.py.

Same structure, same Keras conventions where PyTorch differs by default:
Conv2d and Linear with bias, weights Glorot-uniform (xavier_uniform_) and biases
zero; BatchNorm2d(eps=1e-3, momentum=0.01), which is Keras' momentum 0.99
(PyTorch's momentum weighs the new batch, Keras' the old moving value); "same"
padding for the 3x3 convs (padding=1), max-pool 3x3 stride 2 without padding
(floor), average-pool 2x2 stride 2, channel concatenation, global average pooling,
Linear(..., 10) producing logits.

The trainable parameter count equals Keras' for every preset; `counts` also gives
the Keras `count_params()` convention, which adds BatchNorm's moving mean and
variance (PyTorch's running_mean/running_var buffers).

    python torch_models.py        # prints the counts of all eight presets
"""

import torch
from torch import nn

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

BN_EPS = 1e-3


def _bn(channels, bn_momentum):
    # Keras momentum m keeps m of the old moving value; PyTorch's keeps 1 - m.
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=1.0 - bn_momentum)


class CBR(nn.Sequential):
    """Conv k x k stride 1 "same" with bias -> BN -> ReLU."""

    def __init__(self, cin, cout, size, bn_momentum):
        super().__init__(
            nn.Conv2d(cin, cout, size, padding=size // 2, bias=True),
            _bn(cout, bn_momentum),
            nn.ReLU(inplace=True),
        )


class OSA(nn.Module):
    """n chained CBR(width, 3); concatenation of their n outputs (not the input); CBR(out, 1)."""

    def __init__(self, cin, width, out, n, bn_momentum):
        super().__init__()
        self.convs = nn.ModuleList(
            CBR(cin if i == 0 else width, width, 3, bn_momentum) for i in range(n)
        )
        self.concat_conv = CBR(width * n, out, 1, bn_momentum)

    def forward(self, x):
        outs = []
        for conv in self.convs:
            x = conv(x)
            outs.append(x)
        return self.concat_conv(torch.cat(outs, dim=1))


class VoVNet(nn.Module):
    def __init__(self, widths, outputs, reps, in_channels=3, classes=10, osa_layers=5,
                 bn_momentum=0.99):
        super().__init__()
        stem, c = [], in_channels
        for out in (64, 64, 128):
            stem.append(CBR(c, out, 3, bn_momentum))
            c = out
        self.stem = nn.Sequential(*stem)
        stages = []
        for width, out, r in zip(widths, outputs, reps):
            stage = [nn.MaxPool2d(3, stride=2, padding=0)]
            for _ in range(r):
                stage.append(OSA(c, width, out, osa_layers, bn_momentum))
                c = out
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class DenseLayer(nn.Module):
    """BN -> ReLU -> Conv 1x1 to 128 -> BN -> ReLU -> Conv 3x3 to k; concatenate [input, new]."""

    def __init__(self, cin, growth, bottleneck, bn_momentum):
        super().__init__()
        self.body = nn.Sequential(
            _bn(cin, bn_momentum),
            nn.ReLU(),
            nn.Conv2d(cin, bottleneck, 1, bias=True),
            _bn(bottleneck, bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(bottleneck, growth, 3, padding=1, bias=True),
        )

    def forward(self, x):
        return torch.cat([x, self.body(x)], dim=1)


class DenseNet(nn.Module):
    def __init__(self, growth, blocks, in_channels=3, classes=10, stem=16, bottleneck=128,
                 compression=0.5, bn_momentum=0.99):
        super().__init__()
        layers = [nn.Conv2d(in_channels, stem, 1, bias=True)]
        c = stem
        for b, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth, bottleneck, bn_momentum))
                c += growth
            if b + 1 < len(blocks):
                out = int(c * compression)
                layers.append(nn.Conv2d(c, out, 1, bias=True))
                layers.append(nn.AvgPool2d(2, stride=2))
                c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        x = self.features(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _keras_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def build(name, in_channels=3, classes=10, bn_momentum=0.99):
    """The preset `name` for NCHW inputs with `in_channels` channels; outputs logits."""
    if name in VOVNET:
        widths, outputs, reps = VOVNET[name]
        model = VoVNet(widths, outputs, reps, in_channels, classes, bn_momentum=bn_momentum)
    elif name in DENSENET:
        growth, blocks = DENSENET[name]
        model = DenseNet(growth, blocks, in_channels, classes, bn_momentum=bn_momentum)
    else:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return _keras_init(model)


def counts(model):
    """(total in Keras' count_params() convention, trainable).

    Keras counts BatchNorm's moving mean and variance as (non-trainable) weights;
    here they are the running_mean and running_var buffers (num_batches_tracked,
    which Keras has no counterpart of, is left out).
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    moving = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    )
    return trainable + frozen + moving, trainable


if __name__ == "__main__":
    for preset in PRESETS:
        total, trainable = counts(build(preset))
        print(f"{preset:20s} params {total:>11,d} trainable {trainable:>11,d}")
