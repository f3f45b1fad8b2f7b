"""Where the trainer thread meets the UI: a lock, the latest snapshot, and a bounded history.

The bridge is one of the trainer's sinks. Everything it does on the trainer thread is cheap (append a few
floats under a lock); the UI polls it on its own timer and reads a consistent copy with `read()`. Nothing
here calls into Textual, so a fast trainer can never flood the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tui_lab.core.fmt import finite
from tui_lab.core.i18n import _
from tui_lab.core.run import Histogram, Learned, RunMeta, RunResult, Snapshot


@dataclass(eq=False)
class Series:
    """One curve, bounded: past `cap` points its older half is thinned four points to two, keeping each group's
    lowest and highest, so a one-snapshot spike survives any number of thinnings while recent points stay
    dense and memory stays flat."""

    cap: int = 512
    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)

    def add(self, step: int, value: float | None) -> None:
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) > self.cap:
            self._thin()

    def _thin(self) -> None:
        half = len(self.steps) // 2 // 4 * 4
        kept: list[tuple[int, float | None]] = []
        for i in range(0, half, 4):
            group = list(zip(self.steps[i : i + 4], self.values[i : i + 4]))
            known = [p for p in group if p[1] is not None]
            if not known:
                kept.append(group[0])  # a gap stays a gap
                continue
            low, high = min(known, key=lambda p: p[1]), max(known, key=lambda p: p[1])  # type: ignore[arg-type,return-value]
            kept += sorted({low, high})
        self.steps = [p[0] for p in kept] + self.steps[half:]
        self.values = [p[1] for p in kept] + self.values[half:]

    def copy(self) -> Series:
        return Series(self.cap, list(self.steps), list(self.values))

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(eq=False)
class History:
    """The curves of a run: training loss and accuracy, validation loss and accuracy, and the weight-gradient
    norm of each layer, each a bounded Series."""

    cap: int = 512
    loss: Series = field(default_factory=Series)
    acc: Series = field(default_factory=Series)
    val_loss: Series = field(default_factory=Series)
    val_acc: Series = field(default_factory=Series)
    grads: list[Series] = field(default_factory=list)  # per layer
    count: int = 0  # snapshots added
    marks: list[tuple[int, str]] = field(default_factory=list)  # (step, what changed there): 'lr 0.1→0.01'

    def __post_init__(self) -> None:
        for series in (self.loss, self.acc, self.val_loss, self.val_acc):
            series.cap = self.cap

    def add(self, snap: Snapshot) -> None:
        step = int(snap.step)
        self.count += 1
        self.loss.add(step, finite(snap.loss))
        self.acc.add(step, finite(snap.acc))
        if snap.val_loss is not None or snap.val_acc is not None:
            self.val_loss.add(step, finite(snap.val_loss))
            self.val_acc.add(step, finite(snap.val_acc))
        while len(self.grads) < len(snap.layers):
            self.grads.append(Series(self.cap))
        for series, layer in zip(self.grads, snap.layers):
            series.add(step, finite(layer.grad_norm))

    def copy(self) -> History:
        return History(
            self.cap, self.loss.copy(), self.acc.copy(), self.val_loss.copy(), self.val_acc.copy(),
            [g.copy() for g in self.grads], self.count, list(self.marks),
        )  # fmt: skip

    def __len__(self) -> int:
        return self.count


@dataclass(eq=False)  # compared by identity: a new View is a new state of the run
class View:
    """A consistent copy of what the UI draws."""

    version: int
    meta: RunMeta
    latest: Snapshot | None
    latest_finite: Snapshot | None  # the latest snapshot with finite layer statistics: what the panels draw
    history: History
    result: RunResult | None
    histogram: Histogram | None  # the latest one the trainer sent
    learned: Learned | None = None  # what the network learned, the latest measured


class Bridge:
    """A trainer sink: `on_start(meta)`, `__call__(snapshot)` per snapshot, `on_finish(result)`."""

    def __init__(self, cap: int = 512) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change; read without the lock (an int read is atomic)
        self.meta = RunMeta()
        self.latest: Snapshot | None = None
        self.latest_finite: Snapshot | None = None
        self.histogram: Histogram | None = None
        self.learned: Learned | None = None
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
            if snap.learned is not None:
                self.learned = snap.learned
            if snap.layers and not snap.nonfinite:  # the step that broke: drawn as where it broke, not as bars
                self.latest_finite = snap
                self.history.add(snap)
            self.history.marks += [(c.step, c.label) for c in snap.changes]
            if snap.nonfinite:
                self.history.marks.append((snap.step, _("diverged")))
            self.snapshots += 1
            self.version += 1

    def on_resume(self, meta: RunMeta) -> None:
        """The run goes on (extended): running again, towards the new total."""
        with self._lock:
            self.meta, self.result = meta, None
            self.version += 1

    def add_learned(self, learned: Learned) -> None:
        """What the network learned, come after its snapshot (a recorded run's learned.jsonl line read late)."""
        with self._lock:
            if self.learned is None or learned.step >= self.learned.step:
                self.learned = learned
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
                    latest_finite=self.latest_finite,
                    history=self.history.copy(),
                    result=self.result,
                    histogram=self.histogram,
                    learned=self.learned,
                )
            return self._view
