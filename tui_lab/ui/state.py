"""What the user has in front of them: the loaded configuration, the run on screen, the pinned baseline.

Owned by the app (its actions change it), read by the main screen (which turns it into a Frame per repaint).
Plain Python: no Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_lab.core.config import LabConfig, run_name
from tui_lab.core.i18n import _
from tui_lab.ui.baseline import Baseline, diff_labels
from tui_lab.ui.bridge import View
from tui_lab.ui.frame import Frame
from tui_lab.ui.runs import LiveRun, Run


@dataclass
class LabState:
    cfg: LabConfig  # what the config panel was loaded with
    preset: str
    run: Run | None = None
    baseline: Baseline | None = None
    hist_layer: int = 0
    message: str = ""  # why the last command could not be done (shown in the status line)
    pace: str = "max"  # how fast live runs may go: slow | normal | max (PACES)
    edited: LabConfig | None = None  # the config panel's configuration when it differs from `cfg`
    want_layer: str = ""  # the probe point a lesson wants in the histogram, by name, until the run names them
    loss_scale: str = "auto"  # the loss axis (g): auto | log | linear
    blocks: bool = False  # the per-layer panels collapsed to one row per block (z)

    @property
    def state(self) -> str:
        return self.run.state if self.run is not None else "idle"

    @property
    def read_only(self) -> bool:
        return self.run is not None and self.run.read_only

    @property
    def active(self) -> LiveRun | None:
        """The run keys can pause, step or stop: a live one that has not ended."""
        run = self.run
        return run if isinstance(run, LiveRun) and not run.finished else None

    def view(self) -> View | None:
        return self.run.bridge.read() if self.run is not None else None

    def replace_run(self, run: Run) -> Run | None:
        """Put `run` on screen; the one it replaces is asked to stop (its thread lets go in its own time)."""
        previous, self.run = self.run, run
        if previous is not None:
            previous.stop()
        return previous

    def settle_layer(self, view: View | None) -> None:
        """The layer a lesson named ([screen] layer), once the run says which layers it has."""
        if self.want_layer and view is not None and self.want_layer in view.meta.layers:
            self.hist_layer = view.meta.layers.index(self.want_layer)
            if self.active is not None:
                self.active.control.histogram_layer = self.hist_layer
            self.want_layer = ""

    def name_for(self, cfg: LabConfig) -> str:
        """What a run of `cfg` is called: the loaded preset, and what was changed from it."""
        return run_name(self.preset, self.cfg, cfg)

    def loaded(self) -> str:
        """The loaded (or edited) configuration's name when it is not what the run on screen ran: the header
        must not put one run's numbers beside another's name."""
        run = self.run
        if not isinstance(run, LiveRun):
            return ""
        name = self.name_for(self.edited or self.cfg)
        return "" if name == run.name else name

    def frame(self, view: View | None) -> Frame:
        run = self.run
        cfg = run.cfg if run is not None else self.cfg
        base = self.baseline
        message = self.message
        result = view.result if view is not None else None
        if result is not None and result.status in ("diverged", "failed") and result.message:
            message = f"{_(result.status)}: {result.message}"
        return Frame(
            view=view,
            state=self.state,
            cfg=cfg,
            preset=self.preset,
            baseline=base,
            labels=diff_labels(base.cfg, cfg) if base is not None else None,
            findings=run.findings(view) if run is not None and view is not None else [],
            hist_layer=self.hist_layer,
            histograms=run is None or run.records_histograms,
            read_only=self.read_only,
            run_dir=str(run.run_dir) if run is not None and run.run_dir is not None else "",
            message=message,
            position=run.position() if run is not None else "",
            scrubbed=run.scrubbed() if run is not None else None,
            learned=run.learned(view) if run is not None and view is not None else None,
            pace=self.pace,
            name=run.name if run is not None else self.name_for(self.edited or self.cfg),
            loaded=self.loaded(),
            loss_scale=self.loss_scale,
            open_ended=bool(getattr(run, "watched", False)),
            blocks=self.blocks,
        )
