"""One frame of the main screen: everything a panel may show, gathered once per repaint and never changed.

The screen builds a Frame from the app's state (`LabState.frame`) and hands it to every panel; each panel
picks what it draws from it and redraws only when that part changed (components/panel.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_lab.core.config import LabConfig
from tui_lab.core.run import Finding, LayerStats, Snapshot
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

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot with layer statistics: what the panels draw (a diverged step carries none)."""
        return self.view.latest_with_layers if self.view is not None else None

    @property
    def layers(self) -> list[LayerStats]:
        return self.snapshot.layers if self.snapshot is not None else []

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]
