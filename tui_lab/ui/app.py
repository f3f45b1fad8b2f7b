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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from tui_lab.core.config import LabConfig
from tui_lab.core.errors import UserError
from tui_lab.core.run import PACES
from tui_lab.ui import commands
from tui_lab.ui.baseline import from_run_dir, from_view
from tui_lab.ui.components.config_panel import ConfigPanel
from tui_lab.ui.main_screen import POLL_S, VIEW_KEYS, LabScreen
from tui_lab.ui.runs import LiveRun, RecordedRun, Run
from tui_lab.ui.state import LabState

PREWARM_AFTER_S = 0.3  # torch loads once the first frame is up


class LabApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "tui-lab"
    AUTO_FOCUS = None  # keys go to the app until the user tabs (or presses e) into the config panel
    BINDINGS = commands.BINDINGS

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
        self.lang = lang
        self.open_picker = open_picker  # plain `tui-lab`: start in the preset picker
        self.lab = LabState(cfg or LabConfig(), preset_name or "custom")
        if show_dir is not None:
            run = RecordedRun(Path(show_dir))
            self.lab.cfg, self.lab.preset, self.lab.run = run.cfg, run.name, run
        self.main = LabScreen(self.lab, poll_s)
        screen = self.lab.cfg.screen  # where the lesson looks, and at what pace
        self.lab.pace, self.lab.want_layer = screen.pace, screen.layer
        if screen.view != "auto" and screen.view in VIEW_KEYS:
            self.main.view_index = VIEW_KEYS.index(screen.view)

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        if not self.lab.read_only:
            self.set_timer(PREWARM_AFTER_S, self._prewarm)
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
            self.lab.message = "invalid config: " + "; ".join(panel.problems)
            self.notify("cannot start: " + "\n".join(panel.problems), severity="error", title="invalid config")
            self._changed()
            return False
        try:
            run = LiveRun.create(cfg, self.lab.name_for(cfg), self.lab.hist_layer, step=step)
            run.control.pace = PACES[self.lab.pace]
        except (UserError, OSError) as exc:
            self.notify(f"cannot write the run directory: {exc}", severity="error")
            return False
        previous = self.lab.replace_run(run)
        self.lab.message = ""
        self.main.arrange_panels()
        self._train(run, previous)
        self._changed()
        return True

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def _train(self, run: LiveRun, previous: Run | None) -> None:
        run.train(previous)

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def _extend(self, run: LiveRun, more: int) -> None:
        run.extend(more)

    def show_run(self, run: Run) -> None:
        """Put a run on screen that is already made: a replay of fixed snapshots (tests, demos), say."""
        self.lab.replace_run(run)
        self.main.arrange_panels()
        self._changed()

    def stop_and_join(self, timeout: float = 1.0) -> bool:
        """Stop the run on screen and wait for its run directory to be complete; True when it was in time."""
        return self.lab.run.join(timeout) if self.lab.run is not None else True

    # -- actions ------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A recorded run is read-only: its run keys are hidden, and the scrub keys only show for it."""
        needs = commands.NEEDS.get(action, "")
        if needs == "writable":
            return not self.lab.read_only
        if needs == "scrub":
            return self.lab.run is not None and self.lab.run.can_scrub
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for command in commands.PALETTE:
            yield SystemCommand(command.title, command.help, partial(self.run_action, command.action))

    def action_run(self) -> None:
        run = self.lab.active
        if run is None:
            self.start_run()
        elif run.control.paused:
            run.control.resume()
        else:
            self.notify("already running: p pauses, x stops, n starts a new run")
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
        if self.lab.active is not None:
            self.lab.active.stop()

    def action_pace(self, delta: int) -> None:
        """Slower or faster: slow (2 snapshots a second), normal (8), max (as fast as it trains)."""
        names = list(PACES)
        self.lab.pace = names[min(max(names.index(self.lab.pace) + delta, 0), len(names) - 1)]
        if self.lab.active is not None:
            self.lab.active.control.set_pace(PACES[self.lab.pace])
        self._changed()

    def action_extend(self) -> None:
        """A finished run goes on for as many steps again, in the same run directory."""
        run = self.lab.run
        if not isinstance(run, LiveRun) or not run.can_extend:
            why = "still running" if self.lab.active is not None else "only a completed or stopped run of this session"
            self.notify(f"cannot go on: {why}", severity="warning")
            return
        more = run.first_steps
        run.scrub_to(-1)
        self._extend(run, more)
        self.notify(f"going on for {more} more steps (c adds more once it ends)")
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
        self.notify(f"{event.key} = {event.value:g} from the next step (recorded in the run directory)")

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
            self.notify(f"loaded preset {name}: press r to run", title=cfg.title_for(self.lang) or name)

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
            self.main.show_view(VIEW_KEYS.index(cfg.screen.view))
        self.main.arrange_panels()
        self._changed()

    def action_lesson(self) -> None:
        from tui_lab.ui.screens import LessonScreen

        cfg = self.main.config_panel.base
        title = cfg.title_for(self.lang) or self.lab.preset
        self.push_screen(LessonScreen(f"{self.lab.preset}: {title}", cfg.lesson_for(self.lang).strip()))

    def action_pin(self) -> None:
        view = self.lab.view()
        run = self.lab.run
        if run is None or view is None or not view.history:
            self.notify("nothing to pin yet: run first (r)", severity="warning")
            return
        self.lab.baseline = from_view(run.cfg, self.lab.preset, view, str(run.run_dir or ""))
        self.notify("pinned as the baseline: edit the config and press n to compare (B clears)")
        self._changed()

    def action_unpin(self) -> None:
        if self.lab.baseline is not None:
            self.lab.baseline = None
            self.notify("baseline cleared")
            self._changed()

    def action_pick_baseline(self) -> None:
        from tui_lab.core.runlog import runs_root
        from tui_lab.ui.screens import RunPicker

        self.push_screen(RunPicker(runs_root()), lambda path: path is not None and self.pin_run_dir(path))

    def pin_run_dir(self, path: Path) -> None:
        try:
            self.lab.baseline = from_run_dir(path)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"baseline: {path.name}")
        self._changed()

    def action_loss_scale(self) -> None:
        """The loss axis: auto (log when the loss spans 3 decades or more) → log → linear (from 0)."""
        order = ["auto", "log", "linear"]
        self.lab.loss_scale = order[(order.index(self.lab.loss_scale) + 1) % len(order)]
        self._changed()

    def action_next_view(self) -> None:
        self.main.show_view(self.main.view_index + 1)

    def action_view(self, index: int) -> None:
        self.main.show_view(index)

    def action_edit(self) -> None:
        if not self.main.wide:
            self.main.show_view(0)
        self.call_after_refresh(self.main.config_panel.focus_first)

    def action_leave_input(self) -> None:
        if self.focused is not None:
            self.set_focus(None)

    def action_hist_layer(self, delta: int) -> None:
        view = self.lab.view()
        layers = view.meta.layers if view is not None else []
        if not layers:
            return
        self.lab.hist_layer = (self.lab.hist_layer + delta) % len(layers)
        if self.lab.active is not None:
            self.lab.active.control.histogram_layer = self.lab.hist_layer
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


def run_app(
    preset_name: str | None = None, cfg: LabConfig | None = None, lang: str = "en", show_dir: Path | None = None
) -> int:
    """Open the TUI (the CLI calls exactly this). Returns the exit code."""
    bare = preset_name is None and cfg is None and show_dir is None
    app = LabApp(preset_name=preset_name, cfg=cfg, lang=lang, show_dir=show_dir, open_picker=bare)
    try:
        with _finish_run_on_hangup(app):
            code = app.run()
    finally:
        app.stop_and_join(1.0)
    return code if isinstance(code, int) else 0


@contextmanager
def _finish_run_on_hangup(app: LabApp) -> Iterator[None]:
    """While the TUI is up, SIGHUP (the SSH connection dropped) or SIGTERM stops the run, waits for its run
    directory to be complete (summary: stopped), then leaves. The terminal may be gone, so nothing is drawn:
    the process exits at once with the conventional 128 + signal number."""
    import signal

    from tui_lab.signals import HANGUP_SIGNALS, handlers_installed

    saved_tty = None
    try:
        import termios

        saved_tty = termios.tcgetattr(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (ImportError, OSError, ValueError):
        pass

    def on_signal(signum, frame):
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

    with handlers_installed(dict.fromkeys(HANGUP_SIGNALS, on_signal)):
        yield
