"""Signal handlers installed for the length of a run (headless or in the TUI), then put back, and what a signal
means for the run it stops (core/run.py STOP_REASONS: a hang-up is recorded as a hang-up)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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
