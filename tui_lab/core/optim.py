"""Optimisers by name, as `torch.optim` builds them from the config's [optim] section.

Each is the `torch.optim` class itself, with its update called directly (`eager`): a stock torch.optim
optimiser imports torch._dynamo (the compiler, 1-3 s here) when it is built and on its first step, only to mark
its methods as not to be compiled. The lab never compiles, so it skips that import, and a run's first
snapshot comes that much sooner. The arithmetic is torch's own, bit for bit (tests/test_trainer.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch

from tui_lab.core.choices import Registry
from tui_lab.core.config import LabConfig


def eager(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`cls` with step, zero_grad and add_param_group called without the torch.compile wrappers around them
    (`_use_grad_for_differentiable` and `_disable_dynamo` import torch._dynamo on first use). The step runs under
    no_grad, as the wrapper does for a non-differentiable optimiser; step hooks and the profiler label stay
    (Optimizer.__init__ adds them around this step). A torch that no longer wraps these is used as it is."""
    base = torch.optim.Optimizer
    raw_step = inspect.unwrap(cls.step)

    def step(self, closure=None):
        with torch.no_grad():
            return raw_step(self, closure)

    members = {
        "step": step,
        "zero_grad": inspect.unwrap(base.zero_grad),
        "add_param_group": inspect.unwrap(base.add_param_group),
        "__module__": __name__,
        "__doc__": cls.__doc__,
    }
    return type(cls.__name__, (cls,), members)


_SGD, _ADAGRAD, _RMSPROP, _ADAM, _ADAMW = (
    eager(c) for c in (torch.optim.SGD, torch.optim.Adagrad, torch.optim.RMSprop, torch.optim.Adam, torch.optim.AdamW)
)

# Name -> the torch optimiser for these parameters. Momentum, Nesterov and L2 (weight_decay) are SGD's
# options; a name the table lacks is an error, never a silent default.
OPTIMIZERS: Registry = Registry(
    "optimizer",
    {
        "sgd": lambda o, params: _SGD(params, lr=o.lr, weight_decay=o.weight_decay),
        "momentum": lambda o, params: _SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay),
        "nesterov": lambda o, params: _SGD(
            params, lr=o.lr, momentum=o.momentum, nesterov=True, weight_decay=o.weight_decay
        ),
        "adagrad": lambda o, params: _ADAGRAD(params, lr=o.lr, weight_decay=o.weight_decay),
        "rmsprop": lambda o, params: _RMSPROP(params, lr=o.lr, weight_decay=o.weight_decay),
        "adam": lambda o, params: _ADAM(params, lr=o.lr, weight_decay=o.weight_decay),
        "adamw": lambda o, params: _ADAMW(params, lr=o.lr, weight_decay=o.weight_decay),
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
