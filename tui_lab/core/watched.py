"""A watched run's description of its model (README: Watch your own model).

`tui_lab.watch` follows any PyTorch model, which a LabConfig cannot describe (a Transformer is no `model.arch`).
Its run directory holds `model.toml` instead of `config.toml`: what was watched (the model's class, its layers in
forward order with their types, weight shapes and the activation that follows each where one is known, the
optimiser) and nothing that pretends it can be re-run with `tui-lab run`. `tui-lab show` reads it through
`stand_in_config`: the few lab settings the screen and the diagnosis need (the optimiser's kind, the activation's
traits, how many layers there are) and the gradients view first. No torch here: the UI reads it too.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from tui_lab.core import choices
from tui_lab.core.config import LabConfig, parse_config
from tui_lab.core.errors import UserError
from tui_lab.core.i18n import _

MODEL_FILE = "model.toml"  # a watched run's description, where a lab run has config.toml
KIND = "watch"


def is_watched(directory: str | Path) -> bool:
    """A run directory written by `tui_lab.watch` (a lab run's config.toml wins if both are there)."""
    path = Path(directory)
    return (path / MODEL_FILE).is_file() and not (path / "config.toml").is_file()


def dumps_description(desc: dict[str, Any]) -> str:
    return tomli_w.dumps({k: v for k, v in desc.items() if v is not None})


def read_description(directory: str | Path) -> dict[str, Any]:
    """model.toml as a mapping; a damaged one is the user's error, named in one line."""
    path = Path(directory) / MODEL_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(_("{path}: no such file").format(path=path)) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(_("{path}: not a watched run's description ({error})").format(path=path, error=exc)) from None
    if data.get("kind") != KIND:
        raise UserError(_('{path}: kind must be "watch"').format(path=path))
    return data


def _clamp(value: Any, low: float, high: float, default: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    return min(max(x, low), high) if x == x else default


def stand_in_config(desc: dict[str, Any]) -> LabConfig:
    """The lab settings a watched model comes closest to, for the screen and the diagnosis only: the optimiser's
    kind (Adam-like ones are judged on their own thresholds), the hidden layers' activation where one is known
    (else `linear`: no traits are assumed), a norm layer or not, the number of layers and the snapshot interval.
    The data set and the architecture are placeholders that no panel of a watched run shows."""
    layers = desc.get("layers") or []
    activation = desc.get("activation") or "linear"
    if activation not in choices.ACTIVATIONS:
        activation = "linear"
    optim = desc.get("optim") or "sgd"
    if optim not in choices.OPTIMIZERS:
        optim = "sgd"
    data = {
        "title": str(desc.get("name") or "watch")[:200].splitlines()[0] if desc.get("name") else "watch",
        "model": {
            "arch": "mlp",
            "depth": int(_clamp(len(layers) - 1, 1, 200, 1)),
            "activation": activation,
            "norm": "batch_pre" if desc.get("normalised") else "none",
        },
        "optim": {
            "name": optim,
            "lr": _clamp(desc.get("lr"), 1e-12, 100, 0.1),
            "momentum": _clamp(desc.get("momentum"), 0, 0.999, 0.0),
            "clip_norm": _clamp(desc.get("clip_norm"), 0, 1e6, 0.0),
        },
        "train": {
            "steps": int(_clamp(desc.get("total_steps") or 1, 1, 100_000_000, 1)),
            "log_every": int(_clamp(desc.get("every"), 1, 100_000, 10)),
        },
        "screen": {"view": "gradients"},
    }
    return parse_config(data, source=MODEL_FILE)
