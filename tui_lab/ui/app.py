"""The tui-lab Textual app: configuration, live progress and per-layer gradient instruments.

The trainer runs in a thread worker. It meets the UI only through the engine's Control (run, pause, step,
stop) and a Bridge (the latest snapshot and a bounded history, behind a lock). The UI polls the bridge on a
timer (6 Hz) and repaints only the widgets whose data changed: a fast trainer never floods the event loop.
torch is imported lazily, after the first frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_lab.core.config import LabConfig, default_config
from tui_lab.core.errors import UserError
from tui_lab.ui.baseline import Baseline, diff_labels
from tui_lab.ui.bridge import Bridge, History
from tui_lab.ui.components.config_panel import ConfigPanel
from tui_lab.ui.components.findings import FindingsPanel
from tui_lab.ui.components.gradflow import GradFlow, LayerTable
from tui_lab.ui.components.plots import GradTimePlot, HistogramPlot, LossPlot, TimeGradPlot
from tui_lab.ui.components.status import StatusBar

POLL_S = 1 / 6  # the UI's repaint rate: 6 Hz
PLOT_INTERVAL_S = 0.5  # panels redraw at most twice a second while training (GIL and terminal bandwidth)
FOLLOW_S = 0.5  # how often `show` looks for new lines in a growing run directory
WIDE = (150, 40)  # at least this many columns and rows: every panel at once
TWO_COLUMNS = 110

# Views for terminals smaller than WIDE: (key, title, panels in one column, panels in two columns).
VIEWS: list[tuple[str, str, list[str], list[str]]] = [
    ("config", "Config", ["p-config"], ["p-config", "p-flow"]),
    ("gradients", "Gradients", ["p-flow", "p-findings"], ["p-flow", "p-findings", "p-gradtime", "p-layers"]),
    ("curves", "Curves", ["p-loss", "p-gradtime"], ["p-loss", "p-gradtime"]),
    ("layers", "Layers", ["p-hist", "p-layers", "p-timegrad"], ["p-hist", "p-layers", "p-timegrad"]),
]
PANELS = ["p-config", "p-loss", "p-flow", "p-gradtime", "p-findings", "p-hist", "p-layers", "p-timegrad"]
ACTIVE = ("loading", "running", "paused")


@dataclass
class RunSession:
    """One run started from the TUI (or a replay fed to a bridge in tests)."""

    cfg: LabConfig
    name: str
    control: Any  # trainer.Control
    bridge: Bridge
    run_dir: Path | None = None
    runlog: Any = None
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)  # the worker function has returned
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.bridge.result is not None


class LabApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "tui-lab"
    AUTO_FOCUS = None  # keys go to the app until the user tabs (or presses e) into the config panel

    BINDINGS = [
        Binding("r", "run", "run"),
        Binding("p", "pause", "pause"),
        Binding("s", "step", "step"),
        Binding("x", "stop", "stop"),
        Binding("n", "new_run", "new run"),
        Binding("l", "presets", "presets"),
        Binding("question_mark", "lesson", "lesson", key_display="?"),
        Binding("b", "pin", "pin"),
        Binding("B", "unpin", "unpin", show=False),
        Binding("o", "pick_baseline", "baseline from runs", show=False),
        Binding("v", "next_view", "view"),
        Binding("1", "view(0)", "config view", show=False),
        Binding("2", "view(1)", "gradients view", show=False),
        Binding("3", "view(2)", "curves view", show=False),
        Binding("4", "view(3)", "layers view", show=False),
        Binding("e", "edit", "edit config", show=False),
        Binding("left_square_bracket", "hist_layer(-1)", "previous layer", show=False, key_display="["),
        Binding("right_square_bracket", "hist_layer(1)", "next layer", show=False, key_display="]"),
        Binding("left,comma", "scrub(-1)", "earlier", key_display="←"),
        Binding("right,full_stop", "scrub(1)", "later", key_display="→"),
        Binding("home", "scrub_to(0)", "first snapshot", show=False),
        Binding("end", "scrub_to(-1)", "follow the end", show=False),
        Binding("escape", "leave_input", "leave field", show=False),
        # Work while typing in a field (priority), without stealing a letter from it.
        Binding("ctrl+r", "run", "run", show=False, priority=True),
        Binding("ctrl+n", "new_run", "new run", show=False, priority=True),
        Binding("ctrl+t", "step", "step", show=False, priority=True),
        Binding("ctrl+x", "stop", "stop", show=False, priority=True),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        preset_name: str | None = None,
        cfg: LabConfig | None = None,
        lang: str = "en",
        show_dir: Path | None = None,
        poll_s: float = POLL_S,
        open_picker: bool = False,
    ) -> None:
        super().__init__()
        self.open_picker = open_picker  # plain `tui-lab`: start in the preset picker
        self.lang = lang
        self.poll_s = poll_s
        self.show_dir = Path(show_dir) if show_dir is not None else None
        self.show: SimpleNamespace | None = None
        self.startup_error = ""
        if self.show_dir is not None:
            from tui_lab.core.runlog import read_run_config, read_summary

            cfg = read_run_config(self.show_dir)
            summary = read_summary(self.show_dir) or {}
            preset_name = summary.get("preset") or self.show_dir.name
        elif cfg is None and preset_name:
            from tui_lab.core.presets import load_preset

            try:
                preset_name, cfg = load_preset(preset_name)
            except UserError as exc:
                self.startup_error = str(exc)
        self.cfg = cfg or default_config()
        self.preset_name = preset_name or "custom"
        self.session: RunSession | None = None
        self.baseline: Baseline | None = None
        self.view_index = 0
        self.hist_layer = 0
        self.message = ""
        self._painted: dict[str, Any] = {}
        self._plot_version, self._plot_time = -2, 0.0
        self._view_cache: Any = None

    # -- layout -------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static("", id="viewbar")
        with Container(id="panels"):
            yield ConfigPanel(self.cfg, id="p-config", classes="panel")
            with Vertical(id="p-loss", classes="panel"):
                yield LossPlot(id="loss-plot")
            with VerticalScroll(id="p-flow", classes="panel"):
                yield GradFlow(id="gradflow")
            with Vertical(id="p-gradtime", classes="panel"):
                yield GradTimePlot(id="gradtime-plot")
            yield FindingsPanel(id="p-findings", classes="panel")
            with Vertical(id="p-hist", classes="panel"):
                yield HistogramPlot(id="hist-plot")
            with VerticalScroll(id="p-layers", classes="panel"):
                yield LayerTable(id="layer-table")
            with Vertical(id="p-timegrad", classes="panel"):
                yield TimeGradPlot(id="timegrad-plot")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        titles = {
            "p-config": "Config", "p-loss": "Loss / accuracy", "p-flow": "Gradient flow  log10 ‖∇W‖",
            "p-gradtime": "‖∇W‖ per layer over time (log10)", "p-findings": "Findings",
            "p-hist": "∇W histogram", "p-layers": "Activations: dead / saturated",
            "p-timegrad": "‖dloss/dx_t‖ per time step (log10)",
        }  # fmt: skip
        for pid, title in titles.items():
            self.query_one("#" + pid).border_title = title
        self.query_one("#p-config").border_subtitle = "e edit · esc leave"
        if self.show_dir is not None:
            self._open_show()
        self._layout()
        self._paint()
        self.set_interval(self.poll_s, self._tick)
        if self.startup_error:
            self.notify(self.startup_error, severity="error", timeout=10)
        if self.show_dir is None:
            self.set_timer(0.3, self._prewarm)
        if self.open_picker:
            self.set_timer(0.05, self.action_presets)  # after the first frame is on screen

    def _prewarm(self) -> None:
        """Import torch in the background once the screen is up, so the first run starts quickly."""

        def load() -> None:
            try:
                import torch  # noqa: F401

                from tui_lab.core import trainer  # noqa: F401
            except Exception:  # noqa: BLE001 - the run reports it
                pass

        threading.Thread(target=load, name="tui-lab-prewarm", daemon=True).start()

    def on_resize(self) -> None:
        self._layout()
        # Below 100 columns every key is worth more than the palette hint (ctrl+p still opens it).
        footer = self._main_screen().query_one(Footer) if self._main_screen() else None
        if footer is not None:
            footer.show_command_palette = self.size.width >= 100

    @property
    def wide(self) -> bool:
        return self.size.width >= WIDE[0] and self.size.height >= WIDE[1]

    @property
    def recurrent(self) -> bool:
        cfg = self.session.cfg if self.session else self.cfg
        return cfg.recurrent

    def _layout(self) -> None:
        main = self._main_screen()
        if main is None:
            return
        wide, recurrent = self.wide, self.recurrent
        two = self.size.width >= TWO_COLUMNS
        key, _title, one_col, two_col = VIEWS[self.view_index]
        if wide:
            visible = [p for p in PANELS if p != "p-timegrad" or recurrent]
        else:
            visible = [p for p in (two_col if two else one_col) if p != "p-timegrad" or recurrent]
        # All layout classes in one change: each class change restyles every widget on the screen (hundreds,
        # with the config panel), so one set_classes instead of a set_class per class, and none if unchanged.
        layout_classes = {"-wide", "-cols2", "-cols1", "-recurrent"} | {f"-view-{k}" for k, *_r in VIEWS}
        wanted = {cls for cls, on in (("-wide", wide), ("-cols2", not wide and two),
                                      ("-cols1", not wide and not two), ("-recurrent", recurrent)) if on}  # fmt: skip
        wanted.add(f"-view-{key}")
        current = set(main.classes)
        if (current & layout_classes) != wanted:
            main.set_classes((current - layout_classes) | wanted)
        for pid in PANELS:
            main.query_one("#" + pid).display = pid in visible
        bar = main.query_one("#viewbar", Static)
        bar.display = not wide
        if not wide:
            parts = []
            for i, (_k, title, *_p) in enumerate(VIEWS):
                style = "reverse bold" if i == self.view_index else "dim"
                parts.append(f"[{style}] {i + 1} {title} [/]")
            bar.update(" ".join(parts) + "  [dim]v next view[/dim]")
        focused = self.focused
        if focused is not None and not _shown(focused):
            self.set_focus(None)

    def _main_screen(self) -> Screen | None:
        try:
            return self.screen_stack[0]
        except IndexError:
            return None

    # -- state --------------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.show is not None:
            if self.show.cursor is not None:
                return "replay"
            status = self.show.status
            return "following" if status == "running" else status
        s = self.session
        if s is None:
            return "idle"
        if s.bridge.result is not None:
            return s.bridge.result.status
        if not s.bridge.meta:
            return "loading"
        return "paused" if s.control.paused else "running"

    @property
    def config_panel(self) -> ConfigPanel:
        return self._main_screen().query_one("#p-config", ConfigPanel)  # type: ignore[union-attr]

    # -- runs ---------------------------------------------------------------------------------------------

    def start_run(self, step: bool = False) -> bool:
        """Start a run with the edited configuration; refuse (and say why) when it is invalid."""
        if self.show is not None:
            self.notify("read-only: this is a recorded run (tui-lab show)", severity="warning")
            return False
        cfg = self.config_panel.current()
        if cfg is None:
            problems = self.config_panel.problems
            self.message = "invalid config: " + "; ".join(problems)
            self.notify("cannot start: " + "\n".join(problems), severity="error", title="invalid config")
            self._paint(force=True)
            return False
        from tui_lab.core.runlog import RunLog, default_run_dir
        from tui_lab.core.trainer import Control

        try:
            run_dir = default_run_dir(self.preset_name)
            runlog = RunLog(run_dir)
        except (UserError, OSError) as exc:
            self.notify(f"cannot write the run directory: {exc}", severity="error")
            return False
        control = Control()
        if step:
            control.step_once()
        control.histogram_layer = self.hist_layer
        previous = self.session
        if previous is not None and not previous.finished:
            previous.control.stop()
        self.session = RunSession(cfg, self.preset_name, control, Bridge(), run_dir, runlog)
        self.message = ""
        self._layout()
        self._train(self.session, previous)
        self._paint(force=True)
        return True

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def _train(self, session: RunSession, previous: RunSession | None) -> None:
        session.thread = threading.current_thread()
        try:
            if previous is not None:
                previous.control.stop()
                previous.done.wait(10)
            from tui_lab.core.trainer import Trainer

            trainer = Trainer(session.cfg, session.control, sinks=[session.runlog, session.bridge],
                              preset=session.name)  # fmt: skip
            trainer.run()
        except BaseException as exc:  # noqa: BLE001 - shown in the UI, never a crash
            if session.bridge.result is None:
                session.bridge.on_finish(SimpleNamespace(status="failed", steps=0, message=f"{type(exc).__name__}: {exc}",
                                                         findings=[], last=None))  # fmt: skip
        finally:
            session.done.set()

    def attach_replay(self, cfg: LabConfig, name: str, meta: dict[str, Any], snapshots: Iterable[Any],
                      paused: bool = True, run_dir: Path | None = None) -> RunSession:  # fmt: skip
        """Show a fixed sequence of snapshots as if a run produced them (deterministic tests, demos)."""
        from tui_lab.core.trainer import Control

        control = Control()
        if paused:
            control.pause()
        bridge = Bridge()
        bridge.on_start({"config": cfg, **meta})
        for snap in snapshots:
            bridge(snap)
        self.session = RunSession(cfg, name, control, bridge, run_dir)
        self.session.done.set()
        self._layout()
        self._paint(force=True)
        return self.session

    def stop_and_join(self, timeout: float = 1.0) -> bool:
        s = self.session
        if s is None:
            return True
        s.control.stop()
        if s.thread is None or s.thread is threading.current_thread():
            return True  # never started (a replay), or called from the worker itself
        return s.done.wait(timeout)

    # -- actions ------------------------------------------------------------------------------------------

    RUN_ACTIONS = ("run", "pause", "step", "stop", "new_run", "presets")
    SHOW_ACTIONS = ("scrub", "scrub_to")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A recorded run (`show`) is read-only: hide the run keys there, and the scrub keys elsewhere."""
        if self.show is not None and action in self.RUN_ACTIONS:
            return False
        if self.show is None and action in self.SHOW_ACTIONS:
            return False
        return True

    def _active(self) -> RunSession | None:
        s = self.session
        return s if s is not None and not s.finished and self.show is None else None

    def action_run(self) -> None:
        s = self._active()
        if s is not None:
            if s.control.paused:
                s.control.resume()
            else:
                self.notify("already running: p pauses, x stops, n starts a new run")
        else:
            self.start_run()
        self._paint(force=True)

    def action_new_run(self) -> None:
        self.start_run()

    def action_pause(self) -> None:
        s = self._active()
        if s is None:
            return
        if s.control.paused:
            s.control.resume()
        else:
            s.control.pause()
        self._paint(force=True)

    def action_step(self) -> None:
        s = self._active()
        if s is None:
            self.start_run(step=True)
            return
        s.control.step_once()
        self._paint(force=True)

    def action_stop(self) -> None:
        s = self._active()
        if s is not None:
            s.control.stop()
            s.control.resume()

    async def action_quit(self) -> None:
        joined = self.stop_and_join(1.0)
        if not joined:
            self.log.warning("the trainer thread did not stop within 1 s")
        self.exit(0)

    def action_presets(self) -> None:
        from tui_lab.ui.screens import PresetPicker

        def loaded(name: str | None) -> None:
            if not name:
                return
            from tui_lab.core.presets import load_preset

            try:
                name, cfg = load_preset(name)
            except UserError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return
            self.load_config(cfg, name)
            self.notify(f"loaded preset {name}: press r to run", title=cfg.title_for(self.lang) or name)

        self.push_screen(PresetPicker(self.lang), loaded)

    def load_config(self, cfg: LabConfig, name: str) -> None:
        if self.show is not None:
            self.notify("read-only: this is a recorded run (tui-lab show)", severity="warning")
            return
        self.cfg = cfg
        self.preset_name = name
        self.config_panel.load(cfg)
        self._layout()
        self._paint(force=True)

    def action_lesson(self) -> None:
        from tui_lab.ui.screens import LessonScreen

        cfg = self.config_panel.base
        title = cfg.title_for(self.lang) or self.preset_name
        self.push_screen(LessonScreen(f"{self.preset_name}: {title}", cfg.lesson_for(self.lang).strip()))

    def action_pin(self) -> None:
        view = self._read()
        if view is None or not view.history or len(view.history) == 0:
            self.notify("nothing to pin yet: run first (r)", severity="warning")
            return
        layered = view.layered
        cfg = self._current_cfg()
        self.baseline = Baseline(
            cfg, self.preset_name, view.history.copy(),
            [layer.name for layer in layered.layers] if layered else [],
            [layer.grad_norm for layer in layered.layers] if layered else [],
            layered.time_grad_norm if layered else None,
            str(self.session.run_dir) if self.session and self.session.run_dir else "",
        )  # fmt: skip
        self.notify("pinned as the baseline: edit the config and press n to compare (B clears)")
        self._paint(force=True)

    def action_unpin(self) -> None:
        if self.baseline is not None:
            self.baseline = None
            self.notify("baseline cleared")
            self._paint(force=True)

    def action_pick_baseline(self) -> None:
        from tui_lab.core.runlog import runs_root
        from tui_lab.ui.screens import RunPicker

        def picked(path: Path | None) -> None:
            if path is None:
                return
            self.pin_run_dir(path)

        self.push_screen(RunPicker(runs_root()), picked)

    def pin_run_dir(self, path: Path) -> None:
        from tui_lab.ui.baseline import from_run_dir

        try:
            self.baseline = from_run_dir(path)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"baseline: {path.name}")
        self._paint(force=True)

    def action_next_view(self) -> None:
        self.action_view((self.view_index + 1) % len(VIEWS))

    def action_view(self, index: int) -> None:
        self.view_index = index % len(VIEWS)
        self._layout()

    def action_edit(self) -> None:
        if not self.wide and VIEWS[self.view_index][0] != "config":
            self.view_index = 0
            self._layout()
        self.call_after_refresh(self.config_panel.focus_first)

    def action_leave_input(self) -> None:
        if self.focused is not None:
            self.set_focus(None)

    def action_hist_layer(self, delta: int) -> None:
        view = self._read()
        n = len(view.meta.get("layers") or []) if view else 0
        if view is not None and not n and view.layered is not None:
            n = len(view.layered.layers)
        if n == 0:
            return
        self.hist_layer = (self.hist_layer + delta) % n
        if self.session is not None:
            self.session.control.histogram_layer = self.hist_layer
        self._paint(force=True)

    def action_scrub(self, delta: int) -> None:
        if self.show is None or not self.show.records:
            return
        n = len(self.show.records)
        cur = self.show.cursor if self.show.cursor is not None else n - 1
        self._set_cursor(min(max(cur + delta, 0), n - 1))

    def action_scrub_to(self, index: int) -> None:
        if self.show is None or not self.show.records:
            return
        self._set_cursor(index if index >= 0 else len(self.show.records) - 1)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            ("Run / resume", "r: start a run with the edited config, or resume", self.action_run),
            ("Pause", "p: pause (or resume) the run", self.action_pause),
            ("Step", "s: run exactly one step and pause", self.action_step),
            ("Stop", "x: stop the run", self.action_stop),
            ("New run", "n: stop and start a new run with the edited config", self.action_new_run),
            ("Presets", "l: pick a lesson preset", self.action_presets),
            ("Lesson", "?: the lesson of the loaded preset", self.action_lesson),
            ("Pin baseline", "b: pin the current or last run as the baseline", self.action_pin),
            ("Clear baseline", "B: forget the baseline", self.action_unpin),
            ("Baseline from earlier runs", "o: choose a run directory as the baseline", self.action_pick_baseline),
            ("Next view", "v: cycle the panels on small terminals", self.action_next_view),
            ("Edit config", "e: focus the config panel (esc leaves it)", self.action_edit),
        ):
            yield SystemCommand(title, help_text, action)

    # -- show: a recorded (or still growing) run directory -------------------------------------------------

    def _open_show(self) -> None:
        assert self.show_dir is not None
        self.show = SimpleNamespace(records=[], offset=0, cursor=None, status="running", bridge=Bridge(),
                                    meta={}, last_follow=0.0)  # fmt: skip
        self.config_panel.set_read_only(True)
        self._follow(force=True)

    def _follow(self, force: bool = False) -> None:
        import time

        from tui_lab.core.runlog import read_metrics, read_summary
        from tui_lab.core.trainer import Snapshot

        sh = self.show
        assert sh is not None and self.show_dir is not None
        now = time.monotonic()
        if not force and (now - sh.last_follow < FOLLOW_S or sh.status not in ("running",)):
            return
        sh.last_follow = now
        summary = read_summary(self.show_dir) or {}
        records, sh.offset = read_metrics(self.show_dir, sh.offset)
        sh.status = summary.get("status", "running")
        if not sh.meta:
            sh.meta = {k: summary[k] for k in ("device", "device_name", "layers", "total_steps") if k in summary}
            sh.meta["config"] = self.cfg
            sh.bridge.on_start(sh.meta)
        total = self.cfg.train.steps
        for r in records:
            snap = Snapshot.from_dict(r, total_steps=total)
            sh.records.append(snap)
            if sh.cursor is None:
                sh.bridge(snap)
        if sh.status != "running" and sh.bridge.result is None:
            sh.result = SimpleNamespace(status=sh.status, steps=summary.get("steps", 0),
                                        message=summary.get("message", ""), findings=[])  # fmt: skip
            sh.bridge.result = sh.result
            sh.bridge.version += 1

    def _set_cursor(self, index: int) -> None:
        sh = self.show
        assert sh is not None
        n = len(sh.records)
        sh.cursor = None if index >= n - 1 else index
        bridge = Bridge()
        bridge.on_start(sh.meta)
        upto = sh.records if sh.cursor is None else sh.records[: index + 1]
        for snap in upto:
            bridge(snap)
        if sh.cursor is None and getattr(sh, "result", None) is not None:
            bridge.result = sh.result
        bridge.version = sh.bridge.version + 1
        sh.bridge = bridge
        self._paint(force=True)

    # -- painting -----------------------------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            if self.show is not None:
                self._follow()
            self._paint()
        except NoMatches:  # the app is closing: its widgets are gone
            pass

    def _current_cfg(self) -> LabConfig:
        if self.session is not None:
            return self.session.cfg
        return self.cfg

    def _bridge(self) -> Bridge | None:
        if self.show is not None:
            return self.show.bridge
        return self.session.bridge if self.session is not None else None

    def _read(self) -> Any:
        """A consistent copy of the bridge, re-read only when its version moved."""
        bridge = self._bridge()
        if bridge is None:
            return None
        cache = self._view_cache
        if cache is not None and cache[0] is bridge and cache[1] == bridge.version:
            return cache[2]
        view = bridge.read()
        layered = None
        if view.latest is not None and view.latest.layers:
            layered = view.latest
        elif view.history.grads:
            layered = getattr(bridge, "_last_layered", None)
        if view.latest is not None and view.latest.layers:
            bridge._last_layered = view.latest  # type: ignore[attr-defined]
        view.layered = layered  # type: ignore[attr-defined]
        self._view_cache = (bridge, view.version, view)
        return view

    def _paint(self, force: bool = False) -> None:
        main = self._main_screen()
        if main is None or not main.is_mounted:
            return
        view = self._read()
        state = self.state
        base = self.baseline
        cfg = self._current_cfg()
        labels = diff_labels(base.cfg, cfg) if base is not None else None
        version = view.version if view is not None else -1
        bkey = id(base)
        snap = view.latest if view is not None else None
        meta = view.meta if view is not None else {}
        total = meta.get("total_steps") or cfg.train.steps
        run_dir = str(self.session.run_dir) if self.session and self.session.run_dir and self.show is None else None
        if self.show is not None:
            run_dir = str(self.show_dir)
        message = self.message
        result = view.result if view is not None else None
        if result is not None and result.status in ("diverged", "failed") and result.message:
            message = f"{result.status}: {result.message}"
        cursor = ""
        if self.show is not None and self.show.records:
            n = len(self.show.records)
            i = self.show.cursor if self.show.cursor is not None else n - 1
            cursor = f"snapshot {i + 1}/{n} (←/→)"
        skey = (version, state, message, run_dir, cursor, self.preset_name, self.size)
        status = main.query_one("#status", StatusBar)
        if force or self._painted.get("status") != skey:
            self._painted["status"] = skey
            status.show(preset=self.preset_name, state=state, snap=snap, meta=meta, total=total, run_dir=run_dir,
                        message=message, cursor=cursor)  # fmt: skip

        # Panels (plotext plots are the costly part of a repaint, and every repainted row costs terminal bytes)
        # follow at most PLOT_INTERVAL_S behind while a run goes; the status line keeps the full rate, so
        # keys answer at once. Any other state draws at once.
        now = time.monotonic()
        if version != self._plot_version and (state != "running" or now - self._plot_time >= PLOT_INTERVAL_S):
            self._plot_version, self._plot_time = version, now
        pversion = self._plot_version

        layered = view.layered if view is not None else None
        names = [layer.name for layer in layered.layers] if layered else []
        grads = [layer.grad_norm for layer in layered.layers] if layered else []
        main.query_one("#gradflow", GradFlow).set_data(
            (pversion, bkey, labels), names=names, grads=grads, base=base.grads if base else None, labels=labels,
            base_names=base.names if base else None,
        )  # fmt: skip
        # The step in the border only when the run is not moving: a changing border repaints the whole panel.
        _subtitle(main.query_one("#p-flow"), f"step {layered.step}" if layered and state != "running" else "")
        main.query_one("#layer-table", LayerTable).set_data(pversion, layers=layered.layers if layered else [])
        history = view.history if view is not None else History()
        main.query_one("#loss-plot", LossPlot).set_data(
            (pversion, bkey, labels), history=history, base=base.history if base else None, labels=labels
        )
        main.query_one("#gradtime-plot", GradTimePlot).set_data(
            (pversion, bkey), history=history, names=names, base=base.history if base else None
        )
        if base is not None and labels is not None:
            legend = f"grey: baseline {labels[0]} · colour: {labels[1]}"
            _subtitle(main.query_one("#p-loss"), legend)
            _subtitle(main.query_one("#p-gradtime"), "blue = input side … red = output · " + legend)
        else:
            _subtitle(main.query_one("#p-loss"), "")
            _subtitle(main.query_one("#p-gradtime"), "blue = input side … red = output")
        hist = view.histogram if view is not None else None
        if self.show is not None:
            hist_empty = "histograms are not recorded in the run directory"
            hist = None
        else:
            hist_empty = "histogram: comes with the next snapshot"
        hist_name = names[self.hist_layer] if self.hist_layer < len(names) else f"layer {self.hist_layer + 1}"
        _subtitle(main.query_one("#p-hist"), f"{hist_name} · [ ] choose layer")
        main.query_one("#hist-plot", HistogramPlot).set_data((pversion, self.hist_layer, hist is None, self.show is None), histogram=hist,
                                                             empty=hist_empty)  # fmt: skip
        tgn = layered.time_grad_norm if layered else None
        main.query_one("#timegrad-plot", TimeGradPlot).set_data(
            (pversion, bkey), tgn=tgn, base=base.tgn if base else None,
            empty="" if cfg.recurrent else "recurrent models only",
        )  # fmt: skip
        findings = list(snap.findings) if snap is not None and snap.findings else []
        if self.show is not None and snap is not None and not findings:
            findings = self._diagnose_show(snap)
        note = "nothing to report yet"
        if self.session is not None and self.session.run_dir is not None and self.show is None:
            note = "no problems seen"
        main.query_one("#p-findings", FindingsPanel).set_data(
            (pversion, id(result), run_dir), findings, result, note, run_dir or ""
        )

    def _diagnose_show(self, snap: Any) -> list[Any]:
        from tui_lab.core.diagnosis import diagnose

        sh = self.show
        assert sh is not None
        try:
            i = sh.records.index(snap)
        except ValueError:
            i = len(sh.records)
        return diagnose(snap, sh.records[max(0, i - 20) : i], self.cfg)

    # -- leaving ------------------------------------------------------------------------------------------

    def on_unmount(self) -> None:
        self.stop_and_join(1.0)


def _subtitle(node: Any, text: str) -> None:
    """Set a border subtitle only when it changes: each assignment repaints the whole panel."""
    if node.border_subtitle != text:
        node.border_subtitle = text


def _shown(widget: Any) -> bool:
    node = widget
    while node is not None:
        if not getattr(node, "display", True):
            return False
        node = node.parent
    return True


def run_app(
    preset_name: str | None = None, cfg: LabConfig | None = None, lang: str = "en", show_dir: Path | None = None
) -> int:
    """Open the TUI (the CLI calls exactly this). Returns the exit code."""
    bare = preset_name is None and cfg is None and show_dir is None
    app = LabApp(preset_name=preset_name, cfg=cfg, lang=lang, show_dir=show_dir, open_picker=bare)
    try:
        code = app.run()
    finally:
        app.stop_and_join(1.0)
    return int(code or 0) if isinstance(code, int) else 0
