"""`tui-lab run`: train a configuration without the TUI.

Progress is a rich progress bar on a terminal and plain lines otherwise (logs, CI, `nohup`). SIGINT (Ctrl-C),
SIGTERM and SIGHUP ask the trainer to stop after the current step, so the run ends as `stopped` with its
summary written; a second Ctrl-C interrupts at once (the trainer still records `stopped`).
"""

from __future__ import annotations

import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tui_lab.core.config import LabConfig
from tui_lab.core.runlog import RunLog, default_run_dir
from tui_lab.signals import HANGUP_SIGNALS, handlers_installed

STATUS_EXIT = {"completed": 0, "diverged": 0, "stopped": 0, "failed": 1}


def run_headless(name: str, cfg: LabConfig, out: Path | None = None, force: bool = False, lang: str = "en") -> int:
    from tui_lab.core.trainer import Control, Trainer, resolve_device

    resolve_device(cfg.train.device)  # a missing GPU is bad input (exit 2), before anything is written
    run_dir = Path(out) if out is not None else default_run_dir(name)
    log = RunLog(run_dir, force=force)
    control = Control()
    progress = _progress_for(sys.stdout, cfg.train.steps)
    print(f"tui-lab run {name} -> {log.dir}", flush=True)
    with _stop_on_signals(control):
        with progress:
            result = Trainer(cfg, control=control, sinks=[log, progress], preset=name).run()
    _print_result(result, log.dir)
    return STATUS_EXIT.get(result.status, 1)


@contextmanager
def _stop_on_signals(control: Any):
    """SIGINT/SIGTERM/SIGHUP -> control.stop(); a second SIGINT raises KeyboardInterrupt."""
    hits = {"int": 0}

    def on_int(signum, frame):  # noqa: ARG001
        hits["int"] += 1
        control.stop()
        if hits["int"] > 1:
            raise KeyboardInterrupt

    def on_term(signum, frame):  # noqa: ARG001
        control.stop()

    with handlers_installed({signal.SIGINT: on_int, **{sig: on_term for sig in HANGUP_SIGNALS}}):
        yield


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def _rate(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def progress_line(snap: Any) -> str:
    parts = [f"step {snap.step + 1}/{snap.total_steps}", f"loss {_fmt(snap.loss)}"]
    if snap.acc is not None:
        parts.append(f"acc {snap.acc:.3f}")
    if snap.val_loss is not None:
        parts.append(f"val_loss {_fmt(snap.val_loss)}")
    if snap.val_acc is not None:
        parts.append(f"val_acc {snap.val_acc:.3f}")
    parts += [f"{_rate(snap.samples_per_s)} samples/s", f"ETA {_fmt_eta(snap.eta_s)}"]
    return "  ".join(parts)


class PlainProgress:
    """One line per snapshot, at most one every `interval` seconds (plus the first and the last)."""

    def __init__(self, stream, total: int, interval: float = 2.0):
        self.stream, self.total, self.interval = stream, total, interval
        self._last = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, snap: Any) -> None:
        now = time.monotonic()
        if snap.step == 0 or snap.step + 1 >= snap.total_steps or now - self._last >= self.interval:
            self._last = now
            print(progress_line(snap), file=self.stream, flush=True)


class RichProgress:
    """A rich progress bar with loss, accuracy, samples/s and the ETA; refreshed by rich at 4 Hz."""

    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(), refresh_per_second=4, transient=False,
        )  # fmt: skip
        self.task = self.progress.add_task("train", total=total, stats="")

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, snap: Any) -> None:
        stats = f"loss {_fmt(snap.loss)}"
        if snap.acc is not None:
            stats += f"  acc {snap.acc:.3f}"
        if snap.val_acc is not None:
            stats += f"  val {snap.val_acc:.3f}"
        stats += f"  {_rate(snap.samples_per_s)} samples/s"
        self.progress.update(self.task, completed=snap.step + 1, stats=stats)


def _progress_for(stream, total: int):
    return RichProgress(total) if stream.isatty() else PlainProgress(stream, total)


def _print_result(result: Any, run_dir: Path) -> None:
    final = result.last_finite or result.last
    line = f"{result.status}: {result.steps} steps in {result.elapsed_s:.1f}s"
    if result.message and result.status != "completed":
        line += f" ({result.message})"
    if final is not None:
        if final.val_loss is not None:
            line += f"; val_loss {final.val_loss:.4f}"
        if final.val_acc is not None:
            line += f", val_acc {final.val_acc:.3f}"
    print(line)
    for f in result.findings:
        if f.kind == "healthy":
            print(f"  ok  {f.message}")
            continue
        mark = {"error": "!!", "warn": " !", "info": " i"}.get(f.severity, "  ")
        print(f"  {mark} {f.message}")
        if f.remedy:
            print(f"     try: {f.remedy}")
    print(f"run directory: {run_dir}")
