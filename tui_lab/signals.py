"""Signal handlers installed for the length of a run (headless or in the TUI), then put back, and what a signal
means for the run it stops (core/run.py STOP_REASONS: a hang-up is recorded as a hang-up)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# What a terminal going away (SIGHUP: the SSH connection dropped) or a polite kill sends.
HANGUP_SIGNALS: tuple[int, ...] = (signal.SIGTERM,) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())
SIGHUP: int | None = getattr(signal, "SIGHUP", None)


def stop_reason(signum: int) -> str:
    """The STOP_REASONS key of a run stopped by this signal: hangup (SIGHUP), terminated (SIGTERM), else user."""
    if SIGHUP is not None and signum == SIGHUP:
        return "hangup"
    return "terminated" if signum == signal.SIGTERM else "user"


def hangup_signals() -> tuple[int, ...]:
    """HANGUP_SIGNALS less those this process was started ignoring: under `nohup` SIGHUP is ignored so that the
    run outlives the terminal, and it stays ignored."""
    return tuple(sig for sig in HANGUP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN)


def terminal_fds() -> tuple[int, ...]:
    """Which of stdout and stderr are a terminal (asked before it can hang up)."""
    found = []
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                found.append(fd)
        except OSError:
            pass
    return tuple(found)


def detach_from_terminal(fds: tuple[int, ...]) -> None:
    """After a hang-up every write to the terminal fails (EIO): point these descriptors (terminal_fds) at
    /dev/null, so the run still finishes its run directory, and what it prints on the way out goes nowhere."""
    if not fds:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


@contextmanager
def signals_held(signals: tuple[int, ...]) -> Iterator[None]:
    """Hold `signals` for the block (delivered, not lost, when it ends): a step that must not be cut in two, such
    as making a run directory and arming the handlers that will finish it. POSIX only; elsewhere a no-op."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None or not signals:
        yield
        return
    previous = mask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


def stop_signals() -> tuple[int, ...]:
    """What ends a run: SIGINT, SIGTERM and SIGHUP, less those this process was started ignoring (nohup)."""
    return (signal.SIGINT, *hangup_signals())


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send `sig` to this process when its parent (the thread that forked it) ends,
    whatever ends it, SIGKILL included (prctl PR_SET_PDEATHSIG). True when that is set; elsewhere False, and
    the caller relies on watch_parent."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(alive: Any, on_gone: Callable[[], None], parent_pid: int | None = None) -> threading.Thread:
    """The portable way to notice a parent gone: `alive` is the read end of a pipe whose write end only the
    parent holds (a multiprocessing Connection), so it reaches EOF when the parent ends, however it ends; a
    daemon thread waits for that and calls `on_gone` once. `parent_pid`, when given, is also polled: a parent
    that is gone before the pipe could say so (or a platform that cannot pass it) is still noticed."""

    def gone() -> bool:
        if parent_pid is not None and not _alive(parent_pid):
            return True
        try:
            if alive is not None and alive.poll(0.5):
                alive.recv()  # data is never sent: only EOF (or an error) wakes this
        except (EOFError, OSError):
            return True
        except Exception:  # noqa: BLE001 - anything else read from it: the parent did not mean it, go on watching
            return False
        if alive is None:
            time.sleep(0.5)
        return False

    def watch() -> None:
        while not gone():
            pass
        on_gone()

    thread = threading.Thread(target=watch, name="tui-lab-parent-watch", daemon=True)
    thread.start()
    return thread


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's process reusing the number is unlikely, and harmless)
        return True
    return True


def finish_abandoned_run(run_dir: str | Path, reason: str = "user", status: str = "stopped", message: str = "") -> bool:
    """A run directory whose trainer ended without finishing it (a worker killed, an interrupt at the worst
    moment): summary.json says `status` (`stopped`, with `reason`, a key of core/run.py STOP_REASONS, or
    `failed` with `message`) and the steps its metrics reached, so that no run is left `running` or without a
    summary. A directory that holds a finished run, or that was never made, is left alone. True when it wrote."""
    from tui_lab.core.i18n import _
    from tui_lab.core.run import STOP_REASONS
    from tui_lab.core.runlog import atomic_write, read_summary, strict

    path = Path(run_dir)
    if not path.is_dir():
        return False
    summary = read_summary(path)
    if not isinstance(summary, dict):
        summary = {}
    if summary.get("status") in ("completed", "diverged", "stopped", "failed"):
        return False
    last = _last_step(path / "metrics.jsonl")
    steps = summary.get("steps")
    steps = steps if isinstance(steps, int) and not isinstance(steps, bool) else 0
    summary.update(status=status, steps=max(steps, last + 1 if last is not None else 0))
    if status == "stopped":
        summary.update(reason=reason, message=_(STOP_REASONS.get(reason, STOP_REASONS["user"])))
    else:
        summary["message"] = message
    try:
        atomic_write(path / "summary.json", json.dumps(strict(summary), allow_nan=False, indent=2) + "\n")
    except OSError:
        return False
    return True


def _last_step(metrics: Path, tail: int = 1 << 16) -> int | None:
    """The step of the last whole line of a metrics file (read from its end: the file may be large)."""
    try:
        with open(metrics, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - tail))
            data = f.read()
    except OSError:
        return None
    for line in reversed(data[: data.rfind(b"\n") + 1].splitlines()):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return step
    return None


@contextmanager
def handlers_installed(handlers: Mapping[int, Callable[[int, Any], Any]]) -> Iterator[None]:
    """Install `handlers` for the block; a signal that cannot be set here (not the main thread) is left alone."""
    previous = []
    for sig, handler in handlers.items():
        try:
            previous.append((sig, signal.signal(sig, handler)))
        except ValueError:
            pass
    try:
        yield
    finally:
        for sig, handler in previous:
            signal.signal(sig, handler)
