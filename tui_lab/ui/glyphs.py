"""The characters the screen is drawn with: a Unicode set and a 7-bit ASCII set, one of them chosen at start-up.

ASCII mode is for terminals that cannot show the Unicode set: a console without box drawing, braille or arrows
(TERM=vt100, vt220, linux, dumb...) or a terminal whose encoding is not UTF-8 (the locale says so: LC_ALL, else
LC_CTYPE, else LANG, naming another encoding, as LANG=C or LANG=en_US.ISO-8859-1 do). `--ascii` forces it, and
TUI_LAB_ASCII=1 / TUI_LAB_ASCII=0 force it on / off (`choose`). The Linux console counts as one without the
glyphs: its font has box drawing and blocks but no braille, and which arrows and marks it has depends on the
font; TUI_LAB_ASCII=0 keeps the Unicode set on one that has them.

`G` holds the chosen set (`use` swaps it; the default is Unicode, so tests and imports never depend on the
terminal they run in). Every panel draws its marks from `G`; a string made elsewhere (a finding, a lesson, a
title, a notification) goes through `text()`, which in ASCII mode spells its symbols out (‖∇W‖ -> |grad W|,
→ -> ->, ≤ -> <=, accents dropped). `cells()` is the last resort the app's driver applies to whatever still
reaches the terminal (Textual's own marks, a path with accents): one ASCII character per cell, so nothing
moves on screen.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

ENV = "TUI_LAB_ASCII"
# Terminal types (TERM, before any '-' suffix) that cannot show the Unicode set.
ASCII_TERMS = frozenset({"dumb", "unknown", "linux", "ansi", "cons25", "pcansi", "sun", "vt52"})
OFF = frozenset({"0", "no", "false", "off"})


@dataclass
class Glyphs:
    """One set of marks. Multi-character ASCII spellings are used only where the width is free (captions,
    legends, messages); marks inside aligned columns keep one cell."""

    ascii: bool
    # Judgements (gradient bars, findings, activations): one meaning each, never by colour alone.
    vanish: str  # far below the output layer's gradient
    explode: str
    low: str
    high: str
    error: str  # an alarm: NaN/inf, a finding that is an error
    warn: str  # a caution
    info: str  # a plain note
    ok: str  # healthy
    wrong: str  # a wrong answer (the copy task), an invalid field
    # Drawing.
    bar: str  # a gradient bar, a share bar
    bar_tip: str  # the half cell at the end of a bar ('' when there is none)
    base_bar: str  # the pinned baseline's bar
    empty: str  # an empty cell of a share bar; the dotted axes
    zero: str  # an exact zero on a log bar
    under: str  # a value under the bars' floor
    fold: str  # rows left out
    done: str  # the progress bar
    todo: str
    point: str  # a validation point on the decision regions
    swatch: str  # a class's colour in the legend
    mark: str  # a vertical mark: the target on a bar
    # Words and signs in text.
    sep: str  # between the parts of a line: 'a · b'
    arrow: str  # 'then' / 'try'
    le: str
    times: str
    ellipsis: str
    # Plots (plotext markers) and the captions that name them.
    line: str  # a curve
    line_caption: str
    alt: str  # a second curve on the same axes, told from the first without colour
    alt_caption: str
    dots: str  # points (validation), the pinned baseline's curves
    base_line: str
    bars: str  # histogram bars
    plain_lines: tuple[str, ...]  # layers over time without colour: one marker a line
    # Decision regions without colour: one fill a class (the points are the class's digit).
    fills: str
    half_blocks: bool  # two pixels a cell (▀ in two colours)
    # Textual's own: the drop-down arrows of a Select.
    select_down: str
    select_up: str


UNICODE = Glyphs(
    ascii=False,
    vanish="↓↓",
    explode="↑↑",
    low="↓",
    high="↑",
    error="✖",
    warn="▲",
    info="•",
    ok="✓",
    wrong="✗",
    bar="█",
    bar_tip="▏",
    base_bar="▒",
    empty="·",
    zero="○",
    under="◂",
    fold="⋮",
    done="▓",
    todo="░",
    point="●",
    swatch="■",
    mark="┃",
    sep=" · ",
    arrow="→",
    le="≤",
    times="×",
    ellipsis="…",
    line="braille",
    line_caption="━━",
    alt="hd",
    alt_caption="▞▞",
    dots="•",
    base_line="·",
    bars="sd",
    plain_lines=("braille", "•", "+", "x"),
    fills=" ░▒▓█:+=#%",
    half_blocks=True,
    select_down="▼",
    select_up="▲",
)

ASCII = Glyphs(
    ascii=True,
    vanish="vv",
    explode="^^",
    low="v",
    high="^",
    error="X",
    warn="!",
    info="*",
    ok="+",
    wrong="x",
    bar="#",
    bar_tip="",
    base_bar="=",
    empty=".",
    zero="o",
    under="<",
    fold=":",
    done="#",
    todo="-",
    point="o",
    swatch="#",
    mark="|",
    sep=" | ",
    arrow="->",
    le="<=",
    times="x",
    ellipsis="...",
    line="*",
    line_caption="**",
    alt="+",
    alt_caption="++",
    dots="o",
    base_line=".",
    bars="#",
    plain_lines=("*", "+", "o", "x"),
    fills=" #+=.%:~xo",
    half_blocks=False,
    select_down="v",
    select_up="^",
)

G = replace(UNICODE)  # the set in use: `use` fills it in place, so `from ... import G` always sees the current one


def use(ascii: bool) -> Glyphs:
    """Draw with the ASCII set (True) or the Unicode set (False) from now on."""
    chosen = ASCII if ascii else UNICODE
    for f in fields(Glyphs):
        setattr(G, f.name, getattr(chosen, f.name))
    return G


def caption(marker: str) -> str:
    """How a caption names a curve drawn with this plotext marker: '━━' for braille, '**' for '*'."""
    for name, shown in ((G.line, G.line_caption), (G.alt, G.alt_caption)):
        if marker == name:
            return shown
    return {"braille": "━━", "hd": "▞▞", "sd": "██"}.get(marker, marker * 2)


# ---------------------------------------------------------------------------------------------------------
# Choosing the mode.


def choose(flag: bool = False, environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(ASCII mode?, why): `--ascii`, else TUI_LAB_ASCII, else the terminal type, else the locale's encoding.
    `environ` defaults to the environment the process started with (see `start_environ`)."""
    env = start_environ() if environ is None else environ
    if flag:
        return True, "--ascii"
    forced = env.get(ENV, "").strip().lower()
    if forced:
        return forced not in OFF, f"{ENV}={env.get(ENV)}"
    term = env.get("TERM", "").strip().lower()
    base = term.split("-")[0]
    if base in ASCII_TERMS or (base.startswith("vt") and base[2:].isdigit()):
        return True, f"TERM={term}"
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(var, "")
        if value:  # the first one set decides, as in POSIX
            return (not _utf8(value)), f"{var}={value}"
    return False, "default"  # no locale at all (a container, ssh without one): nothing says it is not UTF-8


def _utf8(locale: str) -> bool:
    """'en_US.UTF-8', 'C.utf8', 'UTF-8' (macOS's LC_CTYPE) name UTF-8; 'C', 'POSIX', 'en_US.ISO-8859-1' do not."""
    codeset = locale.split("@")[0].rsplit(".", 1)[-1] if "." in locale else locale
    return codeset.replace("-", "").replace("_", "").lower() == "utf8"


def start_environ() -> dict[str, str]:
    """The environment as the process got it. Python changes its own copy at start-up under a C or POSIX locale
    (PEP 538 sets LC_CTYPE=C.UTF-8), which would hide a terminal that is not UTF-8; /proc keeps the original
    (Linux). Elsewhere os.environ, less a LC_CTYPE that looks like Python's own."""
    env = dict(os.environ)
    try:
        with open(f"/proc/{os.getpid()}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        raw = b""
    if raw:
        first = dict(item.decode("utf-8", "replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item)
        for var in ("LC_ALL", "LC_CTYPE", "LANG"):
            if var in first:
                env[var] = first[var]
            else:
                env.pop(var, None)
    elif env.get("LC_CTYPE") == "C.UTF-8" and sys.flags.utf8_mode and not env.get("LC_ALL"):
        env.pop("LC_CTYPE")  # most likely Python's coercion, not the user's
    return env


# ---------------------------------------------------------------------------------------------------------
# Turning text into ASCII.

# Spelled out where the width is free (text()): longest first.
_WORDS = [
    ("‖∇W‖", "|grad W|"),
    ("∇W", "grad W"),
    ("∇", "grad "),
    (" · ", " | "),
    ("→", "->"),
    ("←", "<-"),
    ("⇒", "=>"),
    ("≤", "<="),
    ("≥", ">="),
    ("≠", "!="),
    ("≈", "~"),
    ("±", "+-"),
    ("…", "..."),
    ("—", "--"),
    ("✓", "ok"),
    ("∞", "inf"),
    ("²", "^2"),
]
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+"))

# One cell for one cell (cells()): what each mark looks most like.
_CELLS = {
    "‖": "|",
    "∇": "V",
    "·": ".",
    "•": "*",
    "●": "o",
    "○": "o",
    "◂": "<",
    "▸": ">",
    "◀": "<",
    "▶": ">",
    "▲": "!",
    "▼": "v",
    "△": "^",
    "▽": "v",
    "↑": "^",
    "↓": "v",
    "←": "<",
    "→": ">",
    "↔": "-",
    "⋮": ":",
    "…": ".",
    "✖": "X",
    "✗": "x",
    "✘": "x",
    "✓": "+",
    "✔": "+",
    "×": "x",
    "÷": "/",
    "≤": "<",
    "≥": ">",
    "≠": "#",
    "≈": "~",
    "±": "+",
    "—": "-",
    "–": "-",
    "‐": "-",
    "−": "-",
    "‘": "'",
    "’": "'",
    "‚": ",",
    "“": '"',
    "”": '"',
    "„": '"',
    "«": '"',
    "»": '"',
    "′": "'",
    "″": '"',
    "°": "o",
    "µ": "u",
    "\u00a0": " ",
    "█": "#",
    "▓": "#",
    "▒": ":",
    "░": ".",
    "■": "#",
    "□": "o",
    "▪": "#",
    "▫": ".",
    "▀": '"',
    "▄": "_",
    "▔": "-",
    "▁": "_",
    "▂": "_",
    "▃": "_",
    "▅": "#",
    "▆": "#",
    "▇": "#",
    "▏": "|",
    "▎": "|",
    "▍": "|",
    "▌": "|",
    "▋": "|",
    "▊": "|",
    "▉": "#",
    "▐": "|",
    "▕": "|",
    "⎯": "-",
    "⏎": "<",
    "⌫": "<",
    "⇥": ">",
}


def _cell(ch: str) -> str:
    """One non-ASCII character as ASCII of the same width on screen."""
    if ch in _CELLS:
        return _CELLS[ch]
    code = ord(ch)
    if 0x2800 <= code <= 0x28FF:  # braille: a plot's dots
        return " " if code == 0x2800 else "."
    if 0x2500 <= code <= 0x257F:  # box drawing
        name = unicodedata.name(ch, "")
        if "DIAGONAL" in name:
            return "\\" if "LOWER RIGHT" in name and "UPPER LEFT" in name else "/"
        if "HORIZONTAL" in name and "VERTICAL" not in name and "AND" not in name:
            return "-"
        if "VERTICAL" in name and "HORIZONTAL" not in name and "AND" not in name:
            return "|"
        return "+"
    if 0x2580 <= code <= 0x259F:  # block elements not named above: quadrants
        return "#"
    if ch in _SUPERSCRIPTS:
        return _SUPERSCRIPTS[ch]
    from rich.cells import cell_len  # the width Textual gives it on screen

    width = cell_len(ch)
    if width == 0:  # a combining mark, a zero-width joiner...: no cell of its own
        return ""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii() and c.isprintable())
    if base:
        return (base * width)[:width] if len(base) == 1 else base[:width].ljust(width)
    return "?" * width


class _CellTable(dict):
    """str.translate's table: every non-ASCII character looked up once."""

    def __missing__(self, code: int) -> str:
        value = self[code] = chr(code) if code < 128 else _cell(chr(code))
        return value


_TABLE = _CellTable()


def cells(s: str) -> str:
    """`s` in ASCII, cell for cell (the same width on screen): what the driver writes in ASCII mode."""
    return s if s.isascii() else s.translate(_TABLE)


def spell(s: str) -> str:
    """`s` in ASCII with its symbols spelled out (widths change): '‖∇W‖ → 10⁻⁸' -> '|grad W| -> 10^-8'."""
    if s.isascii():
        return s
    for sym, word in _WORDS:
        if sym in s:
            s = s.replace(sym, word)
    out, sup = [], False
    for ch in s:
        is_sup = ch in _SUPERSCRIPTS and ch not in ("²",)
        if is_sup and not sup:
            out.append("^")
        out.append(ch)
        sup = is_sup
    return cells("".join(out))


def text(s: str) -> str:
    """A string for the screen: as it is, or spelled out in ASCII mode."""
    return spell(s) if G.ascii else s


def rich(t: Text) -> Text:
    """A Rich Text for the screen: as it is, or spelled out in ASCII mode, each run of text keeping its style."""
    if not G.ascii or t.plain.isascii():
        return t
    from rich.text import Span, Text

    if " · " in t.plain:  # a separator whose spaces belong to other runs: same width, so in place first
        t = t.copy()
        t.plain = t.plain.replace(" · ", " | ")
    edges = sorted({0, len(t.plain), *(e for span in t.spans for e in (span.start, span.end))})
    out = Text(style=t.style, justify=t.justify, overflow=t.overflow, no_wrap=t.no_wrap, end=t.end, tab_size=t.tab_size)
    for piece in t.divide(edges[1:-1]):
        spelled = spell(piece.plain)
        start = len(out.plain)
        out.append(spelled)
        out.spans.extend(Span(start, start + len(spelled), span.style) for span in piece.spans if span.end > span.start)
    return out
