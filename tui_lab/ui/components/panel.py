"""The base of every panel on the main screen, and the two bodies panels draw into.

A panel owns its title (BORDER_TITLE), its subtitle and what it shows when there is nothing to draw. The
screen hands each panel every Frame; `show` asks the panel for its `key` (the part of the frame it draws)
and redraws only when that changed, so an idle screen writes nothing to the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget
from textual_plotext import PlotextPlot

from tui_lab.core.i18n import _
from tui_lab.ui import glyphs
from tui_lab.ui.frame import Frame

_UNSET: Any = object()


class Panel:
    """Mixed into a Textual container: `class LossPanel(Panel, Vertical)`."""

    BORDER_TITLE: ClassVar[str] = ""  # marked N_() where defined: shown in the current language
    BORDER_SUBTITLE: ClassVar[str] = ""
    DEFAULT_CLASSES = "panel"
    frame: Frame | None = None
    _key: Any = _UNSET
    border_title: str  # provided by the widget
    border_subtitle: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.BORDER_TITLE:
            self.border_title = _(self.BORDER_TITLE)

    def show(self, frame: Frame) -> bool:
        """Take the frame; redraw (and say so) when the part this panel draws changed."""
        key = self.key(frame)
        if key == self._key:
            return False
        self._key, self.frame = key, frame
        subtitle = glyphs.text(self.subtitle(frame))
        if self.border_subtitle != subtitle:  # each assignment repaints the whole border
            self.border_subtitle = subtitle
        self.draw(frame)
        return True

    def key(self, frame: Frame) -> Hashable:
        """What this panel draws from the frame (compared with ==; Views and Baselines by identity)."""
        return frame.view, frame.scrubbed

    def subtitle(self, frame: Frame) -> str:
        return _(self.BORDER_SUBTITLE)

    def render_str(self, text_content: Any) -> Any:
        """The border's title and subtitle, spelled out in ASCII mode (ui/glyphs.py)."""
        return super().render_str(glyphs.text(text_content) if isinstance(text_content, str) else text_content)  # type: ignore[misc]

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
        return glyphs.rich(self.make(max(self.size.width, 20)))  # what a panel did not spell itself (ASCII mode)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """The lines the text takes at the width the layout offers: not at `self.size`, which during a layout
        pass is still the old width (a caption measured at 20 columns kept two rows at 56: blank rows)."""
        return max(1, len(self.make(max(width, 20)).wrap(self.app.console, max(width, 20))))


MIN_PLOT_ROWS = 4  # a frame, a row of data, the tick labels


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
            # Series are thinned to about the plot's width before plotting (plotext is slow on long ones). Under
            # MIN_PLOT_ROWS rows plotext draws its axes upside down over nothing: no plot then.
            if size[1] < MIN_PLOT_ROWS or self._figure(plt, max(size[0] - 8, 10)) is False:
                plt.clear_figure()
                plt.frame(False)
                plt.xticks([])
                plt.yticks([])
            self._drawn = (self._figure, size)
        if size[1] < MIN_PLOT_ROWS and size[1] > 0:  # say so, rather than blank rows
            return Text(glyphs.text(_("(too short for this plot: a taller terminal shows it)")), "dim")
        text = super().render()
        if glyphs.G.ascii:  # plotext's frame and ticks are box drawing: ASCII, cell for cell
            text.plain = glyphs.cells(text.plain)
        return text


def wrap(parts: list[Text], width: int, gap: str = "  ") -> list[Text]:
    """Parts on lines no wider than `width`, broken between parts (a part wider than a line gets its own)."""
    lines: list[Text] = []
    line = Text()
    for part in map(glyphs.rich, parts):  # spelled out before they are measured (ASCII mode)
        if line.cell_len and line.cell_len + len(gap) + part.cell_len > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append(gap)
        line.append_text(part)
    if line.cell_len:
        lines.append(line)
    return lines
