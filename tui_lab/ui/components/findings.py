"""Findings: the engine's diagnosis in plain words, with the remedy to try."""

from __future__ import annotations

from collections.abc import Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui_lab.ui import palette
from tui_lab.ui.components.panel import Panel
from tui_lab.ui.frame import Frame

# One meaning per colour (ui/palette.py): red an error, yellow a warning, green healthy, cyan a plain note.
ICON = {
    "error": ("✖ ", palette.style(palette.ALARM, "bold")),
    "warn": ("▲ ", palette.style(palette.CAUTION, "bold")),
    "info": ("• ", palette.style(palette.ACCENT)),
    "healthy": ("✓ ", palette.style(palette.HEALTHY, "bold")),
}


class FindingsPanel(Panel, VerticalScroll):
    BORDER_TITLE = "Findings"
    EMPTY = "nothing to report yet"

    def compose(self) -> ComposeResult:
        self.body = Static("", id="findings-text")
        yield self.body

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.scrubbed, frame.run_dir

    def draw(self, frame: Frame) -> None:
        text = Text()
        result = frame.view.result if frame.view is not None else None
        said = any(f.kind == "nonfinite" for f in frame.findings)  # the finding says where: not twice
        if result is not None and result.status in ("diverged", "failed") and frame.scrubbed is None:
            text.append(f"run {result.status}" + ("\n" if said else ": "), palette.style(palette.ALARM, "bold"))
            if not said:
                text.append((result.message or "") + "\n")
        elif result is not None and frame.scrubbed is None:
            text.append(f"run {result.status}", "bold")
            text.append(f" after {result.steps} steps\n")
        if not frame.findings:
            text.append(self.EMPTY, "dim")
        for f in frame.findings:
            icon, style = ICON.get("healthy" if f.kind == "healthy" else f.severity, ("• ", ""))
            text.append(icon, style)
            text.append(f.message + "\n")
            if f.remedy:
                text.append("  → ", palette.style(palette.ACCENT, "bold"))
                text.append(f.remedy + "\n")
        if frame.run_dir:
            text.append("\nrun directory: ", "dim")
            text.append(frame.run_dir, "dim italic")
        self.body.update(text)
