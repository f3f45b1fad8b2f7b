"""The main screen: the panels, their arrangement for the terminal's size, and the repaint timer.

Every POLL_S the screen turns the app's state into a Frame and hands it to each panel; each panel redraws
only what changed. A fast trainer never floods the event loop (the bridge is polled, not pushed), and while
a run goes the panels follow at most every PANEL_INTERVAL_S (plots are the costly part of a repaint and
every repainted row costs terminal bytes); the status line keeps the full rate, so keys answer at once.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Container
from textual.events import Resize
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from tui_lab.core.i18n import N_, _
from tui_lab.ui.bandwidth import TerminalMeter
from tui_lab.ui.bridge import View
from tui_lab.ui.components.config_panel import ConfigPanel
from tui_lab.ui.components.findings import FindingsPanel
from tui_lab.ui.components.footer import LabFooter
from tui_lab.ui.components.gradflow import GradFlowPanel, LayersPanel
from tui_lab.ui.components.learned import LearnedPanel
from tui_lab.ui.components.panel import Panel
from tui_lab.ui.components.plots import GradTimePanel, HistogramPanel, LossPanel, TimeGradPanel
from tui_lab.ui.components.status import StatusBar
from tui_lab.ui.frame import Frame
from tui_lab.ui.state import LabState

POLL_S = 1 / 6  # how often the screen looks at the run: 6 Hz
PANEL_INTERVAL_S = 0.5  # panels redraw at most twice a second while training (GIL and terminal bandwidth)
WIDE = (150, 40)  # at least this many columns and rows: every panel at once
TWO_COLUMNS = 110
FLOW_ROWS = 14  # one column: at most this many rows for the bars (a 10-layer net); deeper nets fold
PALETTE_HINT_COLUMNS = 100  # below this every footer key is worth more than the palette hint

# Views for terminals smaller than WIDE: (key, title, panels in one column, panels in two columns).
VIEWS: list[tuple[str, str, list[str], list[str]]] = [
    ("config", N_("Config"), ["p-config"], ["p-config", "p-flow"]),
    ("gradients", N_("Gradients"), ["p-flow", "p-findings"], ["p-flow", "p-findings", "p-gradtime", "p-layers"]),
    ("curves", N_("Curves"), ["p-loss", "p-gradtime"], ["p-loss", "p-gradtime"]),
    ("layers", N_("Layers"), ["p-hist", "p-layers", "p-timegrad"], ["p-hist", "p-layers", "p-timegrad"]),
    ("learned", N_("Learned"), ["p-learned", "p-loss"], ["p-learned", "p-loss"]),
]
RECURRENT_ONLY = {"p-timegrad"}
# A watched model (tui_lab.watch) has no lab config to edit and no lab data set to show what it learned on.
LAB_ONLY = {"p-config", "p-learned"}
LAYOUT_CLASSES = {"-wide", "-cols2", "-cols1", "-recurrent", "-watched"} | {f"-view-{key}" for key, *_ in VIEWS}
VIEW_KEYS = [key for key, *_ in VIEWS]  # a lesson names its view by key ([screen] view = "layers")


class LabScreen(Screen):
    def __init__(self, lab: LabState, poll_s: float = POLL_S) -> None:
        super().__init__()
        self.lab = lab
        self.poll_s = poll_s
        self.view_index = 0
        self.view_chosen = False  # by the user or the lesson; else a run moves view 1 (config) to 2 (gradients)
        self._panel_view: View | None = None  # the view the panels were last given
        self._panel_time = 0.0
        self._panel_state: str | None = None  # the run state the panels were last given
        self._told: object = None  # the run result last told in a notification
        self._arrange_queued = False  # view keys are waiting for one arrangement (want_view)
        self.meter = TerminalMeter()  # the panels' repaints keep the terminal under a byte budget

    def compose(self) -> ComposeResult:
        self.status = StatusBar(id="status")
        yield self.status
        yield Static("", id="viewbar")
        self.panels: list[Panel] = [
            ConfigPanel(self.lab.cfg, id="p-config"),
            LossPanel(id="p-loss"),
            GradFlowPanel(id="p-flow"),
            GradTimePanel(id="p-gradtime"),
            FindingsPanel(id="p-findings"),
            HistogramPanel(id="p-hist"),
            LearnedPanel(id="p-learned"),  # before p-layers: in the wide grid it takes two rows (app.tcss)
            LayersPanel(id="p-layers"),
            TimeGradPanel(id="p-timegrad"),
        ]
        yield Container(*self.panels, id="panels")  # type: ignore[arg-type]
        yield LabFooter(compact=True)

    def on_mount(self) -> None:
        self.meter.install(self.app)
        self.arrange_panels()
        self.refresh_panels()
        self.set_interval(self.poll_s, self._tick)

    def on_resize(self, event: Resize) -> None:
        # The event's size: during the resize `self.size` may still be the old one, and the layout would lag
        # one resize behind (120x36 -> 80x24 giving the two-column grid squeezed into 80 columns).
        self.arrange_panels(event.size)
        footer, hint = self.query_one(Footer), event.size.width >= PALETTE_HINT_COLUMNS
        if footer.show_command_palette != hint:
            footer.show_command_palette = hint
            footer.refresh(recompose=True)  # the footer only reads it when it composes

    @property
    def config_panel(self) -> ConfigPanel:
        return self.query_one(ConfigPanel)

    @property
    def wide(self) -> bool:
        size = self.terminal_size()
        return size.width >= WIDE[0] and size.height >= WIDE[1]

    def terminal_size(self) -> Size:
        """The terminal's size now: the app's, which a resize updates before the screen's."""
        return self.app.size if self.is_attached else self.size

    # -- arrangement ---------------------------------------------------------------------------------------

    def show_view(self, index: int) -> None:
        self.view_index = index % len(VIEWS)
        self.arrange_panels()

    def want_view(self, index: int) -> None:
        """A view key: the view changes now, the panels are arranged once the keys read with it are handled.
        Each arrangement restyles the whole screen (~0.25 s on a slow machine): key repeat on a digit, or
        40 view keys mashed, would otherwise hold every later key for seconds."""
        self.view_index = index % len(VIEWS)
        if not self._arrange_queued:
            self._arrange_queued = True
            self.app.call_later(self._arrange_wanted)

    def _arrange_wanted(self) -> None:
        self._arrange_queued = False
        self.arrange_panels()

    def arrange_panels(self, size: Size | None = None) -> None:
        """Which panels show, and in what grid, for this size, view and kind of model."""
        size = size or self.terminal_size()
        wide, two = size.width >= WIDE[0] and size.height >= WIDE[1], size.width >= TWO_COLUMNS
        recurrent = (self.lab.run.cfg if self.lab.run is not None else self.lab.cfg).recurrent
        key, _title, one_column, two_columns = VIEWS[self.view_index]
        visible = [p.id for p in self.panels] if wide else two_columns if two else one_column
        visible = [p for p in visible if recurrent or p not in RECURRENT_ONLY]
        watched = bool(getattr(self.lab.run, "watched", False))
        if watched:
            visible = [p for p in visible if p not in LAB_ONLY] or VIEWS[VIEW_KEYS.index("gradients")][2]
        # All layout classes in one change: each class change restyles every widget on the screen (hundreds,
        # with the config panel), so one set_classes, and none if nothing changed.
        wanted = {f"-view-{key}"} | {
            cls
            for cls, on in (
                ("-wide", wide),
                ("-cols2", not wide and two),
                ("-cols1", not wide and not two),
                ("-recurrent", recurrent),
                ("-watched", watched),
            )
            if on
        }
        if (set(self.classes) & LAYOUT_CLASSES) != wanted:
            self.set_classes((set(self.classes) - LAYOUT_CLASSES) | wanted)
        grid = self.query_one("#panels").styles
        if not wide and not two and key == "gradients":  # the bars' rows, exactly: a fixed height, no feedback
            layers = (self.lab.run.cfg if self.lab.run is not None else self.lab.cfg).model.depth + 1  # and out
            grid.grid_rows = f"{min(layers + 3, FLOW_ROWS)} 1fr"  # + the axis and the two borders
        elif "grid_rows" in grid.get_rules():
            grid.clear_rule("grid_rows")
        for panel in self.panels:
            panel.display = panel.id in visible  # type: ignore[attr-defined]
        bar = self.query_one("#viewbar", Static)
        bar.display = not wide
        if not wide:
            tabs = [
                f"[{'reverse bold' if i == self.view_index else 'dim'}] {i + 1} {_(title)} [/]"
                for i, (_key, title, *_panels) in enumerate(VIEWS)
            ]
            bar.update(" ".join(tabs) + "  [dim]v " + _("next view") + "[/dim]")
        if self.focused is not None and not _shown(self.focused):
            self.set_focus(None)

    # -- repainting ----------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.lab.run is not None:
            self.lab.run.poll()
        if self.is_active:  # under a modal screen (help, a picker, the lesson) Textual repaints the whole dimmed
            self.refresh_panels()  # screen for any change below it: 100-200 KB/s, keys answered seconds late
        self._tell_failure()

    def on_screen_resume(self) -> None:
        """The modal screen on top closed: show what happened meanwhile."""
        self.refresh_panels()

    def _tell_failure(self) -> None:
        """A run that failed says why in full, once, in a notification (the status line has one line for it)."""
        view = self.lab.view()
        result = view.result if view is not None else None
        if result is not None and result is not self._told and result.status == "failed" and result.message:
            self.app.notify(result.message, title=_("run failed"), severity="error", timeout=20)
        self._told = result

    def refresh_panels(self) -> None:
        """Hand every panel the current frame (the status line the newest view, the others a throttled one)."""
        if not self.is_mounted:
            return
        view = self.lab.view()
        self.lab.settle_layer(view)
        frame = self.lab.frame(view)
        if (run := self.lab.active) is not None:  # the trainer measures what it learned faster while it is shown
            run.control.learned = self.query_one(LearnedPanel).display
        self.status.show(frame)
        now = time.monotonic()
        first = self._panel_view is None or self._panel_view.latest is None  # a run's first bars: at once
        due = first or now - self._panel_time >= self.meter.interval(PANEL_INTERVAL_S)
        if view is not self._panel_view and (frame.state != "running" or due):
            self._panel_view, self._panel_time = view, now
            self.meter.repainted()
        if self._panel_view is not view:
            frame = self.lab.frame(self._panel_view)
        if self._panel_state not in (None, frame.state):  # p, r, x: the status line answers the key first,
            self._panel_state = frame.state  # the panels (plots: tens of ms) repaint in the frame after,
            self.call_after_refresh(self.refresh_panels)  # from a fresh frame
            return
        self._panel_state = frame.state
        self._show_panels(frame)

    def _show_panels(self, frame: Frame) -> None:
        for panel in self.panels:
            panel.show(frame)


def _shown(widget: Widget) -> bool:
    node: Widget | None = widget
    while node is not None:
        if not node.display:
            return False
        node = node.parent  # type: ignore[assignment]
    return True
