"""`tui-lab run`: train a configuration without the TUI.

Progress is a rich progress bar on a terminal and plain lines otherwise (logs, CI, `nohup`). SIGINT (Ctrl-C),
SIGTERM and SIGHUP ask the trainer to stop after the current step, so the run ends as `stopped` with its
summary written and the signal's reason in it (`"reason": "user" | "terminated" | "hangup"`); a second Ctrl-C
interrupts at once (`stopped`, reason `interrupted`). After a hang-up the terminal is gone: what the run still
prints goes to /dev/null instead of failing. Under `nohup` (SIGHUP ignored) a hang-up is ignored, as asked.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from tui_lab.core import fmt
from tui_lab.core.config import LabConfig
from tui_lab.core.i18n import _, set_language
from tui_lab.core.run import EXIT_CODES, Control, RunResult, Snapshot
from tui_lab.core.runlog import RunLog, default_run_dir
from tui_lab.signals import SIGHUP, detach_from_terminal, handlers_installed, hangup_signals, stop_reason, terminal_fds


def run_headless(name: str, cfg: LabConfig, out: Path | None = None, force: bool = False, lang: str = "en") -> int:
    from tui_lab.core.trainer import Trainer, resolve_device  # torch: only once the arguments are good

    set_language(lang)  # the progress lines, the findings (written by the trainer) and the summary
    resolve_device(cfg.train.device)  # a missing GPU is bad input (exit 2), before anything is written
    log = RunLog(Path(out) if out is not None else default_run_dir(name), force=force)
    control = Control()
    progress = RichProgress(cfg.train.steps) if sys.stdout.isatty() else PlainProgress(sys.stdout)
    print(f"tui-lab run {name} -> {log.dir}", flush=True)
    with stop_on_signals(control), progress:
        result = Trainer(cfg, control=control, sinks=[log, progress], preset=name).run()
    print_result(result, log.dir)
    return EXIT_CODES.get(result.status, 1)


@contextmanager
def stop_on_signals(control: Control) -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP -> control.stop(reason); a second SIGINT raises KeyboardInterrupt."""
    interrupts = 0
    terminal = terminal_fds()

    def on_int(signum, frame):
        nonlocal interrupts
        interrupts += 1
        control.stop()
        if interrupts > 1:
            raise KeyboardInterrupt

    def on_term(signum, frame):
        control.stop(stop_reason(signum))
        if signum == SIGHUP:
            detach_from_terminal(terminal)

    with handlers_installed({signal.SIGINT: on_int, **dict.fromkeys(hangup_signals(), on_term)}):
        yield


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
    print(line)
    for f in result.findings:
        if f.kind == "healthy":
            print(f"  ok  {f.message}")
            continue
        mark = {"error": "!!", "warn": " !", "info": " i"}.get(f.severity, "  ")
        print(f"  {mark} {f.message}")
        if f.remedy:
            print("     " + _("try: {remedy}").format(remedy=f.remedy))
    print(_("run directory: {path}").format(path=run_dir))
