"""What the lesson tests share: the presets, one cached run per (preset, overrides), and the numbers the
lessons talk about."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui_lab.core.config import LabConfig, load_config, with_overrides
from tui_lab.core.diagnosis import alarms
from tui_lab.core.presets import bundled_dir

PRESETS_DIR: Path = bundled_dir()
PRESET_FILES = sorted(PRESETS_DIR.glob("*.toml"))
PRESET_NAMES = [p.stem for p in PRESET_FILES]
LN3 = math.log(3)  # cross-entropy of a uniform guess over the spiral's three classes
ADDING_FLOOR = 1 / 6  # MSE of always predicting the mean sum on the adding problem
slow = pytest.mark.slow


def preset(name: str) -> LabConfig:
    return load_config(PRESETS_DIR / f"{name}.toml")


def differences(a: LabConfig, b: LabConfig) -> set[str]:
    """The keys (model.depth, seed, ...) whose values differ between two configurations."""
    da, db = a.model_dump(), b.model_dump()
    out = set()
    for section in ("model", "data", "optim", "train"):
        out |= {f"{section}.{k}" for k in da[section] if da[section][k] != db[section][k]}
    if da["seed"] != db["seed"]:
        out.add("seed")
    return out


@dataclass
class Run:
    status: str
    steps: int
    snaps: list
    meta: object = None  # the RunMeta the trainer announced: what a replay of this run on screen needs
    result: object = None

    @property
    def first(self):
        return self.snaps[0]

    @property
    def last(self):
        return [s for s in self.snaps if s.loss is not None][-1]

    @property
    def evals(self):
        return [s for s in self.snaps if s.val_loss is not None]

    @property
    def final_val_loss(self) -> float:
        return self.evals[-1].val_loss

    @property
    def final_val_acc(self) -> float:
        return self.evals[-1].val_acc

    @property
    def best_val_acc(self) -> float:
        return max(s.val_acc for s in self.evals)

    def max_dead(self) -> float:
        return max(max(layer.dead_frac or 0.0 for layer in s.layers[:-1]) for s in self.snaps if s.layers)


@functools.cache
def run(name: str, *overrides: str) -> Run:
    """The preset trained on the CPU (its runs are the ones measured when the lessons were written)."""
    from tui_lab.core.trainer import Trainer  # imports torch

    cfg = with_overrides(preset(name), ["train.device=cpu", *overrides])
    snaps: list = []
    trainer = Trainer(cfg, sinks=[snaps.append])
    result = trainer.run()
    assert result.status in ("completed", "diverged"), f"{name}: {result.status}: {result.message}"
    return Run(result.status, result.steps, snaps, trainer.meta, result)


def depth_ratio(snap) -> float:
    """First hidden layer's weight-gradient norm over the last hidden layer's ('out' is the last entry)."""
    return snap.layers[0].grad_norm / snap.layers[-2].grad_norm


def time_ratio(snap) -> float:
    """||dloss/dx_1|| over ||dloss/dx_T||: how much of the gradient reaches the first time step."""
    tgn = snap.time_grad_norm
    return tgn[0] / tgn[-1]


def per_layer(values: list[float]) -> float:
    """The geometric mean of values[i] / values[i + 1]: the factor from one layer to the next, input side first."""
    return (values[0] / values[-1]) ** (1 / (len(values) - 1))


def alarming(snap, *kinds: str) -> list:
    """The findings of a snapshot that alarm (a warning, an error, or advice), of these kinds if given."""
    return [f for f in snap.findings if alarms(f) and (not kinds or f.kind in kinds)]


def initial_model(name: str, *overrides: str):
    """The model and data the trainer builds for this preset at step 0 (same seed, same order)."""
    import torch

    from tui_lab.core.data import build_dataset
    from tui_lab.core.models import build_model

    cfg = with_overrides(preset(name), ["train.device=cpu", *overrides])
    torch.manual_seed(cfg.seed)
    data = build_dataset(cfg)
    return build_model(cfg, data.input_shape, data.n_outputs), data


def init_forward(name: str, *overrides: str) -> list:
    """(pre-activation, activation output) of each hidden block of the preset's model as the trainer builds it,
    on all the training points: what the per-layer statistics do not show."""
    import torch

    model, data = initial_model(name, *overrides)
    model.train()
    out, h = [], data.x_train
    with torch.no_grad():
        for block in model.blocks:
            z = block.layer(h)
            h = block.act(block.pre(z) if block.pre is not None else z)
            out.append((z, h))
    return out


def trained(name: str, *overrides: str, branch_scale: float | None = None):
    """Train like `run`, but hand back the model too (and, for the residual aside, set the branch scale of the
    model the trainer built)."""
    from tui_lab.core.trainer import Trainer

    cfg = with_overrides(preset(name), ["train.device=cpu", *overrides])
    snaps: list = []
    trainer = Trainer(cfg, sinks=[snaps.append])
    setup, box = trainer._setup, {}

    def patched():
        parts = setup()
        box["model"] = parts[2]
        if branch_scale is not None:
            parts[2].branch_scale = branch_scale
        return parts

    trainer._setup = patched
    result = trainer.run()
    return result, snaps, box["model"]
