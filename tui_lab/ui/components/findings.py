"""Findings: the engine's diagnosis in plain words, with the remedy to try."""

from __future__ import annotations

from collections.abc import Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui_lab.core.fmt import printable
from tui_lab.core.i18n import N_, _, ngettext
from tui_lab.ui import glyphs, palette
from tui_lab.ui.components.panel import Panel
from tui_lab.ui.frame import Frame


def icon(kind: str) -> tuple[str, str]:
    """A finding's mark and colour. One meaning per colour (ui/palette.py): red an error, yellow a warning,
    green healthy, cyan a plain note; the mark says the same without colour (ASCII: X, !, *, +)."""
    G = glyphs.G
    return {
        "error": (G.error + " ", palette.style(palette.ALARM, "bold")),
        "warn": (G.warn + " ", palette.style(palette.CAUTION, "bold")),
        "info": (G.info + " ", palette.style(palette.ACCENT)),
        "healthy": (G.ok + " ", palette.style(palette.HEALTHY, "bold")),
    }.get(kind, (G.info + " ", ""))


class FindingsPanel(Panel, VerticalScroll):
    BORDER_TITLE = N_("Findings")
    EMPTY = N_("nothing to report yet")

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
            run = _("run {status}").format(status=_(result.status))
            text.append(run + ("\n" if said else ": "), palette.style(palette.ALARM, "bold"))
            if not said:
                text.append(printable(result.message or "", multiline=True) + "\n")
        elif result is not None and frame.scrubbed is None:
            text.append(_("run {status}").format(status=_(result.status)), "bold")
            text.append(_(" after {steps} steps").format(steps=result.steps) + "\n")
        if not frame.findings:
            text.append(_(self.EMPTY), "dim")
        for f in frame.findings:
            mark, style = icon("healthy" if f.kind == "healthy" else f.severity)
            text.append(mark, style)
            text.append(printable(f.message, multiline=True) + "\n")  # a recorded run's may come from its files
            if f.remedy:
                text.append(f"  {glyphs.G.arrow} ", palette.style(palette.ACCENT, "bold"))
                text.append(printable(f.remedy, multiline=True) + "\n")
        if frame.run_dir:
            text.append("\n" + _("run directory:") + " ", "dim")
            text.append(printable(frame.run_dir), "dim italic")
        self.body.update(glyphs.rich(text))
        self.call_after_refresh(self.mark_overflow)

    def mark_overflow(self) -> None:
        """A panel too short for every finding says so on its border (f focuses it, ↑/↓ scroll): at 80x24 a
        second finding must not just vanish below the edge."""
        more = self.max_scroll_y - round(self.scroll_y)
        said = ngettext("↓ {lines} more line: f, ↑/↓", "↓ {lines} more lines: f, ↑/↓", more)
        wanted = glyphs.text(said.format(lines=more)) if more > 0 else ""
        if self.border_subtitle != wanted:
            self.border_subtitle = wanted

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.mark_overflow()

    def on_resize(self) -> None:
        self.call_after_refresh(self.mark_overflow)

    def watch_virtual_size(self) -> None:
        # The findings' height is known only once they are laid out, which may be after the refresh that
        # update() asked for (a busy app): the border follows the layout, not the update.
        self.call_after_refresh(self.mark_overflow)
