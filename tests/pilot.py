"""Helpers for driving the app with Textual's Pilot, shared by the UI test modules."""

from __future__ import annotations

import asyncio
import functools
import time

from tui_lab.ui.app import LabApp
from tui_lab.ui.components.config_panel import ConfigPanel


def aio(fn):
    """Run an async test with asyncio.run: Textual's run_test needs no more, so no async pytest plugin."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def wait_for(pilot, cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


async def panel_ready(pilot, app: LabApp) -> None:
    """The config rows mount just after the first frame; wait for them before touching fields."""
    await wait_for(pilot, lambda: app.query_one(ConfigPanel).ready, timeout=10)


def snapshots(app: LabApp) -> int:
    return app.lab.run.bridge.snapshots if app.lab.run else 0


def shown_text(app: LabApp, selector: str) -> str:
    """What a text panel draws, as plain text."""
    return str(app.query_one(selector).body.render())


def status_text(app: LabApp) -> str:
    return str(app.query_one("#status").content)


def screen_lines(app: LabApp) -> list[str]:
    """The whole screen as plain text rows, exactly as the terminal would show it."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def on_screen(app: LabApp, selector: str) -> str:
    """What a panel shows on screen, border and title included, as plain text; '' when it is not shown."""
    widget = app.query_one(selector)
    region = widget.region
    if not widget.display or not region.area:
        return ""
    rows = screen_lines(app)[region.y : region.bottom]
    return "\n".join(row[region.x : region.right] for row in rows)
