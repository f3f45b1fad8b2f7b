"""Models built from the config, each exposing its probe points.

A probe point is one weight layer: the hidden layers input side first (`L1` ... `Ln`), then the output layer
(`out`). For each the model records, on the steps where probes capture, the layer's output after the
activation (for activation statistics and for d loss / d h). Nothing is recorded on the other steps, so the
model costs the same as a plain one there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tui_lab.core.choices import Registry, hidden_activation
from tui_lab.core.config import LabConfig


@dataclass
class ProbePoint:
    name: str  # L1 ... Ln, out
    weights: list[nn.Parameter]  # the layer's weight matrices (biases excluded); recurrent: ih and hh


ACTIVATIONS: Registry[type[nn.Module] | object] = Registry(
    "activation",
    {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "selu": nn.SELU,
        "linear": nn.Identity,
    },
)


class LabModel(nn.Module):
    """Base class: the probe points and the activation capture switch."""

    activation: str  # the activation the hidden layers apply (a recurrent model's own: tanh or relu)
    recurrent = False
    blocks: nn.ModuleList  # feed-forward models: their hidden blocks, input side first
    head: nn.Linear

    def __init__(self) -> None:
        super().__init__()
        self.capture = False
        # When capture is on: each hidden probe point's output, then the output layer's (the logits).
        self.captured: list[torch.Tensor] = []

    def _record(self, h: torch.Tensor) -> None:
        if self.capture:
            if h.requires_grad:
                h.retain_grad()  # d loss / d h: the back-propagated signal at this layer
            self.captured.append(h)

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        self._record(out)  # d loss / d logits: the signal the backward pass starts from
        return out

    def probe_points(self) -> list[ProbePoint]:
        """Feed-forward models: one point per block's layer, then the head."""
        points = [ProbePoint(f"L{i + 1}", [b.layer.weight]) for i, b in enumerate(self.blocks)]
        return points + [ProbePoint("out", [self.head.weight])]


def _norm_layer(kind: str, width: int, conv: bool = False) -> nn.Module | None:
    if kind in ("batch_pre", "batch_post"):
        return nn.BatchNorm2d(width) if conv else nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width) if conv else nn.LayerNorm(width)
    return None


class Block(nn.Module):
    """Linear (or conv) -> [norm] -> activation -> [norm] -> dropout. norm=layer goes before the activation."""

    def __init__(self, layer: nn.Module, width: int, cfg: LabConfig, conv: bool = False):
        super().__init__()
        m = cfg.model
        self.layer = layer
        self.pre = _norm_layer(m.norm, width, conv) if m.norm in ("batch_pre", "layer") else None
        self.act = ACTIVATIONS[m.activation]()
        self.post = _norm_layer(m.norm, width, conv) if m.norm == "batch_post" else None
        self.drop = nn.Dropout(m.dropout) if m.dropout > 0 else None

    def forward(self, x: torch.Tensor, record) -> torch.Tensor:
        h = self.layer(x)
        if self.pre is not None:
            h = self.pre(h)
        h = self.act(h)
        record(h)  # statistics of the activation output (dead and saturated units)
        if self.post is not None:
            h = self.post(h)
        if self.drop is not None:
            h = self.drop(h)
        return h


class MLP(LabModel):
    def __init__(self, cfg: LabConfig, n_in: int, n_out: int, residual: bool = False):
        super().__init__()
        m = cfg.model
        self.activation = m.activation
        self.residual = residual
        self.blocks = nn.ModuleList(
            Block(nn.Linear(n_in if i == 0 else m.width, m.width), m.width, cfg) for i in range(m.depth)
        )
        self.head = nn.Linear(m.width, n_out)
        # Each residual branch is scaled by 1/sqrt(branches) so the sum of `depth` branches keeps the signal's
        # size whatever the depth: a ReLU branch only ever adds, and unscaled 30 of them overflow at once.
        self.branch_scale = 1.0 / math.sqrt(max(m.depth - 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            # Residual: every block after the first (which changes the width) adds to its input.
            if self.residual and i > 0:
                h = h + self.branch_scale * block(h, self._record)
            else:
                h = block(h, self._record)
        return self._output(self.head(h))


class CNN(LabModel):
    """depth 3x3 conv layers of `width` channels on 1x8x8 images (size kept), then a linear head."""

    def __init__(self, cfg: LabConfig, in_shape: tuple[int, ...], n_out: int):
        super().__init__()
        m = cfg.model
        self.activation = m.activation
        channels, height, width = in_shape
        self.blocks = nn.ModuleList(
            Block(nn.Conv2d(channels if i == 0 else m.width, m.width, 3, padding=1), m.width, cfg, conv=True)
            for i in range(m.depth)
        )
        self.head = nn.Linear(m.width * height * width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h, self._record)
        return self._output(self.head(h.flatten(1)))


class Recurrent(LabModel):
    """Stacked rnn/lstm/gru, one module per layer (so each layer's output can be watched), a linear head
    on the last time step. Vanilla RNNs use tanh, or relu when the config asks for it."""

    recurrent = True

    def __init__(self, cfg: LabConfig, n_in: int, n_out: int):
        super().__init__()
        m = cfg.model
        self.kind = m.arch
        self.activation = hidden_activation(m.arch, m.activation)
        make = {
            "rnn": lambda i, h: nn.RNN(i, h, batch_first=True, nonlinearity=self.activation),
            "lstm": lambda i, h: nn.LSTM(i, h, batch_first=True),
            "gru": lambda i, h: nn.GRU(i, h, batch_first=True),
        }[m.arch]
        self.layers = nn.ModuleList(make(n_in if i == 0 else m.width, m.width) for i in range(m.depth))
        self.norms = nn.ModuleList(nn.LayerNorm(m.width) for _ in range(m.depth)) if m.norm == "layer" else None
        self.drop = nn.Dropout(m.dropout) if m.dropout > 0 else None
        self.head = nn.Linear(m.width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h, _ = layer(h)
            if self.norms is not None:
                h = self.norms[i](h)
            self._record(h)
            if self.drop is not None:
                h = self.drop(h)
        return self._output(self.head(h[:, -1]))

    def probe_points(self) -> list[ProbePoint]:
        points = [
            ProbePoint(f"L{i + 1}", [layer.weight_ih_l0, layer.weight_hh_l0]) for i, layer in enumerate(self.layers)
        ]
        return points + [ProbePoint("out", [self.head.weight])]


# Architecture -> its model, built from the config, the input shape and the number of outputs.
ARCHITECTURES: Registry = Registry(
    "architecture",
    {
        "mlp": lambda cfg, shape, n_out: MLP(cfg, math.prod(shape), n_out),
        "resmlp": lambda cfg, shape, n_out: MLP(cfg, math.prod(shape), n_out, residual=True),
        "cnn": lambda cfg, shape, n_out: CNN(cfg, shape, n_out),
        "rnn": lambda cfg, shape, n_out: Recurrent(cfg, shape[-1], n_out),
        "lstm": lambda cfg, shape, n_out: Recurrent(cfg, shape[-1], n_out),
        "gru": lambda cfg, shape, n_out: Recurrent(cfg, shape[-1], n_out),
    },
)


def build_model(cfg: LabConfig, input_shape: tuple[int, ...], n_out: int) -> LabModel:
    model: LabModel = ARCHITECTURES[cfg.model.arch](cfg, input_shape, n_out)
    initialise(model, cfg.model.init, cfg.model.init_scale)
    return model


# ---------------------------------------------------------------------------------------------------------
# Initialisation. `default` keeps PyTorch's own; the named schemes also zero the biases.


def initialise(model: LabModel, scheme: str, scale: float) -> None:
    fill = INITS[scheme]
    if fill is None:
        return
    with torch.no_grad():
        for point in model.probe_points():
            for w in point.weights:
                recurrent_hh = model.recurrent and point.name != "out" and w is point.weights[-1]
                fill(w, scale, recurrent_hh)
        # Norm layers keep their own bias (a learned shift), so they are left out.
        norm_params = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()}
        for name, p in model.named_parameters():
            if (name.endswith("bias") or "bias_" in name) and id(p) not in norm_params:
                p.zero_()


NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def _fan_in(w: torch.Tensor) -> int:
    receptive = math.prod(w.shape[2:]) if w.dim() > 2 else 1
    return w.shape[1] * receptive


def _orthogonal(w: torch.Tensor, scale: float, recurrent_hh: bool) -> None:
    if recurrent_hh and w.shape[0] % w.shape[1] == 0:
        # LSTM/GRU stack their gates: make each gate's square block orthogonal.
        for chunk in w.split(w.shape[1]):
            nn.init.orthogonal_(chunk)
    else:
        nn.init.orthogonal_(w)


# Init -> how it fills one weight matrix, given init_scale and whether it is a recurrent hidden-to-hidden
# matrix. None keeps PyTorch's own initialisation (random biases included).
INITS: Registry = Registry(
    "init",
    {
        "default": None,
        "normal": lambda w, scale, hh: w.normal_(0.0, scale),
        "uniform": lambda w, scale, hh: w.uniform_(-scale, scale),
        "xavier_uniform": lambda w, scale, hh: nn.init.xavier_uniform_(w),
        "xavier_normal": lambda w, scale, hh: nn.init.xavier_normal_(w),
        "he_normal": lambda w, scale, hh: nn.init.kaiming_normal_(w, nonlinearity="relu"),
        "he_uniform": lambda w, scale, hh: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
        "orthogonal": _orthogonal,
        "lecun_normal": lambda w, scale, hh: w.normal_(0.0, 1.0 / math.sqrt(_fan_in(w))),
    },
)
