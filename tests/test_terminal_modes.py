"""Terminals that cannot show everything: ASCII mode, NO_COLOR and 16 colours (ui/glyphs.py, ui/term_modes.py).

The mode each environment gets; the ASCII set and the spelling of text; every panel of the screen in 7-bit
characters (Pilot, the snapshot tests' fixture run); and the real app in a pseudo-terminal, byte for byte:
nothing but 7-bit characters in ASCII mode, no colour at all under NO_COLOR, the terminal's own red (not
magenta) on 16 colours.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.text import Text

from tui_lab.cli import main
from tui_lab.ui import glyphs, palette
from tui_lab.ui.glyphs import ASCII, UNICODE, Glyphs, cells, choose, spell

from pilot import aio, screen_lines
from support import ROOT, PtyProcess, term_env

# -- which mode --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "ascii"),
    [
        ({"TERM": "xterm-256color", "LANG": "en_US.UTF-8"}, False),
        ({"TERM": "xterm-256color", "LANG": "C.UTF-8"}, False),
        ({"TERM": "xterm", "LANG": "pt_BR.utf8"}, False),
        ({"TERM": "xterm-256color", "LC_CTYPE": "UTF-8"}, False),  # macOS
        ({"TERM": "xterm-256color"}, False),  # no locale at all (a container): nothing says it is not UTF-8
        ({"TERM": "xterm-256color", "LANG": "C"}, True),
        ({"TERM": "xterm-256color", "LANG": "POSIX"}, True),
        ({"TERM": "xterm-256color", "LANG": "en_US.ISO-8859-1"}, True),
        ({"TERM": "xterm-256color", "LANG": "en_US.UTF-8", "LC_CTYPE": "C"}, True),  # LC_CTYPE before LANG
        ({"TERM": "xterm-256color", "LANG": "C", "LC_ALL": "en_US.UTF-8"}, False),  # LC_ALL before both
        ({"TERM": "vt100", "LANG": "en_US.UTF-8"}, True),
        ({"TERM": "vt220", "LANG": "en_US.UTF-8"}, True),
        ({"TERM": "linux", "LANG": "en_US.UTF-8"}, True),  # box drawing, but no braille
        ({"TERM": "dumb", "LANG": "en_US.UTF-8"}, True),
        ({"TERM": "screen-256color", "LANG": "en_US.UTF-8"}, False),
        ({"TERM": "tmux-256color", "LANG": "en_US.UTF-8"}, False),
        ({"TUI_LAB_ASCII": "1", "TERM": "xterm-256color", "LANG": "en_US.UTF-8"}, True),
        ({"TUI_LAB_ASCII": "yes", "LANG": "en_US.UTF-8"}, True),
        ({"TUI_LAB_ASCII": "0", "TERM": "vt100", "LANG": "C"}, False),  # forced off, whatever the terminal
        ({"TUI_LAB_ASCII": "off", "TERM": "linux"}, False),
        ({"TUI_LAB_ASCII": "", "TERM": "vt100"}, True),  # empty: not set
    ],
)
def test_the_mode_each_environment_gets(env, ascii):
    assert choose(False, env)[0] is ascii


def test_the_flag_wins_and_every_choice_says_why():
    assert choose(True, {"TUI_LAB_ASCII": "0"}) == (True, "--ascii")
    assert choose(False, {"TERM": "vt100"}) == (True, "TERM=vt100")
    assert choose(False, {"LANG": "C"}) == (True, "LANG=C")


def test_a_c_locale_is_seen_through_pythons_own_coercion():
    """Under LANG=C Python sets LC_CTYPE=C.UTF-8 in its own environment at start-up (PEP 538): the choice reads
    the environment the process was started with."""
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_CTYPE", "TUI_LAB_ASCII", "PYTHONUTF8")}
    env.update({"LANG": "C", "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)})
    code = "import os; from tui_lab.ui.glyphs import choose; print(os.environ.get('LC_CTYPE'), choose()[0])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "True", out


def test_ascii_on_the_command_line_reaches_the_app(monkeypatch, tmp_path):
    seen: list[dict] = []
    monkeypatch.setattr("tui_lab.ui.app.run_app", lambda **kwargs: seen.append(kwargs) or 0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text("", encoding="utf-8")
    assert main(["--ascii"]) == 0
    assert main(["show", str(run_dir), "--ascii"]) == 0
    assert main(["--ascii", "show", str(run_dir)]) == 0
    assert main(["show", str(run_dir)]) == 0
    assert [kwargs["ascii"] for kwargs in seen] == [True, True, True, False]


# -- the ASCII set and the spelling of text -----------------------------------------------------------------


def test_the_ascii_set_is_7bit_and_has_a_mark_for_every_meaning():
    for f in fields(Glyphs):
        value = getattr(ASCII, f.name)
        for item in value if isinstance(value, tuple) else [value]:
            assert not isinstance(item, str) or item.isascii(), (f.name, item)
    marks = [ASCII.vanish, ASCII.explode, ASCII.low, ASCII.high, ASCII.error, ASCII.warn, ASCII.ok, ASCII.info]
    assert len(set(marks)) == len(marks)  # one meaning each
    assert len(set(ASCII.plain_lines)) == len(ASCII.plain_lines) == len(UNICODE.plain_lines)
    assert len(set(ASCII.fills)) == len(ASCII.fills)


def test_spelled_out_text():
    assert spell("Gradient flow  log10 ‖∇W‖") == "Gradient flow  log10 |grad W|"
    assert spell("L1 gets 10⁻⁸ of out's · try relu → he_normal") == "L1 gets 10^-8 of out's | try relu -> he_normal"
    assert spell("sigmoid' ≤ 0.25, 1000× … ← End") == "sigmoid' <= 0.25, 1000x ... <- End"
    assert spell("Gradientes: a rede não aprende, função") == "Gradientes: a rede nao aprende, funcao"
    assert spell("“aspas” — ±1") == '"aspas" -- +-1'


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_cell_for_cell_keeps_every_width(s):
    out = cells(s)
    assert out.isascii()
    assert cell_len(out) == cell_len(s)


def test_cell_for_cell_marks():
    assert cells("╭─ ‖∇W‖ ─╮│└┬┤┘") == "+- |VW| -+|++++"
    assert cells("⠤⣀⠉⠀█▓▒░▏") == "... ##:.|"  # an empty braille cell is a space
    assert cells("✖▲✓↓↑←→·…×") == "X!+v^<>..x"
    assert cells("\x1b[31mçã\x1b[0m\n") == "\x1b[31mca\x1b[0m\n"  # escape sequences and newlines untouched
    assert cells("🔎x") == "??x"  # two cells, two characters


def test_styles_survive_the_spelling():
    glyphs.use(True)
    try:
        t = Text("‖∇W‖ ", "bold")
        t.append("→ out", "red")
        out = glyphs.rich(t)
        assert out.plain == "|grad W| -> out"
        assert out.style == "bold" and [(s.start, s.end, s.style) for s in out.spans] == [(9, 15, "red")]
    finally:
        glyphs.use(False)


# -- the screen, as Textual composes it ----------------------------------------------------------------------


@pytest.fixture
def ascii_mode():
    glyphs.use(True)
    yield
    glyphs.use(False)


def not_ascii(lines: list[str]) -> list[str]:
    """The lines with a character that is not 7-bit, but for the '…' Textual cuts a long border label or line
    with itself (its own mark, which the app's driver writes as '.', as the pty tests below see)."""
    return [line for line in lines if not line.replace("…", "").isascii()]


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
@pytest.mark.parametrize("case", ["learned", "baseline", "diverged"])
@aio
async def test_every_view_is_7bit_in_ascii_mode(ascii_mode, case, size):
    from test_ui_snapshots import paused_app

    app, before = paused_app(**{case: True})
    async with app.run_test(size=size) as pilot:
        await before(pilot)
        for key in "12345":
            await pilot.press(key)
            await pilot.pause(0.3)
            lines = screen_lines(app)
            assert not not_ascii(lines), f"view {key}:\n" + "\n".join(not_ascii(lines))
        await pilot.press("question_mark")  # the lesson, spelled out
        await pilot.pause(0.3)
        assert not not_ascii(screen_lines(app))


@aio
async def test_everything_at_once_in_ascii_mode(ascii_mode):
    from test_ui_snapshots import paused_app

    from tui_lab.ui.components.gradflow import GradFlowPanel
    from tui_lab.ui.components.plots import GradTimePanel

    app, before = paused_app(learned=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await before(pilot)
        assert not not_ascii(screen_lines(app))
        assert "|grad W|" in app.query_one(GradFlowPanel).border_title
        caption = app.query_one(GradTimePanel).caption.render().plain  # each line its marker, named
        assert "** L1 (input side)" in caption and "xx out (output)" in caption


# -- NO_COLOR: the meaning without colour ----------------------------------------------------------------


@aio
async def test_no_color_writes_no_colour_and_names_the_lines_by_marker(monkeypatch):
    from test_ui_snapshots import paused_app
    from textual.filter import ANSIToTruecolor, Monochrome

    from tui_lab.ui.components.findings import FindingsPanel
    from tui_lab.ui.components.plots import GradTimePanel

    monkeypatch.setenv("NO_COLOR", "1")
    app, before = paused_app("3")
    async with app.run_test(size=(120, 36)) as pilot:
        await before(pilot)
        filters = app.get_line_filters()
        assert not any(isinstance(f, (ANSIToTruecolor, Monochrome)) for f in filters)  # not even greys
        caption = app.query_one(GradTimePanel).caption.render().plain
        assert "━━ L1 (input side)" in caption and "xx out (output)" in caption
        assert "blue" not in caption and "red" not in caption
        await pilot.press("2")
        await pilot.pause(0.3)
        findings = str(app.query_one(FindingsPanel).body.render())
        judged = [line for line in findings.splitlines() if line[:2] in ("✖ ", "▲ ", "• ", "✓ ")]
        assert judged, findings  # every finding starts with the mark of its severity


def test_sixteen_colours_keep_the_layer_ramp_off_magenta():
    palette.use_sixteen(True)
    try:
        assert set(palette.layer_colors(10)) <= {"cyan+", "cyan", "blue+", "blue"}
    finally:
        palette.use_sixteen(False)
    assert all(isinstance(c, tuple) for c in palette.layer_colors(10))


# -- the real app in a pseudo-terminal -----------------------------------------------------------------------

pty_only = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
SGR = re.compile(rb"\x1b\[([0-9;:]*)m")


def drive(env: dict[str, str], runs: Path, drop: tuple[str, ...] = (), cols: int = 120, rows: int = 36) -> bytes:
    """Start the app on deep-sigmoid, run 60 steps, visit every view, the lesson and the picker; every byte the
    terminal got."""
    for key in drop:
        env.pop(key, None)
    argv = [sys.executable, "-m", "tui_lab", "--preset", "deep-sigmoid", "--set", "train.steps=60"]
    argv += ["--set", "train.log_every=5", "--set", "train.device=cpu"]
    app = PtyProcess(argv, cols=cols, rows=rows, env=env)
    try:
        assert app.wait_for("deep-sigmoid", timeout=30) is not None, "the app never drew its screen"
        app.drain(0.5)
        app.write(b"r")
        deadline = time.monotonic() + 60
        while not list(runs.glob("*/summary.json")) and time.monotonic() < deadline:
            app.drain(0.2)
        assert list(runs.glob("*/summary.json")), "the run did not finish"
        for keys in (b"1", b"2", b"3", b"4", b"5", b"?", b"\x1b", b"l", b"\x1b"):
            app.write(keys)
            app.drain(0.6)
    finally:
        app.close()
    return bytes(app.buffer)


def first_non_ascii(data: bytes) -> str:
    at = next(i for i, b in enumerate(data) if b > 0x7F)
    return repr(data[max(0, at - 80) : at + 40])


@pty_only
@pytest.mark.parametrize(
    ("extra", "drop"),
    [
        ({"TUI_LAB_ASCII": "1"}, ()),
        ({"LANG": "C"}, ("LC_ALL", "LC_CTYPE", "TUI_LAB_ASCII")),
        ({"TERM": "vt100", "TUI_LAB_ASCII": ""}, ()),
    ],
    ids=["TUI_LAB_ASCII=1", "LANG=C", "TERM=vt100"],
)
def test_ascii_mode_writes_only_7bit_bytes(runs_dir, extra, drop):
    data = drive(term_env(extra), runs_dir, drop)
    assert b"deep-sigmoid" in data and b"|grad W|" in data  # it drew, and spelled out
    assert data.isascii(), first_non_ascii(data)


def colour_parameters(data: bytes) -> list[str]:
    """Every SGR parameter that sets a colour: 30-37, 38 (256/RGB), 40-47, 48, 90-97, 100-107."""
    found = []
    for match in SGR.finditer(data):
        for param in match.group(1).decode().replace(":", ";").split(";"):
            n = int(param) if param.isdigit() else 0
            if n in (38, 48) or 30 <= n <= 37 or 40 <= n <= 47 or 90 <= n <= 97 or 100 <= n <= 107:
                found.append(match.group(0).decode("ascii", "replace"))
                break
    return found


@pty_only
def test_no_color_writes_no_colour_at_all(runs_dir):
    data = drive(term_env({"NO_COLOR": "1"}), runs_dir)
    assert SGR.search(data), "no SGR sequence at all: the test would prove nothing"
    assert colour_parameters(data) == []


@pty_only
def test_sixteen_colours_keep_red_red(runs_dir):
    """The vanishing bars are the terminal's red (31), not the magenta the default theme's red lands on."""
    data = drive(term_env({"TERM": "xterm-16color"}), runs_dir, drop=("COLORTERM",))
    numbers = {int(p) for m in SGR.finditer(data) for p in m.group(1).decode().split(";") if p.isdigit()}
    assert 31 in numbers  # red
    assert not numbers & {35, 95, 38, 48}  # no magenta, and none of the 256 or RGB colours
