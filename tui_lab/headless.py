"""`tui-lab run`: train a configuration without the TUI.

Progress is a rich progress bar on a terminal and plain lines otherwise (logs, CI, `nohup`). SIGINT (Ctrl-C),
SIGTERM and SIGHUP ask the trainer to stop after the current step, so the run ends as `stopped` with its
summary written and the signal's reason in it (`"reason": "user" | "terminated" | "hangup"`); a second Ctrl-C
interrupts at once (`stopped`, reason `interrupted`). Before the run directory exists (importing torch) a
signal ends the process at once, as if nothing handled it; from the moment it exists, whatever the moment (the
data or the model being made), the run ends `stopped` with its directory finished (RunGuard). After a hang-up
the terminal is gone: what the run still prints goes to /dev/null instead of failing. Under `nohup` (SIGHUP
ignored) a hang-up is ignored, as asked.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from tui_lab.core import fmt
from tui_lab.core.config import LabConfig
from tui_lab.core.i18n import _, set_language
from tui_lab.core.run import EXIT_CODES, STOP_REASONS, Control, RunResult, Snapshot
from tui_lab.core.runlog import RunLog, default_run_dir
from tui_lab.signals import (
    SIGHUP,
    detach_from_terminal,
    handlers_installed,
    signals_held,
    stop_reason,
    stop_signals,
    terminal_fds,
)

if TYPE_CHECKING:
    from tui_lab.core.trainer import Trainer


def run_headless(name: str, cfg: LabConfig, out: Path | None = None, force: bool = False, lang: str = "en") -> int:
    control = Control()
    with stop_on_signals(control) as guard:  # until the run directory exists, a signal ends the process at once
        from tui_lab.core.trainer import Trainer, resolve_device  # torch: only once the arguments are good

        set_language(lang)  # the progress lines, the findings (written by the trainer) and the summary
        resolve_device(cfg.train.device)  # a missing GPU is bad input (exit 2), before anything is written
        with guard.arming():  # from the moment the directory exists, a signal stops the run and finishes it
            log = RunLog(Path(out) if out is not None else default_run_dir(name), force=force)
        progress = RichProgress(cfg.train.steps) if sys.stdout.isatty() else PlainProgress(sys.stdout)
        print(fmt.printable(f"tui-lab run {name} -> {log.dir}"), flush=True)  # names and paths: no escapes
        trainer = Trainer(cfg, control=control, sinks=[log, progress, guard], preset=name)
        with progress:
            result = guard.run(trainer, log)
        print_result(result, log.dir)  # a late Ctrl-C meanwhile changes nothing: the run is finished
    return 2 if result.user_error else EXIT_CODES.get(result.status, 1)  # a full disk is the user's to fix


@contextmanager
def stop_on_signals(control: Control) -> Iterator[RunGuard]:
    """SIGINT, SIGTERM and SIGHUP for the length of a headless run (RunGuard); put back as they were after."""
    guard = RunGuard(control)
    # Before arming: the signals' own action, which ends the process at once wherever it is (importing torch,
    # checking the device): there is nothing to finish yet, and a Python handler would wait for the import.
    with handlers_installed(dict.fromkeys(guard.signals, signal.SIG_DFL)):
        yield guard


class RunGuard:
    """What a signal does to a headless run once its run directory exists (`arming`): the first SIGINT, SIGTERM
    or SIGHUP stops it after the current step (or before the first, while it is being set up), with the
    signal's reason; a second Ctrl-C interrupts the step under way, once. Either way the run directory is
    finished: summary.json `stopped`, never `running` nor a false `completed`. Also the trainer's last sink, to
    know whether the run directory has been started and finished."""

    def __init__(self, control: Control):
        self.control = control
        self.signals = stop_signals()
        self.terminal = terminal_fds()
        self.interrupts = 0
        self.started = self.finished = False
        self._raising = self._raised = False  # a KeyboardInterrupt may be raised now / has been

    @contextmanager
    def arming(self) -> Iterator[None]:
        """Make the run directory in the block: the signals are held while it is made and the handlers are
        installed, so that one arriving then is neither lost nor able to leave a directory nobody finishes."""
        with signals_held(self.signals):
            yield
            for sig in self.signals:
                signal.signal(sig, self._on_int if sig == signal.SIGINT else self._on_term)

    def _on_int(self, signum, frame) -> None:
        self.interrupts += 1
        self.control.stop()
        if self.interrupts > 1 and self._raising and not self.finished and not self._raised:
            self._raised = True  # once: the interrupted run still has its summary to write
            raise KeyboardInterrupt

    def _on_term(self, signum, frame) -> None:
        self.control.stop(stop_reason(signum))
        if signum == SIGHUP:
            detach_from_terminal(self.terminal)

    def run(self, trainer: Trainer, log: RunLog) -> RunResult:
        """trainer.run(); a `stopped` run whatever moment a second Ctrl-C cut."""
        self._raising = True
        try:
            return trainer.run()
        except KeyboardInterrupt:  # it landed outside the trainer's own guard: the directory is finished here
            result = RunResult("stopped", trainer.steps_done, reason="interrupted")
            result.message = _(STOP_REASONS["interrupted"])
            try:
                if not self.started:
                    log.on_start(trainer.meta)
                if not self.finished:
                    log.on_finish(result)
            except OSError:
                pass  # a directory that cannot be written: nothing more can be saved
            return result
        finally:
            self._raising = False

    # The sink.
    def __call__(self, snapshot: Snapshot) -> None:
        pass

    def on_start(self, meta: object) -> None:
        self.started = True

    def on_finish(self, result: RunResult) -> None:
        self.finished = True


class PlainProgress:
    """One line per snapshot, at most one every `interval` seconds (plus the first and the last)."""

    def __init__(self, stream: TextIO, interval: float = 2.0):
        self.stream, self.interval = stream, interval
        self._last = 0.0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def __call__(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if snap.step == 0 or snap.step + 1 >= snap.total_steps or now - self._last >= self.interval:
            self._last = now
            print(fmt.metrics_line(snap), file=self.stream, flush=True)


class RichProgress:
    """A rich progress bar with the snapshot's numbers; refreshed by rich at 4 Hz."""

    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]" + _("step")),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            refresh_per_second=4,
            transient=False,
        )
        self.task = self.progress.add_task("train", total=total, stats="")

    def __enter__(self) -> RichProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, snap: Snapshot) -> None:
        stats = "  ".join([*fmt.metrics(snap), fmt.speed(snap)[0]])  # the bar's own column shows the ETA
        self.progress.update(self.task, completed=snap.step + 1, stats=stats)


def print_result(result: RunResult, run_dir: Path) -> None:
    line = _("{status}: {steps} steps in {seconds}s").format(
        status=_(result.status), steps=result.steps, seconds=f"{result.elapsed_s:.1f}"
    )
    if result.message and result.status != "completed":
        line += f" ({result.message})"
    final = result.final
    if final is not None and final.val_loss is not None:
        line += _("; val_loss {value}").format(value=fmt.num(final.val_loss))
        if final.val_acc is not None:
            line += _(", val_acc {value}").format(value=fmt.num(final.val_acc, 3))
    print(fmt.printable(line))  # messages and findings may quote files: no escape reaches the terminal
    for f in result.findings:
        if f.kind == "healthy":
            print(f"  ok  {fmt.printable(f.message)}")
            continue
        mark = {"error": "!!", "warn": " !", "info": " i"}.get(f.severity, "  ")
        print(f"  {mark} {fmt.printable(f.message)}")
        if f.remedy:
            print("     " + _("try: {remedy}").format(remedy=fmt.printable(f.remedy)))
    print(_("run directory: {path}").format(path=fmt.printable(run_dir)))
