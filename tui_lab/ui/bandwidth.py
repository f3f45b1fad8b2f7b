"""What the app writes to the terminal, counted: the panels repaint no faster than a byte budget allows.

A repaint of two braille plots in colour is ~30 KB; at the panels' full rate (twice a second) a 120x36 screen
would send 50-60 KB/s, more than a slow SSH link or a tmux pane over one carries. The screen asks `interval`
how long to wait before the next panel repaint: the bytes written since the last one over the budget, so the
rate stays under it whatever the view (one plot or four, colour or not), and a cheap view keeps the full rate.
"""

from __future__ import annotations

import os
from typing import Any

BUDGET_BYTES_PER_S = 16 * 1024  # under the 20 KB/s target with room for the status line and the footer


def budget() -> float:
    """The byte budget: TUI_LAB_BANDWIDTH (KB/s) for a slow link or a fast one, else BUDGET_BYTES_PER_S;
    0 = no limit (the panels repaint at their full rate)."""
    raw = os.environ.get("TUI_LAB_BANDWIDTH", "")
    try:
        return max(0.0, float(raw)) * 1024 if raw else BUDGET_BYTES_PER_S
    except ValueError:
        return BUDGET_BYTES_PER_S


class TerminalMeter:
    def __init__(self) -> None:
        self.written = 0  # bytes sent to the terminal so far
        self._mark = 0
        self.budget = budget()

    def install(self, app: Any) -> None:
        """Count what the app's driver writes (Textual has no hook for it: wrap the driver's write)."""
        driver = getattr(app, "_driver", None)
        if driver is None or getattr(driver, "_tui_lab_metered", False):
            return
        write = driver.write

        def counted(data: str) -> None:
            self.written += len(data.encode("utf-8", "replace"))
            write(data)

        driver.write = counted
        driver._tui_lab_metered = True

    def interval(self, floor: float) -> float:
        """Seconds until the next panel repaint: at least `floor`, and long enough that the bytes written since
        the last repaint (the repaint itself and the status line's updates) fit the budget."""
        if self.budget <= 0:
            return floor
        return max(floor, (self.written - self._mark) / self.budget)

    def repainted(self) -> None:
        """The panels were just handed a new frame: count from here."""
        self._mark = self.written
