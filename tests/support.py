"""Helpers the test modules share (fixtures are in conftest.py): the repository's path, configurations to
train, and the pseudo-terminal driver the benchmarks use too (benchmarks/_pty.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from tui_lab.core.config import LabConfig, with_overrides

ROOT = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT / "benchmarks"))
import calibrate  # noqa: E402 - the diagnosis's calibration suite
from _pty import PtyProcess, term_env, visible  # noqa: E402

# A 4-layer, 16-wide MLP on 256 points: a few hundred steps train in about a second on one core.
SMALL = [
    "model.depth=4",
    "model.width=16",
    "data.samples=256",
    "train.batch_size=32",
    "train.log_every=5",
    "train.eval_every=50",
    "train.device=cpu",
]


def config(*overrides: str) -> LabConfig:
    """The defaults with these `--set` overrides."""
    return with_overrides(LabConfig(), list(overrides))


def small_config(steps: int = 100, *extra: str) -> LabConfig:
    """The small configuration for `steps` steps, with more overrides."""
    return config(*SMALL, f"train.steps={steps}", *extra)


__all__ = ["ROOT", "SMALL", "PtyProcess", "calibrate", "config", "small_config", "term_env", "visible"]
