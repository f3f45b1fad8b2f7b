"""The base of every panel on the main screen, and the two bodies panels draw into.

A panel owns its title (BORDER_TITLE), its subtitle and what it shows when there is nothing to draw. The
screen hands each panel every Frame; `show` asks the panel for its `key` (the part of the frame it draws)
and redraws only when that changed, so an idle screen writes nothing to the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from rich.text import Text
from textual.widget import Widget
from textual_plotext import PlotextPlot

from tui_lab.ui.frame import Frame

_UNSET: Any = object()


class Panel:
    """Mixed into a Textual container: `class LossPanel(Panel, Vertical)`."""

    BORDER_TITLE: ClassVar[str] = ""
    BORDER_SUBTITLE: ClassVar[str] = ""
    DEFAULT_CLASSES = "panel"
    frame: Frame | None = None
    _key: Any = _UNSET
    border_subtitle: str  # provided by the widget

    def show(self, frame: Frame) -> bool:
        """Take the frame; redraw (and say so) when the part this panel draws changed."""
        key = self.key(frame)
        if key == self._key:
            return False
        self._key, self.frame = key, frame
        subtitle = self.subtitle(frame)
        if self.border_subtitle != subtitle:  # each assignment repaints the whole border
            self.border_subtitle = subtitle
        self.draw(frame)
        return True

    def key(self, frame: Frame) -> Hashable:
        """What this panel draws from the frame (compared with ==; Views and Baselines by identity)."""
        return frame.view, frame.scrubbed

    def subtitle(self, frame: Frame) -> str:
        return self.BORDER_SUBTITLE

    def draw(self, frame: Frame) -> None:
        raise NotImplementedError


class TextBody(Widget):
    """Rich text made at render time for the widget's width; its height follows its lines."""

    DEFAULT_CSS = "TextBody { height: auto; }"

    def __init__(self, make: Callable[[int], Text], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.make = make
        self._rows: Hashable = None

    def redraw(self, rows: Hashable) -> None:
        """Draw again; `rows` names the shape (a layout pass, costly, only when it changes)."""
        self.refresh(layout=rows != self._rows)
        self._rows = rows

    def render(self) -> Text:
        return self.make(max(self.size.width, 20))


class Plot(PlotextPlot):
    """A plotext figure drawn by a function of the plot and its width, rebuilt only when a new function
    comes or the size changes. The function returns False when there is nothing to plot: no empty axes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._figure: Callable[[Any, int], bool | None] = lambda plt, width: False
        self._drawn: tuple[Any, tuple[int, int]] | None = None

    def draw(self, figure: Callable[[Any, int], bool | None]) -> None:
        self._figure = figure
        self.refresh()

    def render(self):
        size = (self.size.width, self.size.height)
        if self._drawn != (self._figure, size):
            plt = self.plt
            plt.clear_figure()  # a fresh figure: no ticks, frame or labels left from the last drawing
            # Series are thinned to about the plot's width before plotting (plotext is slow on long ones).
            if self._figure(plt, max(size[0] - 8, 10)) is False:
                plt.frame(False)
                plt.xticks([])
                plt.yticks([])
            self._drawn = (self._figure, size)
        return super().render()


def wrap(parts: list[Text], width: int, gap: str = "  ") -> list[Text]:
    """Parts on lines no wider than `width`, broken between parts (a part wider than a line gets its own)."""
    lines: list[Text] = []
    line = Text()
    for part in parts:
        if line.cell_len and line.cell_len + len(gap) + part.cell_len > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append(gap)
        line.append_text(part)
    if line.cell_len:
        lines.append(line)
    return lines
