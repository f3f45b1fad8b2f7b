"""Where the trainer thread meets the UI: a lock, the latest snapshot, and a bounded history.

The bridge is one of the trainer's sinks. Everything it does on the trainer thread is cheap (append a few
floats under a lock); the UI polls it on its own timer and reads a consistent copy with `read()`. Nothing
here calls into Textual, so a fast trainer can never flood the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tui_lab.core.fmt import finite
from tui_lab.core.run import Histogram, RunMeta, RunResult, Snapshot


@dataclass(eq=False)
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

    SERIES = ("steps", "loss", "acc", "grads")
    VAL_SERIES = ("val_steps", "val_loss", "val_acc")

    def add(self, snap: Snapshot) -> None:
        self.steps.append(int(snap.step))
        self.loss.append(finite(snap.loss))
        self.acc.append(finite(snap.acc))
        self.grads.append([finite(layer.grad_norm) for layer in snap.layers])
        if snap.val_loss is not None or snap.val_acc is not None:
            self.val_steps.append(int(snap.step))
            self.val_loss.append(finite(snap.val_loss))
            self.val_acc.append(finite(snap.val_acc))
        if len(self.steps) > self.cap:
            self._halve(self.SERIES)
        if len(self.val_steps) > self.cap:
            self._halve(self.VAL_SERIES)

    def _halve(self, names: tuple[str, ...]) -> None:
        # Thin the older half only: keep every other point of it, keep the newer half whole.
        for name in names:
            seq = getattr(self, name)
            half = len(seq) // 2
            setattr(self, name, seq[:half:2] + seq[half:])

    def copy(self) -> History:
        copied = History(self.cap)
        for name in self.SERIES + self.VAL_SERIES:
            setattr(copied, name, [list(x) if isinstance(x, list) else x for x in getattr(self, name)])
        return copied

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(eq=False)  # compared by identity: a new View is a new state of the run
class View:
    """A consistent copy of what the UI draws."""

    version: int
    meta: RunMeta
    latest: Snapshot | None
    latest_with_layers: Snapshot | None  # the latest snapshot with layer statistics (a diverged step has none)
    history: History
    result: RunResult | None
    histogram: Histogram | None  # the latest one the trainer sent


class Bridge:
    """A trainer sink: `on_start(meta)`, `__call__(snapshot)` per snapshot, `on_finish(result)`."""

    def __init__(self, cap: int = 512) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change; read without the lock (an int read is atomic)
        self.meta = RunMeta()
        self.latest: Snapshot | None = None
        self.latest_with_layers: Snapshot | None = None
        self.histogram: Histogram | None = None
        self.history = History(cap)
        self.result: RunResult | None = None
        self.snapshots = 0
        self._view: View | None = None

    # -- the trainer's side -----------------------------------------------------------------------------

    def on_start(self, meta: RunMeta) -> None:
        with self._lock:
            self.meta = meta
            self.version += 1

    def __call__(self, snap: Snapshot) -> None:
        with self._lock:
            self.latest = snap
            if snap.histogram is not None:
                self.histogram = snap.histogram
            if snap.layers:  # a diverged step carries no layer statistics
                self.latest_with_layers = snap
                self.history.add(snap)
            self.snapshots += 1
            self.version += 1

    def finish(self, result: RunResult) -> None:
        """The run ended (from the trainer, or from whoever learnt how it ended)."""
        with self._lock:
            self.result = result
            self.version += 1

    on_finish = finish  # the trainer's sink hook

    # -- the UI's side ----------------------------------------------------------------------------------

    def read(self) -> View:
        """A consistent copy, made anew only when something changed since the last read."""
        with self._lock:
            if self._view is None or self._view.version != self.version:
                self._view = View(
                    version=self.version,
                    meta=self.meta,
                    latest=self.latest,
                    latest_with_layers=self.latest_with_layers,
                    history=self.history.copy(),
                    result=self.result,
                    histogram=self.histogram,
                )
            return self._view
