"""Findings: the engine's diagnosis in plain words, with the remedy to try."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

ICON = {"error": ("✖ ", "bold red"), "warn": ("▲ ", "bold yellow"), "info": ("• ", "cyan")}


class FindingsPanel(VerticalScroll):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key: Any = object()

    def compose(self):
        yield Static("", id="findings-text")

    def set_data(self, key: Any, findings: list[Any], result: Any = None, note: str = "", run_dir: str = "") -> None:
        if key == self._key:
            return
        self._key = key
        text = Text()
        if result is not None and result.status in ("diverged", "failed"):
            text.append(f"run {result.status}: ", "bold red")
            text.append((result.message or "") + "\n")
        elif result is not None:
            text.append(f"run {result.status}", "bold")
            text.append(f" after {result.steps} steps\n")
        if not findings:
            text.append(note or "nothing to report yet", "dim")
        for f in findings:
            icon, style = ICON.get(f.severity, ("• ", ""))
            text.append(icon, style)
            text.append(f.message + "\n")
            if f.remedy:
                text.append("  → ", "green")
                text.append(f.remedy + "\n")
        if run_dir:
            text.append("\nrun directory: ", "dim")
            text.append(run_dir, "dim italic")
        self.query_one("#findings-text", Static).update(text)
