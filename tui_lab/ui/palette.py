"""One meaning per colour, on the whole screen.

Red, yellow and green judge: red is an alarm (vanishing, exploding, an error, a number that is not finite),
yellow is caution (a warning, something to look at), green is healthy. Grey is the pinned baseline. Whatever
else is drawn (the loss and accuracy curves, the layers over time, the histogram) takes a colour that judges
nothing: cyan, blue, violet, lavender. Reference lines (the loss of guessing, a mid-run change) are dark grey.

Text takes Rich styles; plots take plotext colours (plotext writes 256-colour codes, 0-15 being the
terminal's own colours, the ones Rich's names mean), and `rich()` gives a caption's swatch the same colour.

With NO_COLOR set (https://no-color.org) `style` and `rich` give no colour (bold and dim stay) and `curve`
gives plotext's "default": the meaning is carried by glyphs and words (↓↓, ▲, ✖, the captions); the app
writes no colour at all then (ui/app.py). On a 16-colour terminal (`use_sixteen`, set at start-up) the judging
colours are the terminal's own red, yellow and green, and the layer ramp keeps to cyan and blue: a blend of
RGB values would land on the nearest of 16 colours, a violet on magenta.
"""

from __future__ import annotations

import os

PlotColor = str | int | tuple[int, int, int]


def no_color() -> bool:
    """NO_COLOR is set and not empty."""
    return bool(os.environ.get("NO_COLOR"))


# Judgements and roles in text (Rich styles).
ALARM = "red"  # vanishing, exploding, an error, a number that is not finite
CAUTION = "yellow"  # between healthy and alarm; a warning
HEALTHY = "green"  # level, fine
BASELINE = "color(245)"  # the pinned baseline run, wherever it is drawn
REFERENCE = "color(240)"  # reference lines: the loss of guessing, mid-run changes
ACCENT = "cyan"  # information that judges nothing (an info finding, progress)

# Curves (plotext colours): none of them red, yellow or green.
BASELINE_CURVE: PlotColor = 245
REFERENCE_LINE: PlotColor = 240
CURSOR: PlotColor = "white"  # the snapshot the ←/→ cursor is on
LOSS: PlotColor = "cyan"
ACC: PlotColor = (200, 160, 255)  # lavender: the terminal's magenta is often a pinkish red
TIME: PlotColor = "blue+"  # ||d loss / d x_t|| per time step
HIST: PlotColor = "cyan"

# Layers over time, input side to output side: cyan -> blue -> violet.
_RAMP = [(0, 215, 255), (80, 140, 255), (175, 110, 255)]


# ...and on a 16-colour terminal, where RGB values would fall on the nearest of 16 (violet on magenta).
_RAMP16 = ["cyan+", "cyan", "blue+", "blue"]
_sixteen = False


def use_sixteen(on: bool) -> None:
    """The terminal shows 16 colours (Textual's 'standard' colour system): curves take named colours."""
    global _sixteen
    _sixteen = on


def sixteen() -> bool:
    return _sixteen


def layer_colors(n: int) -> list[PlotColor]:
    """n colours from the input side (cyan) through blue to the output side (violet); on 16 colours, the
    terminal's bright cyan, cyan, bright blue and blue."""
    if _sixteen:
        return [_RAMP16[min(len(_RAMP16) - 1, i * len(_RAMP16) // max(n, 1))] for i in range(n)]
    out: list[PlotColor] = []
    for i in range(n):
        t = (i / (n - 1) if n > 1 else 1.0) * (len(_RAMP) - 1)
        seg = min(int(t), len(_RAMP) - 2)
        a, b = _RAMP[seg], _RAMP[seg + 1]
        out.append((round(a[0] + (b[0] - a[0]) * (t - seg)), round(a[1] + (b[1] - a[1]) * (t - seg)),
                    round(a[2] + (b[2] - a[2]) * (t - seg))))  # fmt: skip
    return out


def style(color: str, extra: str = "") -> str:
    """A Rich style of this colour plus `extra` ('bold', 'dim'); under NO_COLOR only `extra`."""
    return extra if no_color() else f"{extra} {color}".strip()


def curve(color: PlotColor) -> PlotColor:
    """A plotext colour; plotext's 'default' under NO_COLOR."""
    return "default" if no_color() else color


def rich(color: PlotColor, extra: str = "") -> str:
    """The Rich style that paints like this plotext colour (a caption's swatch)."""
    if isinstance(color, tuple):
        name = f"rgb({color[0]},{color[1]},{color[2]})"
    elif isinstance(color, int):
        name = f"color({color})"
    else:
        name = "bright_" + color[:-1] if color.endswith("+") else color
    return style(name, extra)
