"""Data sets, generated with torch (seeded) or read from an installed package — nothing is downloaded.

Points (2-D, classification): spiral, moons, circles, xor, gaussians.
Images: digits (scikit-learn's bundled 8x8 digits), flattened for mlp, 1x8x8 for cnn.
Sequences (recurrent models): the adding problem (regression) and the copy/memory task (classification).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tui_lab.core.choices import ARCHS, Registry
from tui_lab.core.config import LabConfig


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    task: str  # "classify" (cross-entropy, accuracy) or "regress" (mean squared error)
    n_outputs: int  # classes, or 1 for regression
    chance_loss: float  # the loss of the best constant guess (class frequencies; the mean): "learnt nothing"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> Dataset:
        return Dataset(
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_val.to(device),
            self.y_val.to(device),
            self.task,
            self.n_outputs,
            self.chance_loss,
        )


def build_dataset(cfg: LabConfig) -> Dataset:
    d = cfg.data
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y, classes = DATASETS[d.name](cfg, gen)
    # A seeded shuffle, then the split.
    order = torch.randperm(len(x), generator=gen)
    x, y = x[order], y[order]
    n_val = max(1, int(round(len(x) * d.val_fraction)))
    x_train, y_train, x_val, y_val = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
    if classes:
        freq = torch.bincount(y_train, minlength=classes).double() / len(y_train)
        entropy = float(-(freq[freq > 0] * freq[freq > 0].log()).sum())
        return Dataset(x_train, y_train, x_val, y_val, "classify", classes, entropy)
    return Dataset(x_train, y_train, x_val, y_val, "regress", 1, float(y_train.double().var(unbiased=False)))


# ---------------------------------------------------------------------------------------------------------
# 2-D point clouds. Each returns (x: float32 [n, 2], y: int64 [n]).


def _spiral(n: int, classes: int, noise: float, gen: torch.Generator):
    per = n // classes
    xs, ys = [], []
    for c in range(classes):
        r = torch.linspace(0.05, 1.0, per)
        theta = r * 4.0 + c * 2 * math.pi / classes + torch.randn(per, generator=gen) * noise * 2
        xs.append(torch.stack([r * torch.sin(theta), r * torch.cos(theta)], 1))
        ys.append(torch.full((per,), c))
    return torch.cat(xs), torch.cat(ys)


def _moons(n: int, classes: int, noise: float, gen: torch.Generator):
    half = n // 2
    t = torch.rand(half, generator=gen) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.cat([upper, lower]) + torch.randn(2 * half, 2, generator=gen) * noise
    x = (x - torch.tensor([0.5, 0.25])) / 0.9
    return x, torch.cat([torch.zeros(half), torch.ones(half)]).long()


def _circles(n: int, classes: int, noise: float, gen: torch.Generator):
    half = n // 2
    t = torch.rand(2 * half, generator=gen) * 2 * math.pi
    r = torch.cat([torch.full((half,), 1.0), torch.full((half,), 0.5)])
    x = torch.stack([r * torch.cos(t), r * torch.sin(t)], 1) + torch.randn(2 * half, 2, generator=gen) * noise
    return x, torch.cat([torch.zeros(half), torch.ones(half)]).long()


def _xor(n: int, classes: int, noise: float, gen: torch.Generator):
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    return x + torch.randn(n, 2, generator=gen) * noise * 0.5, y


def _gaussians(n: int, classes: int, noise: float, gen: torch.Generator):
    per = n // classes
    angles = torch.arange(classes) * 2 * math.pi / classes
    centres = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    spread = 0.15 + noise * 2
    x = torch.cat([centres[c] + torch.randn(per, 2, generator=gen) * spread for c in range(classes)])
    y = torch.arange(classes).repeat_interleave(per)
    return x, y


# ---------------------------------------------------------------------------------------------------------
# Digits and sequences.


def _digits(image: bool):
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    x = (x - x.mean()) / x.std()
    y = torch.tensor(bunch.target, dtype=torch.int64)
    return (x.reshape(-1, 1, 8, 8) if image else x), y


def _adding(n: int, seq_len: int, gen: torch.Generator):
    """Hochreiter's adding problem: two marked values somewhere in a sequence; predict their sum.

    Input [n, T, 2]: a uniform value and a 0/1 marker. One marker sits in the first half (so the network
    must carry it across many steps), the other in the second half.
    """
    values = torch.rand(n, seq_len, generator=gen)
    markers = torch.zeros(n, seq_len)
    half = max(1, seq_len // 2)
    first = torch.randint(0, half, (n,), generator=gen)
    second = torch.randint(half, seq_len, (n,), generator=gen)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], 2), y.unsqueeze(1)


def _copy(n: int, seq_len: int, classes: int, gen: torch.Generator):
    """The memory task: a symbol shown at the first step must be named at the last, past distractors."""
    symbols = torch.randint(0, classes, (n, seq_len), generator=gen)
    x = torch.nn.functional.one_hot(symbols, classes).float()
    return x, symbols[:, 0].clone()


def _points(make):
    """A 2-D point cloud as a data set: (x, y, number of classes)."""

    def build(cfg: LabConfig, gen: torch.Generator):
        x, y = make(cfg.data.samples, cfg.data.classes, cfg.data.noise, gen)
        return x, y, int(y.max().item()) + 1

    return build


# Data set -> (x, y, classes) from the config and a seeded generator; classes = 0 for a regression.
DATASETS: Registry = Registry(
    "data set",
    {
        "spiral": _points(_spiral),
        "moons": _points(_moons),
        "circles": _points(_circles),
        "xor": _points(_xor),
        "gaussians": _points(_gaussians),
        "digits": lambda cfg, gen: (*_digits(image=ARCHS[cfg.model.arch].spatial), 10),
        "adding": lambda cfg, gen: (*_adding(cfg.data.samples, cfg.data.seq_len, gen), 0),
        "copy": lambda cfg, gen: (*_copy(cfg.data.samples, cfg.data.seq_len, cfg.data.classes, gen), cfg.data.classes),
    },
)
