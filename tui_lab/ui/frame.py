"""One frame of the main screen: everything a panel may show, gathered once per repaint and never changed.

The screen builds a Frame from the app's state (`LabState.frame`) and hands it to every panel; each panel
picks what it draws from it and redraws only when that part changed (components/panel.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_lab.core.config import LabConfig
from tui_lab.core.run import Finding, LayerStats, Learned, Snapshot
from tui_lab.ui.baseline import Baseline
from tui_lab.ui.bridge import View


@dataclass(frozen=True, eq=False)
class Frame:
    view: View | None  # the run's data (None: no run yet)
    state: str  # idle | loading | running | paused | completed | diverged | stopped | failed | following | replay
    cfg: LabConfig  # the run's configuration (or the loaded one, before a run)
    preset: str
    baseline: Baseline | None
    labels: tuple[str, str] | None  # (baseline, current): what differs between them
    findings: list[Finding]
    hist_layer: int  # the probe point whose gradient histogram is wanted
    histograms: bool  # the run can give histograms (a run directory keeps none)
    read_only: bool  # keys cannot change the run (a recorded one)
    run_dir: str
    message: str  # why the last command could not be done, or how the run failed
    position: str  # where a scrubbed run is: 'snapshot 3/9 (←/→)'
    scrubbed: Snapshot | None = None  # the snapshot under the scrubbing cursor (None: following the run)
    pace: str = "max"  # how fast a live run may go: slow | normal | max
    name: str = ""  # the run's name (its preset and what differs from it), or the loaded preset's
    loaded: str = ""  # the loaded preset or edited config when it is not what the run on screen ran
    learned: Learned | None = None  # what the network had learned at the snapshot on screen
    loss_scale: str = "auto"  # the loss axis: auto (log when the loss spans 3+ decades) | log | linear
    open_ended: bool = False  # a watched loop (tui_lab.watch): its steps have no known total
    blocks: bool = False  # the per-layer panels show one row per block (z), not one per layer

    @property
    def snapshot(self) -> Snapshot | None:
        """What the per-layer panels draw: the snapshot under the cursor, else the latest with finite
        statistics (after a divergence: the last one before it broke; `broken` says where)."""
        if self.scrubbed is not None and not self.scrubbed.nonfinite:
            return self.scrubbed
        return self.view.latest_finite if self.view is not None else None

    @property
    def broken(self) -> Snapshot | None:
        """The step that broke, when it is on screen: a diverged run followed to its end, or scrubbed to it."""
        if self.scrubbed is not None:
            return self.scrubbed if self.scrubbed.nonfinite else None
        latest = self.view.latest if self.view is not None else None
        return latest if latest is not None and latest.nonfinite else None

    @property
    def step(self) -> int | None:
        """The step the screen is at (the cursor's, or the latest)."""
        snap = self.scrubbed or (self.view.latest if self.view is not None else None)
        return snap.step if snap is not None else None

    @property
    def layers(self) -> list[LayerStats]:
        return self.snapshot.layers if self.snapshot is not None else []

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]
