"""Where the trainer thread meets the UI: a lock, the latest snapshot, and a bounded history.

The bridge is one of the trainer's sinks. Everything it does on the trainer thread is cheap (append a few
floats under a lock); the UI polls `version` on its own timer and reads a consistent copy with `read()`.
Nothing here calls into Textual, so a fast trainer can never flood the event loop.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any


def _f(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


@dataclass
class History:
    """Curves over time, bounded: when a series passes `cap` points, every other old point is dropped, so
    memory stays flat over any number of steps while recent points stay dense."""

    cap: int = 512
    steps: list[int] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    acc: list[float | None] = field(default_factory=list)
    grads: list[list[float | None]] = field(default_factory=list)  # per snapshot, per layer
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)

    def add(self, snap: Any) -> None:
        self.steps.append(int(snap.step))
        self.loss.append(_f(snap.loss))
        self.acc.append(_f(snap.acc))
        self.grads.append([_f(layer.grad_norm) for layer in snap.layers])
        if snap.val_loss is not None or snap.val_acc is not None:
            self.val_steps.append(int(snap.step))
            self.val_loss.append(_f(snap.val_loss))
            self.val_acc.append(_f(snap.val_acc))
        if len(self.steps) > self.cap:
            self._halve("steps", "loss", "acc", "grads")
        if len(self.val_steps) > self.cap:
            self._halve("val_steps", "val_loss", "val_acc")

    def _halve(self, *names: str) -> None:
        # Thin the older half only: keep every other point of it, keep the newer half whole.
        for name in names:
            seq = getattr(self, name)
            half = len(seq) // 2
            setattr(self, name, seq[:half:2] + seq[half:])

    def copy(self) -> History:
        return History(
            self.cap, list(self.steps), list(self.loss), list(self.acc), [list(g) for g in self.grads],
            list(self.val_steps), list(self.val_loss), list(self.val_acc),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class View:
    """A consistent copy of what the UI draws."""

    version: int
    meta: dict[str, Any]
    latest: Any  # Snapshot | None
    history: History
    result: Any  # RunResult | None
    snapshots: int
    histogram: Any = None  # the latest probes.Histogram


class Bridge:
    """A trainer sink: `on_start(meta)`, `__call__(snapshot)` per snapshot, `on_finish(result)`."""

    def __init__(self, cap: int = 512) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change; read without the lock (an int read is atomic)
        self.meta: dict[str, Any] = {}
        self.latest: Any = None
        self.latest_histogram: Any = None
        self.history = History(cap)
        self.result: Any = None
        self.snapshots = 0
        self.finished = threading.Event()

    # -- the trainer's side -----------------------------------------------------------------------------

    def on_start(self, meta: dict[str, Any]) -> None:
        with self._lock:
            self.meta = dict(meta)
            self.version += 1

    def __call__(self, snap: Any) -> None:
        with self._lock:
            self.latest = snap
            if snap.histogram is not None:
                self.latest_histogram = snap.histogram
            if snap.layers:  # a diverged step carries no layer statistics
                self.history.add(snap)
            self.snapshots += 1
            self.version += 1

    def on_finish(self, result: Any) -> None:
        with self._lock:
            self.result = result
            self.version += 1
        self.finished.set()

    # -- the UI's side ----------------------------------------------------------------------------------

    def read(self) -> View:
        with self._lock:
            return View(
                self.version, dict(self.meta), self.latest, self.history.copy(), self.result, self.snapshots,
                self.latest_histogram,
            )
