"""Signal handlers installed for the length of a run (headless or in the TUI), then put back."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

# What a terminal going away (SIGHUP: the SSH connection dropped) or a polite kill sends.
HANGUP_SIGNALS: tuple[int, ...] = (signal.SIGTERM,) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


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
