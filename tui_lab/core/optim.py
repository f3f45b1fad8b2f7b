"""Optimisers by name, as `torch.optim` builds them from the config's [optim] section."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from tui_lab.core.choices import Registry
from tui_lab.core.config import LabConfig

# Name -> the torch optimiser for these parameters. Momentum, Nesterov and L2 (weight_decay) are SGD's
# options; a name the table lacks is an error, never a silent default.
OPTIMIZERS: Registry = Registry(
    "optimizer",
    {
        "sgd": lambda o, params: torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay),
        "momentum": lambda o, params: torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
        ),
        "nesterov": lambda o, params: torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, nesterov=True, weight_decay=o.weight_decay
        ),
        "adagrad": lambda o, params: torch.optim.Adagrad(params, lr=o.lr, weight_decay=o.weight_decay),
        "rmsprop": lambda o, params: torch.optim.RMSprop(params, lr=o.lr, weight_decay=o.weight_decay),
        "adam": lambda o, params: torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay),
        "adamw": lambda o, params: torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay),
    },
)


def make_optimizer(cfg: LabConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg.optim.name](cfg.optim, params)


def apply_live(optimizer: torch.optim.Optimizer, name: str, key: str, value: float) -> tuple[float, bool]:
    """Set an [optim] hyperparameter on a running optimiser, effective at its next step: (the value it had,
    whether this optimiser has the setting). Momentum exists only for momentum and nesterov (the others keep
    their own averages: Adam's betas, RMSprop's alpha); clip_norm is the trainer's, not the optimiser's."""
    field = key.removeprefix("optim.")
    group = optimizer.param_groups[0]
    if field == "momentum" and name not in ("momentum", "nesterov"):
        return float(group.get("momentum", 0.0) or 0.0), False
    was = float(group[field])
    for group in optimizer.param_groups:
        group[field] = value
    return was, True
