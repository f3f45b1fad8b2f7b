"""The real app in a pseudo-terminal whose window changes size: whatever the order of the resizes, each size
gets the screen a fresh start at that size gets (the layout never lags one resize behind)."""

from __future__ import annotations

import sys
import time

import pytest

from support import PtyProcess, term_env

pyte = pytest.importorskip("pyte")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

ARGV = [sys.executable, "-m", "tui_lab", "--preset", "deep-sigmoid"]


class Terminal:
    """A pty with a terminal emulator on its other end, resized the way a window is."""

    def __init__(self, cols: int, rows: int, env: dict[str, str]) -> None:
        self.app = PtyProcess(ARGV, cols=cols, rows=rows, env=env)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.fed = 0

    def settle(self, quiet: float = 0.6, timeout: float = 30.0) -> list[str]:
        """Read until the app has written nothing for `quiet` seconds; the rows on screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.app.drain(quiet) == 0 and self.app.total:
                break
        self.stream.feed(bytes(self.app.buffer[self.fed :]))
        self.fed = len(self.app.buffer)
        return [row.rstrip() for row in self.screen.display]

    def resize(self, cols: int, rows: int) -> list[str]:
        self.settle(0.2)
        self.screen.resize(rows, cols)
        self.app.resize(cols, rows)
        return self.settle()

    def close(self) -> None:
        self.app.close()


def layout(rows: list[str]) -> list[str]:
    """What a layout is made of: where the panels' borders and titles are (the numbers may differ)."""
    return [row for row in rows if "╭" in row or "╰" in row or "Config" in row] + rows[-1:]  # and the footer


@pytest.mark.slow
def test_a_resize_in_any_order_gives_the_screen_of_a_fresh_start(tmp_path):
    env = term_env({"TUI_LAB_RUNS": str(tmp_path)})
    sizes = [(80, 24), (160, 48), (120, 36), (80, 24), (120, 36)]
    fresh = {}
    for cols, rows in set(sizes):
        term = Terminal(cols, rows, env)
        try:
            fresh[cols, rows] = layout(term.settle(quiet=1.0))
        finally:
            term.close()
    term = Terminal(120, 36, env)
    try:
        term.settle(quiet=1.0)
        for cols, rows in sizes:
            shown = layout(term.resize(cols, rows))
            assert shown == fresh[cols, rows], f"after a resize to {cols}x{rows} the layout differs from a fresh start"
    finally:
        term.close()


@pytest.mark.slow
def test_the_real_app_in_portuguese_shows_no_english_ui_words(tmp_path):
    """`tui-lab --lang pt` in a real pty, as a terminal shows it: the idle screen, then a run in every view."""
    from test_i18n import english_left

    env = term_env({"TUI_LAB_RUNS": str(tmp_path)})
    term = Terminal.__new__(Terminal)
    term.app = PtyProcess([*ARGV[:3], "--lang", "pt", *ARGV[3:], "--set", "train.steps=100000"], 120, 36, env=env)
    term.screen = pyte.Screen(120, 36)
    term.stream = pyte.ByteStream(term.screen)
    term.fed = 0
    try:
        seen = {"idle": term.settle(quiet=1.0)}
        term.app.write(b"r")
        for view in "12345":
            term.app.write(view.encode())
            seen[f"view {view}"] = term.settle(quiet=1.0, timeout=5.0)
        term.app.write(b"x")
        # a run's own words (paths, config keys) are not the UI's: only the status, the tabs, titles and footer
        left = {where: english_left(rows) for where, rows in seen.items()}
        assert not any(left.values()), left
        assert any("Gradientes" in row for row in seen["view 2"])  # and it is Portuguese, not blank
    finally:
        term.close()
