"""Fitting the app to the terminal it runs in: ASCII only, no colour, or 16 colours (README: Usage).

- ASCII mode (ui/glyphs.py chooses it): the panels draw with the ASCII set and `-ascii` on the app switches
  the borders to Textual's `ascii` type (modes.tcss). What Textual draws itself goes through the driver:
  `ascii_driver` writes every character that is still not 7-bit as the ASCII one it looks most like, cell for
  cell, and the scrollbars lose their eighth-of-a-cell ends (`AsciiScrollBarRender`).
- NO_COLOR: Textual's own answer is greyscale (it still writes colours); `line_filters` writes none at all,
  and modes.tcss marks what colour used to mark (the focused panel, the highlighted option, a field's
  cursor) with reverse video.
- 16 colours (Textual's 'standard' colour system): Textual turns the named colours into its theme's RGB and
  then back into the nearest of 16, which makes the theme's pinkish red a magenta. `line_filters` leaves them
  the terminal's own red, yellow and green instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.drivers.headless_driver import HeadlessDriver
from textual.filter import ANSIToTruecolor, LineFilter, Monochrome, NoColor
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.theme import Theme

from tui_lab.ui import glyphs, palette

if TYPE_CHECKING:
    from textual.app import App
    from textual.driver import Driver

_NO_COLOR = NoColor()


def ascii_driver(base: type[Driver]) -> type[Driver]:
    """`base` writing only 7-bit characters (escape sequences are ASCII already)."""
    if base is HeadlessDriver or getattr(base, "ascii_only", False):
        return base

    class AsciiDriver(base):  # type: ignore[misc, valid-type]
        ascii_only = True

        def write(self, data: str) -> None:
            super().write(glyphs.cells(data))

    AsciiDriver.__name__ = AsciiDriver.__qualname__ = f"Ascii{base.__name__}"
    return AsciiDriver


class AsciiScrollBarRender(ScrollBarRender):
    """Scrollbars of whole cells: the thumb in reverse video, no partial blocks at its ends."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


def prepare(app: App) -> None:
    """At the app's creation, for the mode glyphs chose."""
    if glyphs.G.ascii:
        app.add_class("-ascii")
        ScrollBar.renderer = AsciiScrollBarRender
    elif ScrollBar.renderer is AsciiScrollBarRender:
        ScrollBar.renderer = ScrollBarRender


# The terminal's own 16 colours, one meaning each as in ui/palette.py: the accent (focus, footer keys, sections)
# cyan, which judges nothing. Textual's default theme's orange accent would come out bright red.
SIXTEEN = Theme(
    name="tui-lab-16",
    primary="ansi_blue",
    secondary="ansi_cyan",
    warning="ansi_yellow",
    error="ansi_red",
    success="ansi_green",
    accent="ansi_cyan",
    foreground="ansi_default",
    background="ansi_default",
    surface="ansi_default",
    panel="ansi_default",
    boost="ansi_default",
    dark=True,
    variables={  # Textual's ansi-dark's, with the footer's keys cyan
        "ansi-background": "ansi_black",
        "ansi-foreground": "ansi_white",
        "border-blurred": "ansi_black",
        "block-cursor-foreground": "ansi_black",
        "block-cursor-background": "ansi_white",
        "input-cursor-background": "ansi_black",
        "input-cursor-foreground": "ansi_bright_white",
        "input-cursor-text-style": "none",
        "input-selection-background": "ansi_bright_blue",
        "input-selection-foreground": "ansi_black",
        "screen-selection-background": "ansi_bright_blue",
        "screen-selection-foreground": "ansi_black",
        "footer-key-foreground": "ansi_bright_cyan",
    },
    ansi=True,
)


def fit_colours(app: App) -> None:
    """Once the app knows its terminal's colour system: a 16-colour terminal keeps its own named colours (a
    theme of ANSI colours, and the named colours left alone)."""
    sixteen = app.console.color_system == "standard" and not app.no_color
    app.native_16 = sixteen  # type: ignore[attr-defined]
    palette.use_sixteen(sixteen)
    if sixteen:
        app.register_theme(SIXTEEN)
        app.theme = SIXTEEN.name


def line_filters(app: App, filters: Sequence[LineFilter]) -> list[LineFilter]:
    """Textual's filters for this terminal: under NO_COLOR no colour at all (not greyscale); on 16 colours the
    named colours left to the terminal."""
    plain, native = app.no_color, getattr(app, "native_16", False)
    if not plain and not native:
        return list(filters)
    out: list[LineFilter] = []
    for f in filters:
        if isinstance(f, ANSIToTruecolor):
            continue
        out.append(_NO_COLOR if isinstance(f, Monochrome) else f)
    if plain and _NO_COLOR not in out:
        out.append(_NO_COLOR)
    return out
