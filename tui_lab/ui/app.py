"""The tui-lab Textual app: the keys and what they do, the modal screens, and the terminal's lifetime.

The app owns the state (`LabState`: the loaded configuration, the run on screen, the baseline) and changes
it in its actions; the main screen (`LabScreen`) draws it. A live run trains in a thread worker and meets
the UI only through its Control (run, pause, step, stop) and its Bridge (polled by the screen). torch is
imported after the first frame, in the background.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import App, SystemCommand
from textual.notifications import Notify
from textual.screen import Screen

from tui_lab.core.config import LabConfig
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.fmt import printable
from tui_lab.core.i18n import _, set_language
from tui_lab.core.run import PACES
from tui_lab.core.sweepdir import SweepDir
from tui_lab.ui import commands, glyphs, job_control, palette, safe_terminal, term_modes
from tui_lab.ui.baseline import from_run_dir, from_view
from tui_lab.ui.components.config_panel import ConfigPanel
from tui_lab.ui.components.findings import FindingsPanel
from tui_lab.ui.components.gradflow import GradFlowPanel, LayersPanel, TextPanel
from tui_lab.ui.components.layer_rows import has_blocks
from tui_lab.ui.main_screen import POLL_S, VIEW_KEYS, LabScreen
from tui_lab.ui.runs import LiveRun, RecordedRun, Run, TrainingLine
from tui_lab.ui.state import LabState
from tui_lab.ui.sweep_screen import SweepScreen

PREWARM_AFTER_S = 0.3  # torch loads once the first frame is up
safe_terminal.toasts_that_expire()  # a Textual bug that freezes the app (ui/safe_terminal.py)
_PRINTABLE_ONLY = safe_terminal.PrintableOnly()  # one instance: strips cache what a filter made of them


class LabApp(App[int]):
    # Absolute: subclasses elsewhere find them too. modes.tcss: ASCII and NO_COLOR (ui/term_modes.py).
    CSS_PATH = [Path(__file__).with_name("app.tcss"), Path(__file__).with_name("modes.tcss")]
    TITLE = "tui-lab"
    AUTO_FOCUS = None  # keys go to the app until the user tabs (or presses e) into the config panel
    # No mouse text selection of Textual's own: a press on a toast crashed it (8.2: `container.region` of None,
    # found by the fuzz); the terminal's own selection (Shift+drag) still copies text.
    ALLOW_SELECT = False
    BINDINGS = commands.BINDINGS

    def __init__(
        self,
        preset_name: str | None = None,
        cfg: LabConfig | None = None,
        lang: str = "en",
        show_dir: Path | None = None,
        poll_s: float = POLL_S,
        open_picker: bool = False,
        sweep_dir: Path | None = None,
    ) -> None:
        set_language(lang)  # every word on screen from here on (the findings too: the trainer thread reads it)
        super().__init__()
        term_modes.prepare(self)  # ASCII mode (ui/glyphs.py), chosen before the app is made
        commands.translate_bindings(self)
        self.lang = lang
        self.open_picker = open_picker  # plain `tui-lab`: start in the preset picker
        self.lab = LabState(cfg or LabConfig(), preset_name or "custom")
        self.training = TrainingLine()  # the one thread that trains (runs queue for it)
        self._focus_asked = 0  # counts focus requests and Esc presses (_focus_later)
        if show_dir is not None:
            run = RecordedRun(Path(show_dir))
            self.lab.cfg, self.lab.preset, self.lab.run = run.cfg, run.name, run
        self.viewer = show_dir is not None or sweep_dir is not None  # tui-lab show: nothing trains here
        self.sweep: SweepDir | None = None  # the sweep on its screen, or whose run is on screen (Esc: back to it)
        self._sweep_state: dict[str, Any] = {}  # its screen's cursor and sort, for when it comes back
        self._before_sweep: tuple[Any, ...] | None = None  # what a session showed before a sweep's run was opened
        if sweep_dir is not None:
            self.sweep = SweepDir(Path(sweep_dir))  # not a readable sweep: one line, before the TUI opens
        self.main = LabScreen(self.lab, poll_s)
        screen = self.lab.cfg.screen  # where the lesson looks, and at what pace
        self.lab.pace, self.lab.want_layer = screen.pace, screen.layer
        if screen.view != "auto" and screen.view in VIEW_KEYS:
            self.main.view_index = VIEW_KEYS.index(screen.view)
            self.main.view_chosen = True

    def get_default_screen(self) -> Screen:
        return self.main

    # -- the terminal: ASCII, NO_COLOR, 16 colours (ui/term_modes.py) ----------------------------------

    def get_driver_class(self):  # type: ignore[no-untyped-def]
        base = safe_terminal.safe_driver(super().get_driver_class())  # input Textual would crash on is dropped
        return term_modes.ascii_driver(base) if glyphs.G.ascii else base

    def get_line_filters(self):  # type: ignore[no-untyped-def]
        # Whatever a widget was given, no escape sequence in it reaches the terminal (ui/safe_terminal.py).
        return [*term_modes.line_filters(self, super().get_line_filters()), _PRINTABLE_ONLY]

    def get_key_display(self, binding) -> str:  # type: ignore[no-untyped-def]
        return glyphs.text(super().get_key_display(binding))

    def notify(self, message: str, *, title: str = "", severity: str = "information", **kwargs) -> None:  # type: ignore[override]
        """In ASCII mode spelled out; without colour, an error or a warning says so with its mark. Plain text:
        messages carry preset titles, names, values typed and error texts, never markup (a '[/]' would crash
        the app), and no escape sequence reaches the terminal."""
        kwargs["markup"] = False
        message, title = printable(message, multiline=True), printable(title)
        if palette.no_color() and severity in ("error", "warning"):
            mark = glyphs.G.error if severity == "error" else glyphs.G.warn
            title = f"{mark} {title}" if title else title
            message = message if title else f"{mark} {message}"
        super().notify(glyphs.text(message), title=glyphs.text(title), severity=severity, **kwargs)  # type: ignore[arg-type]

    async def _check_bindings(self, key: str, priority: bool = False) -> bool:
        """A key still queued while the app quits, after its last screen is gone, is dropped: Textual raised
        ScreenStackError for it (keys typed during `q`; seen once in CI, in a test sending three escapes)."""
        if not self._screen_stack:
            return False
        return await super()._check_bindings(key, priority)

    MAX_TOASTS = 4  # notifications on screen at once; the oldest goes first

    def _on_notify(self, event: Notify) -> None:
        """At most MAX_TOASTS notifications, and one of each text: Textual keeps every one until its time is up, and
        each toast that comes or goes relays out and repaints the whole screen. A storm of keys that each say
        something (r r r: "already running") kept hundreds of toasts and the app busy for minutes, keys
        unanswered (benchmarks/fuzz_tui.py). The same text again replaces the old toast (its time starts again)."""
        new = event.notification
        shown = list(self._notifications)
        for old in shown:
            if (old.message, old.title, old.severity) == (new.message, new.title, new.severity):
                self._unnotify(old, refresh=False)
        shown = list(self._notifications)
        for old in shown[: max(0, len(shown) - self.MAX_TOASTS + 1)]:
            self._unnotify(old, refresh=False)
        super()._on_notify(event)

    # -- a crash: one line, a non-zero exit, the run directory finished (run_app) -----------------------------

    crash = ""  # what ended the app, in one line ("" when nothing did)

    def _handle_exception(self, error: Exception) -> None:
        self.crash = self.crash or one_line(error)
        super()._handle_exception(error)

    def panic(self, *renderables: Any) -> None:
        """Textual's input thread ends the app this way when it fails; the traceback names the error."""
        if not self.crash:
            stacks = getattr(getattr(renderables[0], "trace", None), "stacks", None) if renderables else None
            error = f"{stacks[-1].exc_type}: {stacks[-1].exc_value}" if stacks else "panic"
            self.crash = error.splitlines()[0]
        super().panic(*renderables)

    def _fatal_error(self) -> None:
        """Textual renders the traceback with every frame's locals here, before it exits: tens of seconds with a
        run's tensors and the DOM in them, a frozen screen. Only with TUI_LAB_DEBUG=1; else the app ends now."""
        if _debug():
            super()._fatal_error()
        else:
            self._close_messages_no_wait()

    def _print_error_renderables(self) -> None:
        """After a crash one line on stderr, not Textual's page of traceback (that with TUI_LAB_DEBUG=1)."""
        if not self.crash or _debug():
            super()._print_error_renderables()
        if self.crash:
            self._exit_renderables.clear()
            print(f"tui-lab: {_('internal error: {error}').format(error=printable(self.crash))}", file=sys.stderr)

    def on_mount(self) -> None:
        if not self.lab.read_only and not self.viewer:
            self.set_timer(PREWARM_AFTER_S, self._prewarm)
        if self.sweep is not None:
            self.push_screen(SweepScreen(self.sweep))
        if self.open_picker:
            self.set_timer(0.05, self.action_presets)  # after the first frame is on screen

    def _prewarm(self) -> None:
        """Import torch in the background once the screen is up, so the first run starts quickly."""

        def load() -> None:
            try:
                from tui_lab.core import trainer  # noqa: F401 - imports torch
            except Exception:  # noqa: BLE001 - the run reports it
                pass

        threading.Thread(target=load, name="tui-lab-prewarm", daemon=True).start()

    def _changed(self) -> None:
        """Show a change at once, not at the next tick."""
        self.main.refresh_panels()

    # -- runs ---------------------------------------------------------------------------------------------

    def start_run(self, step: bool = False) -> bool:
        """Start a run with the edited configuration; refuse (and say why) when it is invalid."""
        panel = self.main.config_panel
        cfg = panel.current()
        if cfg is None:
            self.lab.message = _("invalid config: {problems}").format(problems="; ".join(panel.problems))
            self.notify(
                _("cannot start: {problems}").format(problems="\n".join(panel.problems)),
                severity="error",
                title=_("invalid config"),
            )
            self._changed()
            return False
        too_big = _over_budget(cfg)  # before anything is allocated or written: the run does not start
        if too_big:
            self.lab.message = too_big
            self.notify(too_big, severity="error", title=_("not enough memory"), markup=False)
            self._changed()
            return False
        try:
            run = LiveRun.create(cfg, self.lab.name_for(cfg), self.lab.hist_layer, step=step)
            run.control.pace = PACES[self.lab.pace]
        except (UserError, OSError) as exc:
            self.notify(_("cannot write the run directory: {error}").format(error=exc), severity="error")
            return False
        self.lab.replace_run(run)  # the run it replaces is stopped
        self.lab.message = ""
        if self.main.view_index == 0 and not self.main.view_chosen:  # a run is watched in its gradients
            self.main.view_index = 1
        self.main.arrange_panels()
        # Its turn comes when the run before it has let go (replace_run stopped it): one training thread, and
        # a run stopped before its turn never makes a run directory (ui/runs.py TrainingLine).
        self.training.submit(run.train)
        self._changed()
        return True

    def show_run(self, run: Run) -> None:
        """Put a run on screen that is already made: a replay of fixed snapshots (tests, demos), say."""
        self.lab.replace_run(run)
        self.main.arrange_panels()
        self._changed()

    def stop_and_join(self, timeout: float = 1.0) -> bool:
        """Stop the run on screen and wait for the training thread to end (every run directory complete, the
        runs queued behind it ended at once); True when it was in time."""
        if self.lab.run is not None:
            self.lab.run.stop()
        return self.training.join(timeout)

    # -- actions ------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A recorded run is read-only: its run keys are hidden, and the scrub keys only show for it."""
        needs = commands.NEEDS.get(action, "")
        if needs == "writable":
            return not self.lab.read_only and not self.viewer
        if needs == "scrub":
            return self.lab.run is not None and self.lab.run.can_scrub
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):  # Textual's, in the current language
            yield command._replace(title=_(command.title), help=_(command.help))
        for command in commands.PALETTE:
            help_text = f"{command.key_name}: {_(command.what)}"
            yield SystemCommand(_(command.title), help_text, partial(self.run_action, command.action))

    def action_run(self) -> None:
        run = self.lab.active
        if run is None:
            self.start_run()
        elif run.control.paused:
            run.control.resume()
        else:
            self.notify(_("already running: p pauses, x stops, n starts a new run"))
        self._changed()

    def action_new_run(self) -> None:
        self.start_run()

    def action_pause(self) -> None:
        run = self.lab.active
        if run is not None:
            run.control.resume() if run.control.paused else run.control.pause()
            self._changed()

    def action_step(self) -> None:
        run = self.lab.active
        if run is None:
            self.start_run(step=True)
            return
        run.control.step_once()
        self._changed()

    def action_stop(self) -> None:
        if (run := self.lab.active) is not None:  # once: the run can end between two looks
            run.stop()

    def action_pace(self, delta: int) -> None:
        """Slower or faster: slow (2 snapshots a second), normal (8), max (as fast as it trains)."""
        names = list(PACES)
        self.lab.pace = names[min(max(names.index(self.lab.pace) + delta, 0), len(names) - 1)]
        if (run := self.lab.active) is not None:  # once: the run can end between two looks
            run.control.set_pace(PACES[self.lab.pace])
        self._changed()

    def action_extend(self) -> None:
        """A finished run goes on for as many steps again, in the same run directory."""
        run = self.lab.run
        if not isinstance(run, LiveRun) or not run.can_extend:
            if self.lab.active is not None:
                why = _("still running")
            else:
                why = _("only a completed or stopped run of this session")
            self.notify(_("cannot go on: {why}").format(why=why), severity="warning")
            return
        more = run.first_steps
        run.scrub_to(-1)
        run.will_extend()
        self.training.submit(partial(run.extend, more))
        self.notify(_("going on for {more} more steps (c adds more once it ends)").format(more=more))
        self._changed()

    def on_config_panel_edited(self, event: ConfigPanel.Edited) -> None:
        """The header names what n would run when it is not the run on screen."""
        self.lab.edited = event.cfg if event.changed else None
        self._changed()

    def on_config_panel_live_change(self, event: ConfigPanel.LiveChange) -> None:
        """lr, momentum, weight_decay or clip_norm edited while a run goes: it takes the value at its next
        step, marks it on the curves and records it in the run directory."""
        run = self.lab.active
        if run is None or run.live.get(event.key) == event.value:
            return
        run.live[event.key] = event.value
        run.control.change(event.key, event.value)
        message = _("{key} = {value} from the next step (recorded in the run directory)")
        self.notify(message.format(key=event.key, value=f"{event.value:g}"))

    def action_command_palette(self) -> None:
        """Textual's command palette, its search field's placeholder in the current language."""
        from textual.command import CommandPalette

        from tui_lab.ui.screens import Palette

        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(Palette(placeholder=_("Search for commands…"), id="--command-palette"))

    async def action_quit(self) -> None:
        if not self.stop_and_join(1.0):
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
            self.notify(
                _("loaded preset {name}: press r to run").format(name=name), title=cfg.title_for(self.lang) or name
            )

        self.push_screen(PresetPicker(self.lang), loaded)

    def load_config(self, cfg: LabConfig, name: str) -> None:
        """Load a preset: the config panel shows it, the screen goes where its lesson looks ([screen]), and a
        finished run leaves the screen (its numbers are not the new preset's; a pinned baseline stays)."""
        self.lab.cfg, self.lab.preset, self.lab.edited = cfg, name, None
        if self.lab.run is not None and self.lab.active is None and not self.lab.read_only:
            self.lab.run = None
        self.lab.pace = cfg.screen.pace
        self.lab.hist_layer = 0
        self.lab.want_layer = cfg.screen.layer
        self.main.config_panel.load(cfg)
        if cfg.screen.view != "auto" and cfg.screen.view in VIEW_KEYS:
            self.main.view_chosen = True
            self.main.show_view(VIEW_KEYS.index(cfg.screen.view))
        self.main.arrange_panels()
        self._changed()

    def action_lesson(self) -> None:
        from tui_lab.ui.screens import LessonScreen

        cfg = self.main.config_panel.base
        title = cfg.title_for(self.lang) or self.lab.preset
        lesson = glyphs.text(cfg.lesson_for(self.lang).strip())  # ASCII mode: ← → spelled <- ->
        self.push_screen(LessonScreen(glyphs.text(f"{self.lab.preset}: {title}"), lesson))

    def action_help(self) -> None:
        """Every key, by section, from the command table (F1, h); esc, F1, h or q closes it."""
        from tui_lab.ui.screens import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- screenshots (the palette's "Screenshot", action_screenshot) ---------------------------------------

    def screenshot_dir(self) -> Path:
        """Where a screenshot goes: the run directory of the run on screen, else the current directory (Textual's
        default, ~/Downloads, need not exist on a server)."""
        run_dir = self.lab.run.run_dir if self.lab.run is not None else None
        if run_dir is not None and Path(run_dir).is_dir():
            return Path(run_dir).resolve()
        return Path.cwd()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        return super().deliver_screenshot(filename, path or str(self.screenshot_dir()), time_format)

    @on(events.DeliveryComplete)
    def _screenshot_saved(self, event: events.DeliveryComplete) -> None:
        if event.name == "screenshot":
            event.prevent_default()  # instead of Textual's message: the full path, in the lab's language
            where = str(event.path) if event.path is not None else ""
            self.notify(_("saved to {path}").format(path=where), title=_("Screenshot"), markup=False, timeout=8)

    @on(events.DeliveryFailed)
    def _screenshot_failed(self, event: events.DeliveryFailed) -> None:
        if event.name == "screenshot":
            event.prevent_default()
            self.notify(
                _("could not save the screenshot: {error}").format(error=event.exception),
                title=_("Screenshot"),
                severity="error",
                markup=False,
            )

    def action_pin(self) -> None:
        view = self.lab.view()
        run = self.lab.run
        if run is None or view is None or not view.history:
            self.notify(_("nothing to pin yet: run first (r)"), severity="warning")
            return
        self.lab.baseline = from_view(run.cfg, self.lab.preset, view, str(run.run_dir or ""))
        self.notify(_("pinned as the baseline: edit the config and press n to compare (B clears)"))
        self._changed()

    def action_unpin(self) -> None:
        if self.lab.baseline is not None:
            self.lab.baseline = None
            self.notify(_("baseline cleared"))
            self._changed()

    def action_pick_baseline(self) -> None:
        from tui_lab.core.runlog import runs_root
        from tui_lab.ui.screens import RunPicker

        self.push_screen(RunPicker(runs_root()), lambda path: path is not None and self.picked_run(path))

    def picked_run(self, path: Path) -> None:
        """The run picker's choice: a run is pinned, a sweep opens its table."""
        from tui_lab.core.sweepdir import is_sweep_dir

        if is_sweep_dir(path):
            self.open_sweep(path)
        else:
            self.pin_run_dir(path)

    def pin_run_dir(self, path: Path) -> None:
        try:
            self.lab.baseline = from_run_dir(path)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(_("baseline: {name}").format(name=path.name))
        self._changed()

    def action_loss_scale(self) -> None:
        """The loss axis: auto (log when the loss spans 3 decades or more) → log → linear (from 0)."""
        order = ["auto", "log", "linear"]
        self.lab.loss_scale = order[(order.index(self.lab.loss_scale) + 1) % len(order)]
        self._changed()

    def action_blocks(self) -> None:
        """The per-layer panels: one row per block of the model (z), or every layer again."""
        view = self.lab.view()
        names = view.meta.layers if view is not None else []
        if not self.lab.blocks and not has_blocks(names):
            self.notify(_("no blocks here: the layers' names have no module path that repeats (blocks.3.attn)"))
            return
        for panel in self._layer_panels():
            panel.rows_changed()
        self.lab.blocks = not self.lab.blocks
        self._changed()

    def action_layer_rows(self, pages: int) -> None:
        """PgDn / PgUp: the per-layer panels on screen scroll a page of their rows."""
        for panel in self._layer_panels():
            if panel.display:
                panel.page(pages)

    def _layer_panels(self) -> list[TextPanel]:
        return [self.main.query_one(GradFlowPanel), self.main.query_one(LayersPanel)]

    def action_next_view(self) -> None:
        self.main.view_chosen = True
        self.main.want_view(self.main.view_index + 1)

    def action_view(self, index: int) -> None:
        self.main.view_chosen = True
        self.main.want_view(index)

    def action_findings(self) -> None:
        """Focus the findings panel (view 2 when it is not on screen), so ↑/↓ scroll what does not fit."""
        panel = self.main.query_one(FindingsPanel)
        if not panel.display:
            self.main.view_chosen = True
            self.main.show_view(1)
        self._focus_later(panel.focus)

    def action_edit(self) -> None:
        if not self.main.wide:
            self.main.show_view(0)
        self._focus_later(self.main.config_panel.focus_first)

    def action_leave_input(self) -> None:
        self._focus_asked += 1  # a focus asked for before this Esc (e, f) and not yet given is dropped
        if self.focused is not None:
            self.set_focus(None)
        elif self.sweep is not None and self.screen is self.main:  # a run opened from a sweep: back to its table
            self.push_screen(SweepScreen(self.sweep, **self._sweep_state))

    # -- sweeps (ui/sweep_screen.py) ---------------------------------------------------------------------------

    def open_sweep(self, path: Path) -> None:
        """A sweep's table (picked with o): Esc on it comes back here."""
        try:
            sweep = SweepDir(path)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.sweep, self._sweep_state = sweep, {}
        self.push_screen(SweepScreen(sweep))

    def open_sweep_run(self, path: Path, screen: SweepScreen) -> None:
        """A run of the sweep on screen, read-only as `tui-lab show` shows it; Esc comes back to the table."""
        if self.lab.active is not None:  # opening it would stop the run training here
            self.notify(_("a run is training here: x stops it, then Enter opens this one"), severity="warning")
            return
        try:
            run = RecordedRun(path)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        run.name = path.name  # what differs (the sweep's runs share their preset's name)
        if not self.viewer and self._before_sweep is None:  # a session: what it showed comes back with Esc
            self._before_sweep = (self.lab.run, self.lab.cfg, self.lab.preset, self.lab.edited)
        self.lab.run = run  # not replace_run: the session's finished run is kept as it is, to come back to
        self.lab.cfg, self.lab.preset, self.lab.edited = run.cfg, run.name, None
        self.main.config_panel.load(run.cfg)
        self.main.arrange_panels()
        self._changed()
        self._sweep_state = screen.state()
        screen.dismiss()
        self.notify(_("{name}: Esc goes back to the sweep").format(name=path.name))

    def leave_sweep(self, screen: SweepScreen) -> None:
        """Esc on the sweep's table: back to the run opened from it (tui-lab show), or to the session as it was
        before the sweep was opened (o)."""
        self._sweep_state = screen.state()
        if self._before_sweep is not None:
            run, cfg, preset, edited = self._before_sweep
            self._before_sweep = None
            self.lab.run, self.lab.cfg, self.lab.preset, self.lab.edited = run, cfg, preset, edited
            panel = self.main.config_panel
            panel.load(edited or cfg)
            panel.base = cfg  # the session's edits show as edits again (marked *)
            panel.validate()
            self.main.arrange_panels()
            self._changed()
        elif self.viewer and self.lab.run is None:
            self.notify(_("Enter opens a run, q quits"))
            return
        if not self.viewer:
            self.sweep = None
        screen.dismiss()

    def _focus_later(self, focus: Callable[[], object]) -> None:
        """Focus once the view is laid out, unless Esc came first: on a slow link `e Esc q` may all be read
        before the next refresh, and the q must not land in a field."""
        self._focus_asked += 1
        asked = self._focus_asked
        self.call_after_refresh(lambda: focus() if asked == self._focus_asked else None)

    def action_hist_layer(self, delta: int) -> None:
        view = self.lab.view()
        layers = view.meta.layers if view is not None else []
        if not layers:
            return
        self.lab.hist_layer = (self.lab.hist_layer + delta) % len(layers)
        if (run := self.lab.active) is not None:  # once: the run can end between two looks
            run.control.histogram_layer = self.lab.hist_layer
        self._changed()

    def action_scrub(self, delta: int) -> None:
        if self.lab.run is not None:
            self.lab.run.scrub(delta)
            self._changed()

    def action_scrub_to(self, index: int) -> None:
        if self.lab.run is not None:
            self.lab.run.scrub_to(index)
            self._changed()

    def on_unmount(self) -> None:
        self.stop_and_join(1.0)


def _over_budget(cfg: LabConfig) -> str:
    """Why `cfg` needs more memory than its device has free (core/budget.py), or ''."""
    from tui_lab.core.budget import check

    try:
        return check(cfg) or ""
    except UserError as exc:  # a bad $TUI_LAB_MEMORY_LIMIT
        return str(exc)


def run_app(
    preset_name: str | None = None,
    cfg: LabConfig | None = None,
    lang: str = "en",
    show_dir: Path | None = None,
    ascii: bool = False,
    sweep_dir: Path | None = None,
) -> int:
    """Open the TUI (the CLI calls exactly this). Returns the exit code. `ascii`: --ascii (else the environment
    decides: ui/glyphs.py). `sweep_dir`: `tui-lab show` of a sweep directory (its table first)."""
    _need_a_terminal()
    glyphs.use(glyphs.choose(ascii)[0])
    bare = preset_name is None and cfg is None and show_dir is None and sweep_dir is None
    app = LabApp(preset_name=preset_name, cfg=cfg, lang=lang, show_dir=show_dir, open_picker=bare, sweep_dir=sweep_dir)
    term_modes.fit_colours(app)
    # Ctrl-Z / `fg` as Textual does them, and a SIGSTOP it never saw (then SIGCONT) no longer doubles its threads.
    app.driver_class = job_control.resumable(app.driver_class)
    try:
        with _finish_run_on_hangup(app):
            code = app.run()
    finally:
        app.stop_and_join(1.0)
    if app.crash:  # Textual returns no result after a crash: never a 0 for it
        return app.return_code or 1
    return code if isinstance(code, int) else 0


def _need_a_terminal() -> None:
    """The TUI reads its keys from a terminal: with stdin or stdout elsewhere (/dev/null, a pipe, a file, a cron
    job) it could never be answered or quit, so it does not open. A driver named by TEXTUAL_DRIVER (textual-serve's,
    `tui-lab serve`) brings its own input."""
    if os.environ.get("TEXTUAL_DRIVER"):
        return
    for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)):
        try:
            terminal = stream is not None and os.isatty(stream.fileno())
        except (AttributeError, ValueError, OSError):
            terminal = False
        if not terminal:
            raise UserError(
                _("the TUI needs a terminal, and {stream} is not one; `tui-lab run` trains without it").format(
                    stream=name
                )
            )


def _debug() -> bool:
    """TUI_LAB_DEBUG=1: a crash shows Textual's whole traceback (cli.py DEBUG_ENV)."""
    return os.environ.get("TUI_LAB_DEBUG", "") not in ("", "0")


@contextmanager
def _finish_run_on_hangup(app: LabApp) -> Iterator[None]:
    """While the TUI is up, SIGHUP (the SSH connection dropped) or SIGTERM stops the run, waits for its run
    directory to be complete (summary: stopped, with the reason "hangup" or "terminated"), then leaves. The
    terminal may be gone, so nothing is drawn: the process exits at once with the conventional 128 + signal
    number."""
    import signal

    from tui_lab.signals import handlers_installed, hangup_signals, stop_reason

    saved_tty = None
    try:
        import termios

        saved_tty = termios.tcgetattr(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (ImportError, OSError, ValueError):
        pass

    def on_signal(signum, frame):
        run = app.lab.active
        if run is not None:
            run.control.stop(stop_reason(signum))  # the first stop's reason is the one recorded
        app.stop_and_join(5.0)
        if signum == signal.SIGTERM:
            # The terminal is still there: leave the alternate screen, show the cursor, stop mouse reports,
            # and put back the terminal modes it had before the app started.
            try:
                os.write(sys.__stderr__.fileno(), b"\x1b[?1000l\x1b[?1003l\x1b[?1006l\x1b[?25h\x1b[?1049l")
                if saved_tty is not None:
                    import termios

                    termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved_tty)
            except (OSError, ValueError):
                pass
        os._exit(128 + signum)

    with handlers_installed(dict.fromkeys(hangup_signals(), on_signal)):
        yield
