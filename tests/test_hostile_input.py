"""Hostile input (issue 19): what a user types or pastes, what a terminal sends and what files hold never crashes
the app, never reaches the terminal as an escape sequence, and never leaves a run behind; a crash that happens
anyway exits non-zero with one line.

- markup in a config field, a preset's title or a run's name is shown as text (Textual would parse it: `[/]`
  was a MarkupError);
- two enters or escapes in one read close a modal screen once (a second dismiss popped the main screen);
- bytes that are not UTF-8 and CSI sequences with absurd parameters are dropped (Textual 8.2 crashed on them:
  docs/upstream/);
- escape sequences and control characters from files are stripped, on screen and on stdout (core/fmt.py
  `printable`);
- r/x/n storms: one training thread, no run directory for a run that never started, the next run at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual import events
from textual.widgets import Input, Static

from tui_lab.core.fmt import printable
from tui_lab.ui.app import LabApp
from tui_lab.ui.runs import LiveRun
from tui_lab.ui.safe_terminal import PrintableOnly, SafeXTermParser, decoder, sane
from tui_lab.ui.screens import HelpScreen, LessonScreen, PresetPicker

from pilot import aio, panel_ready, screen_lines, wait_for
from support import ROOT, PtyProcess, small_config, term_env, visible

MARKUP = ["[/]", "[bold]", "[link=https://x]x", "[@click=app.quit]", "[/dim]]", "[b][/i]", "\\[/]"]
ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "\x1b[31m", "\x9b2J", "\x1bP+q\x1b\\", "\x1b]8;;http://x\x1b\\", "\x07\x08\r"]
EVIL_TITLE = "\x1b]0;pwned\x07\x1b[2J[/] evil [@click=app.quit]"


def bad(text: str, multiline: bool = False) -> list[str]:
    """The characters in `text` a terminal would act on."""
    allowed = "\n\t" if multiline else ""
    return [c for c in text if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) and c not in allowed]


def write_preset(directory: Path, name: str, title: str, lesson: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"

    def esc(text: str) -> str:  # a TOML basic string: every control character, quote and backslash as \\uXXXX
        return "".join(f"\\u{ord(c):04x}" if bad(c) or c in '"\\' else c for c in text)

    path.write_text(
        f'title = "{esc(title)}"\nlesson = "{esc(lesson)}"\n[model]\ndepth = 3\nwidth = 8\n'
        '[data]\nsamples = 128\n[train]\nsteps = 20\ndevice = "cpu"\n'
    )
    return path


def screen_is_clean(app: LabApp) -> None:
    for row in screen_lines(app):
        assert not bad(row), repr(row)


# ---------------------------------------------------------------------------------------------------------
# printable: the one helper for every string from a file


class TestPrintable:
    def test_a_title_that_would_retitle_and_clear_the_terminal_prints_harmlessly(self):
        assert printable("\x1b]0;pwned\x07\x1b[2J evil") == " evil"
        assert printable("a\x1b[1;31mred\x1b[0m b\x9b2Jc") == "ared bc"
        assert printable("unterminated \x1b]0;title") == "unterminated "

    def test_lines_and_tabs_stay_only_in_multiline_text(self):
        assert printable("one\ntwo\tthree\r\n") == "one two three "
        assert printable("one\r\ntwo\tthree", multiline=True) == "one\ntwo\tthree"

    def test_plain_text_markup_and_unicode_are_left_alone(self):
        for text in ["ReLU + He init: ←/→ 中文 é", "[/] evil", "lr=0.01 · 1e-3"]:
            assert printable(text) == text

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.one_of(st.text(max_size=8), st.sampled_from(ESCAPES + MARKUP), st.characters(max_codepoint=0x9F)),
            max_size=12,
        ).map("".join),
        st.booleans(),
    )
    def test_nothing_a_terminal_acts_on_survives(self, text, multiline):
        out = printable(text, multiline)
        assert not bad(out, multiline)
        assert printable(out, multiline) == out  # and a second pass changes nothing


# ---------------------------------------------------------------------------------------------------------
# Markup and escapes in the TUI


class TestMarkupIsText:
    @aio
    async def test_markup_typed_into_a_config_field_is_echoed_as_text(self):
        app = LabApp(preset_name="tiny", cfg=small_config(20))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            field = app.query_one("#cfg-model-width", Input)
            for typed in MARKUP:
                field.focus()
                field.value = ""
                await pilot.press(*typed)
                await pilot.pause(0.05)
                assert app.is_running and app.return_code is None
                error = app.query_one("#cfg-model-width-err", Static)
                assert error.display and typed in str(error.render())  # the reason quotes it, literally
            assert app.main.config_panel.current() is None  # and it is refused

    @aio
    async def test_a_user_preset_titled_with_markup_and_escapes_opens_bare_tui_lab(self, tmp_path, monkeypatch):
        users = tmp_path / "presets"
        monkeypatch.setenv("TUI_LAB_PRESETS", str(users))
        write_preset(users, "aaa-evil", EVIL_TITLE, lesson="line one [bold] \x1b[31mred\nline two [/]")
        app = LabApp(open_picker=True)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker), 10)
            await pilot.pause(0.2)
            text = "\n".join(screen_lines(app))
            assert "[/] evil [@click=app.quit]" in text and "pwned" not in text  # the picker and its preview
            assert "line one [bold] red" in text
            screen_is_clean(app)
            await pilot.press("enter")  # aaa-evil sorts first: loaded
            await wait_for(pilot, lambda: app.lab.preset == "aaa-evil", 5)
            await pilot.press("question_mark")  # its lesson, titled with it
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5)
            await pilot.pause(0.1)
            text = "\n".join(screen_lines(app))
            assert "aaa-evil:" in text and "[/] evil" in text and "line two [/]" in text
            screen_is_clean(app)
            assert app.is_running and app.return_code is None

    @aio
    async def test_notifications_show_markup_and_lose_escapes(self):
        app = LabApp(preset_name="tiny", cfg=small_config(20))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            app.notify("[/] boom \x1b]0;pwned\x07", title="[@click=app.quit] t\x1b[2J", severity="error")
            await pilot.pause(0.3)
            (shown,) = list(app._notifications)
            assert shown.markup is False  # Textual would parse the message: '[/]' was a MarkupError
            assert shown.message == "[/] boom " and shown.title == "[@click=app.quit] t"
            assert app.is_running and app.return_code is None

    def test_no_control_character_is_drawn_whatever_a_widget_holds(self):
        from rich.segment import Segment
        from textual.color import Color

        segments = [Segment("a\x1b]0;x\x07b"), Segment("\x1b[2J", None, [(1,)]), Segment("plain")]
        out = PrintableOnly().apply(segments, Color(0, 0, 0))
        assert [s.text for s in out] == ["a]0;xb", "\x1b[2J", "plain"]  # text cleaned, real control codes kept
        assert PrintableOnly().apply(segments[2:], Color(0, 0, 0)) == segments[2:]


# ---------------------------------------------------------------------------------------------------------
# Modal screens close once


class TestDismissOnce:
    @aio
    async def test_two_enters_in_one_read_in_the_preset_picker(self):
        app = LabApp(open_picker=True)
        loaded: list[str] = []
        original = app.load_config
        app.load_config = lambda cfg, name: (loaded.append(name), original(cfg, name))  # type: ignore[method-assign]
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker), 10)
            await pilot.pause(0.2)
            for _ in range(3):  # queued before the first is handled, as one read of the terminal delivers them
                app.post_message(events.Key("enter", "\r"))
            await pilot.pause(0.5)
            assert app.is_running and app.return_code is None
            assert app.screen is app.main and len(app.screen_stack) == 1
            assert len(loaded) == 1  # the picker's answer was taken once

    @pytest.mark.parametrize("opener", ["action_lesson", "action_help", "action_presets", "action_pick_baseline"])
    @aio
    async def test_two_escapes_close_a_modal_once(self, opener):
        app = LabApp(preset_name="tiny", cfg=small_config(20))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            getattr(app, opener)()
            await wait_for(pilot, lambda: app.screen is not app.main, 5)
            await pilot.pause(0.1)
            for _ in range(3):
                app.post_message(events.Key("escape", "\x1b"))
            await pilot.pause(0.4)
            assert app.is_running and app.screen is app.main and len(app.screen_stack) == 1

    @aio
    async def test_two_enters_in_the_command_palette_run_the_command_once(self):
        app = LabApp(preset_name="tiny", cfg=small_config(20))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            app.action_command_palette()
            await wait_for(pilot, lambda: app.screen is not app.main, 5)
            await pilot.press(*"Next view")
            await pilot.pause(0.5)  # the palette searches in the background
            before = app.main.view_index
            for _ in range(3):
                app.post_message(events.Key("enter", "\r"))
            await pilot.pause(0.5)
            assert app.is_running and app.screen is app.main and len(app.screen_stack) == 1
            assert app.main.view_index == before + 1  # once

    @aio
    async def test_a_modal_dismissed_twice_hands_back_one_result(self):
        app = LabApp(preset_name="tiny", cfg=small_config(20))
        results: list[object] = []
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            screen = HelpScreen()
            app.push_screen(screen, results.append)
            await pilot.pause(0.1)
            screen.dismiss("a")
            screen.dismiss("b")
            await pilot.pause(0.2)
            assert results == ["a"] and app.screen is app.main


# ---------------------------------------------------------------------------------------------------------
# Terminal input Textual chokes on


class TestTerminalInput:
    def test_bytes_that_are_not_utf8_are_dropped(self):
        decode = decoder()
        assert decode(b"a\xb8b\xff") == "ab"
        assert decode(b"\xe4") + decode(b"\xb8\xa0!") == "丠!"  # a character split between two reads still arrives

    def keys(self, data: str) -> list[str]:
        parser = SafeXTermParser()
        out = list(parser.feed(data))
        time.sleep(0.15)  # the escape key's timeout
        out += list(parser.tick())
        return [e.key for e in out if isinstance(e, events.Key)]

    @pytest.mark.parametrize(
        "sequence",
        ["\x1b[9999999999999999999A", "\x1b[1114112u", "\x1b[99999999;5u", "\x1b[1;1:99999999999u"],
    )
    def test_a_sequence_the_parser_fails_on_is_dropped_and_the_keys_around_it_arrive(self, sequence):
        assert self.keys(f"a{sequence}b") == ["a", "b"]

    def test_an_escape_sequence_in_a_paste_presses_no_keys(self):
        parser = SafeXTermParser()
        out = list(parser.feed("a\x1b[200~[/] \x1b]0;pwned\x07 x\x1b[201~b"))
        time.sleep(0.15)
        out += list(parser.tick())
        assert [e.key for e in out if isinstance(e, events.Key)] == ["a", "b"]  # Textual: p w n e d pressed too
        (paste,) = [e for e in out if isinstance(e, events.Paste)]
        assert paste.text.startswith("[/] ")

    def test_a_paste_that_never_ends_stops_swallowing_keys(self, monkeypatch):
        from tui_lab.ui import safe_terminal

        monkeypatch.setattr(safe_terminal, "PASTE_IDLE_S", 0.1)
        parser = SafeXTermParser()
        out = list(parser.feed("a\x1b[200~half a paste, then the connection stalls"))
        time.sleep(0.2)
        out += list(parser.tick())  # the stray paste start is given up
        out += list(parser.feed("q"))
        time.sleep(0.15)
        out += list(parser.tick())
        assert [e.key for e in out if isinstance(e, events.Key)] == ["a", "q"]  # Textual: q pasted, never pressed

    def test_absurd_events_never_reach_the_app(self):
        assert sane(events.Resize.from_dimensions((99999, 99999), None)) is None
        assert sane(events.Resize.from_dimensions((0, 24), None)) is None
        assert sane(events.Resize.from_dimensions((120, 36), None)) is not None
        pasted = sane(events.Paste("[/] \x1b]0;pwned\x07ok\nline"))
        assert pasted.text == "[/] ok\nline"

    @pytest.mark.skipif(sys.platform == "win32", reason="a pty")
    def test_the_real_app_survives_hostile_bytes_while_training(self, tmp_path):
        env = term_env({"TUI_LAB_RUNS": str(tmp_path / "runs")})
        argv = [sys.executable, "-m", "tui_lab", "--preset", "relu-he", "--set", "train.steps=1000000",
                "--set", "model.width=8", "--set", "data.samples=128", "--set", "train.device=cpu"]  # fmt: skip
        p = PtyProcess(argv, env=env)
        try:
            assert p.wait_for("Config", 60) is not None
            p.write(b"r")
            assert p.wait_for(r"running", 30) is not None
            for data in (b"\xb8", b"\x1b[9999999999999999999A", b"\xff\xfe\xe2\x82", b"\x1b[1114112u",
                         b"\x1b[48;99999;99999;0;0t", b"\x1b[48;1500;1500;0;0t",  # forged in-band resizes
                         b"\x1b[200~[/] [@click=app.quit] \x1b]0;pwned\x07\x1b[201~",
                         b"\x1b[<0;99999999999;5M"):  # fmt: skip
                p.write(data)
                p.drain(0.2)
                assert p.proc.poll() is None, data
            since = len(p.buffer)
            p.write(b"3")  # still reading keys: view 3 (Curves) comes up
            assert p.wait_for(r"Loss / accuracy", 10, since=since) is not None
            p.write(b"q")
            deadline = time.monotonic() + 15
            while p.proc.poll() is None and time.monotonic() < deadline:
                p.drain(0.1)
            assert p.proc.poll() == 0
            assert "pwned" not in visible(bytes(p.buffer)) and "Traceback" not in visible(bytes(p.buffer))
        finally:
            if p.proc.poll() is None:
                p.proc.kill()


# ---------------------------------------------------------------------------------------------------------
# A crash anyway: non-zero, one line, the run directory finished


CRASH = """
import sys
from tui_lab.ui.app import LabApp
def boom(self):
    raise RuntimeError("boom [/] \\x1b]0;pwned\\x07")
LabApp.action_next_view = boom
from tui_lab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="a pty")
def test_a_crash_exits_non_zero_with_one_line_and_the_run_stopped(tmp_path):
    from tui_lab.core.runlog import read_summary

    runs = tmp_path / "runs"
    env = term_env({"TUI_LAB_RUNS": str(runs), "TUI_LAB_DEBUG": ""})
    argv = [sys.executable, "-c", CRASH, "--preset", "relu-he", "--set", "train.steps=1000000",
            "--set", "model.width=8", "--set", "data.samples=128", "--set", "train.device=cpu"]  # fmt: skip
    p = PtyProcess(argv, env=env)
    try:
        assert p.wait_for("Config", 60) is not None
        p.write(b"r")
        assert p.wait_for(r"running", 30) is not None
        since = len(p.buffer)
        p.write(b"v")
        deadline = time.monotonic() + 20
        while p.proc.poll() is None and time.monotonic() < deadline:
            p.drain(0.1)
        assert p.proc.poll() == 1
        after = visible(bytes(p.buffer[since:]))
        assert "tui-lab: internal error: RuntimeError: boom [/]" in after
        assert "Traceback" not in after and "pwned" not in after
        (run_dir,) = runs.iterdir()
        assert read_summary(run_dir)["status"] == "stopped"
    finally:
        if p.proc.poll() is None:
            p.proc.kill()


# ---------------------------------------------------------------------------------------------------------
# Escapes on stdout


def test_tui_lab_presets_prints_a_hostile_title_harmlessly(tmp_path):
    users = tmp_path / "presets"
    write_preset(users, "evil", EVIL_TITLE)
    env = {**os.environ, "TUI_LAB_PRESETS": str(users), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tui_lab", "presets"], env=env, capture_output=True, text=True)
    assert out.returncode == 0
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("evil ")]
    assert "[/] evil [@click=app.quit]" in line and not bad(line) and "pwned" not in line


# ---------------------------------------------------------------------------------------------------------
# Key storms the screen must keep up with


@aio
async def test_a_modal_over_a_training_run_freezes_the_panels_below_until_it_closes():
    """Under a modal screen Textual repaints the whole dimmed screen for any change below it (100-200 KB/s, keys
    answered seconds late on a loaded machine): the panels wait until it closes, then catch up."""
    app = LabApp(preset_name="tiny", cfg=small_config(1_000_000))
    async with app.run_test(size=(120, 36)) as pilot:
        await panel_ready(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.lab.run.bridge.snapshots >= 2, 30)
        app.action_help()
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
        await pilot.pause(0.3)
        drawn, before = app.main.status.frame, app.lab.run.bridge.snapshots
        await pilot.pause(1.0)
        assert app.lab.run.bridge.snapshots > before  # it trains on
        assert app.main.status.frame is drawn  # but nothing below the help is redrawn
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.main.status.frame is not drawn, 5)
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.training.busy, 10)


@aio
async def test_view_keys_mashed_arrange_the_panels_once():
    app = LabApp(preset_name="tiny", cfg=small_config(20))
    calls = 0
    async with app.run_test(size=(100, 30)) as pilot:
        await panel_ready(pilot, app)
        arrange = app.main.arrange_panels

        def counting(*args):
            nonlocal calls
            calls += 1
            arrange(*args)

        app.main.arrange_panels = counting  # type: ignore[method-assign]
        for key in "12345" * 8:
            app.post_message(events.Key(key, key))
        handled = threading.Event()
        app.call_later(handled.set)
        await wait_for(pilot, handled.is_set, 10)
        await pilot.pause(0.1)
        assert app.main.view_index == 4 and calls <= 2  # 40 keys, the last one's view, arranged once or twice
        assert app.query_one("#p-learned").display  # view 5 is on screen


# ---------------------------------------------------------------------------------------------------------
# r/x/n storms


def training_threads() -> int:
    return sum(t.name == "tui-lab-training" for t in threading.enumerate())


@aio
async def test_start_stop_new_storms_leave_one_thread_and_no_empty_run_directories(runs_dir):
    """200 rounds of r x n mashed (posted at once, as a terminal delivers keys read together): a run directory
    only for each run that began, never two training threads, every thread gone after, the next run at once."""
    app = LabApp(preset_name="tiny", cfg=small_config(1_000_000))
    runs: list[LiveRun] = []
    submit = app.training.submit
    app.training.submit = lambda job: (runs.append(job.__self__), submit(job))  # type: ignore[method-assign]
    most, sampling = 0, True

    def sample() -> None:
        nonlocal most
        while sampling:
            most = max(most, training_threads())
            time.sleep(0.001)

    async with app.run_test(size=(120, 36)) as pilot:
        await panel_ready(pilot, app)
        from tui_lab.core import trainer  # noqa: F401 - torch, as the app's prewarm imports it

        await wait_for(pilot, lambda: not any(t.name == "tui-lab-prewarm" for t in threading.enumerate()), 30)
        baseline = threading.active_count()
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for i in range(200):
                for key in "rxn":
                    app.post_message(events.Key(key, key))
                if i % 10 == 9:
                    await pilot.pause(0.01)
            app.post_message(events.Key("x", "x"))
            handled = threading.Event()
            app.call_later(handled.set)  # queued behind the keys: every key was handled when it runs
            await wait_for(pilot, lambda: handled.is_set() and not app.training.busy, 60)
        finally:
            sampling = False
            sampler.join()
        await wait_for(pilot, lambda: threading.active_count() <= baseline, 10)  # threads back to idle
        assert most == 1  # one training thread at a time
        started = [run for run in runs if run.started]
        made = list(runs_dir.iterdir()) if runs_dir.exists() else []
        assert len(made) == len(started) < len(runs)  # a run directory only for a run that began
        assert {run.run_dir for run in started} == set(made)
        assert all(run.done.is_set() for run in started)  # every one that began was joined
        assert all(run.state in ("stopped", "completed") for run in runs)

        last = app.lab.run
        t0 = time.monotonic()
        await pilot.press("r")
        await wait_for(pilot, lambda: app.lab.run is not last and app.lab.run.bridge.snapshots >= 1, 10)
        assert time.monotonic() - t0 < 1.0 + 2.5  # at once: pilot.press itself waits ~2 s for the screen
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.training.busy, 10)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30))
def test_any_text_in_a_live_run_name_is_drawn_clean(text):
    """The status line, the findings and the panels take a run's name, message and directory as text."""
    from tui_lab.core.run import RunMeta, RunResult

    async def go():
        app = LabApp(preset_name=text, cfg=small_config(20))
        async with app.run_test(size=(100, 30)) as pilot:
            run = LiveRun.replay(small_config(20), text, RunMeta(layers=["L1"]), [], paused=False,
                                 result=RunResult("failed", 0, message=text))  # fmt: skip
            app.show_run(run)
            await pilot.pause(0.1)
            screen_is_clean(app)
            assert app.is_running

    import asyncio

    asyncio.run(go())


def test_a_toast_mounted_after_its_time_ran_out_does_not_freeze_the_app():
    """Textual spins forever on a toast whose notification expired before it mounted (docs/upstream/); the fuzz
    froze the app this way once in ten minutes. In a child process: without the fix it never ends."""
    script = """
import time
from tui_lab.ui.app import LabApp
from textual.notifications import Notification
from textual.widgets._toast import Toast

class Demo(LabApp):
    def on_mount(self):
        super().on_mount()
        expired = Notification("late", timeout=1.0)
        expired.raised_at = time.time() - 5
        self.screen.mount(Toast(expired))
        self.set_timer(0.5, lambda: self.exit(0))

import asyncio
async def main():
    app = Demo()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.0)
    print("answered")
asyncio.run(main())
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "answered" in proc.stdout, proc.stderr[-2000:]


@aio
async def test_a_long_paste_into_a_picker_filter_is_cut_to_its_bound():
    app = LabApp(open_picker=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker), 10)
        await pilot.pause(0.3)
        field = app.screen.filter_field()
        field.insert_text_at_cursor("deep " * 2000)
        await pilot.pause(0.3)
        assert len(field.value) <= 80


@aio
async def test_a_mouse_press_and_release_on_a_toast_leaves_the_app_answering():
    """A press on a toast removes it; Textual's text selection then asked the gone widget for its region
    (AttributeError, the app died). The lab has no mouse selection (LabApp.ALLOW_SELECT)."""
    app = LabApp(preset_name="tiny", cfg=small_config(50))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await panel_ready(pilot, app)
        app.notify("a toast to press on", timeout=30)
        await wait_for(pilot, lambda: bool(app.screen.query("Toast")), 5)
        await pilot.pause(0.2)
        toast = app.screen.query_one("Toast")
        where = (toast.region.x + 2, toast.region.y + 1)
        toast.remove()  # as when its time runs out: gone from the DOM, still on the last frame
        await pilot.mouse_down(offset=where)
        await pilot.pause(0.2)
        await pilot.mouse_up(offset=where)
        await pilot.click(offset=where)
        await pilot.pause(0.2)
        await pilot.press("escape", "h")  # the click may have landed in a config field
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
    assert not app.crash and app.return_code in (None, 0)


@aio
async def test_a_long_paste_into_a_config_field_is_bounded_and_its_reason_stays_short():
    """A pasted page of text in a config field was echoed whole by its reason and the toast: re-laid out on
    every frame it kept the app busy for a minute under the fuzz. The field is bounded; the echo is cut."""
    app = LabApp(preset_name="tiny", cfg=small_config(50))
    async with app.run_test(size=(100, 30)) as pilot:
        await panel_ready(pilot, app)
        await pilot.press("1")
        field = app.query_one("#cfg-model-width", Input)
        field.focus()
        await pilot.pause(0.1)
        field.post_message(events.Paste("x" * 5000))
        await pilot.pause(0.3)
        assert len(field.value) <= 200
        field.value = ""
        field.post_message(events.Paste("y" * 190))
        error = app.query_one("#cfg-model-width-err", Static)
        await wait_for(pilot, lambda: "yyy" in str(error.render()), 5)
        reason = str(error.render())
        assert "model.width" in reason and "..." in reason
        assert len(reason) < 150, reason


@aio
async def test_opening_and_closing_modals_does_not_keep_the_old_key_bars_alive():
    """Each modal rebuilds the key bar; Textual kept every old bar's keys alive through a data binding (~0.5 MB a
    modal: the fuzz's session grew ~50 MB a minute). LabFooter drops them (ui/components/footer.py)."""
    import gc

    from textual.widgets._footer import FooterKey

    def key_bars_alive() -> int:
        gc.collect()
        return sum(type(o) is FooterKey for o in gc.get_objects())  # type(): no lazy module attribute asked

    async def open_and_close_help(pilot, times: int) -> None:
        for _ in range(times):
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), 5)
        await pilot.pause(0.3)

    app = LabApp(preset_name="tiny", cfg=small_config(50))
    async with app.run_test(size=(120, 36)) as pilot:
        await panel_ready(pilot, app)
        await open_and_close_help(pilot, 3)
        settled = key_bars_alive()
        await open_and_close_help(pilot, 15)
        assert key_bars_alive() <= settled + 10  # was +15 x ~20 keys


@aio
async def test_every_modal_screen_is_opaque_so_the_screen_below_is_not_redrawn_under_it():
    """Over a translucent modal Textual re-renders the whole screen below on every change of the modal, uncached;
    with live panels below and resizes coming in, the long fuzz saw the app busy for minutes, keys unanswered."""
    app = LabApp(preset_name="tiny", cfg=small_config(50))
    async with app.run_test(size=(100, 30)) as pilot:
        await panel_ready(pilot, app)
        for key in ["h", "l", "question_mark", "o", "ctrl+p"]:
            await pilot.press(key)
            await wait_for(pilot, lambda: app.screen is not app.main, 5)
            assert app.screen.styles.background.a == 1, (key, type(app.screen).__name__)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.main, 5)


@aio
async def test_page_keys_in_a_picker_whose_list_just_changed_do_not_crash():
    """Textual's OptionList pages through lines it builds at its next layout: PgUp right after the list changed
    was `KeyError: 0` (the fuzz, twice). The move goes to the first or last option instead."""
    app = LabApp(open_picker=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker), 10)
        await pilot.pause(0.3)
        picker = app.screen
        listing = picker.listing
        for query, key in [("deep", "page_up"), ("", "page_down"), ("re", "page_up"), ("x", "page_down")]:
            listing.highlighted = min(2, listing.option_count - 1) if listing.option_count else None
            picker.refill(query)  # no layout in between, as when keys arrive in one read
            listing.action_page_up() if key == "page_up" else listing.action_page_down()
            await pilot.pause(0.05)
        await pilot.press("escape")
    assert not app.crash


@aio
async def test_a_storm_of_notifications_keeps_a_few_toasts_and_one_of_each_text():
    """Every toast relays out and repaints the screen as it comes and goes; the fuzz's key storms kept hundreds of
    them alive and the app busy for minutes. At most LabApp.MAX_TOASTS, the same text once."""
    app = LabApp(preset_name="tiny", cfg=small_config(50))
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await panel_ready(pilot, app)
        for i in range(40):
            app.notify("already running: p pauses, x stops, n starts a new run")
            app.notify(f"model.width = {i}: invalid", severity="error")
        await pilot.pause(0.5)
        texts = [str(n.message) for n in app._notifications]
        assert len(texts) <= LabApp.MAX_TOASTS
        assert len(app.screen.query("Toast")) <= LabApp.MAX_TOASTS
        assert texts.count("already running: p pauses, x stops, n starts a new run") == 1
        assert "model.width = 39: invalid" in texts  # the newest stays


def test_a_size_report_from_the_input_is_the_terminals_own_size_or_nothing():
    """A forged in-band resize (CSI 48;1500;1500;0;0t) had the app lay out and repaint 1500x1500 cells: a core
    busy for minutes and keys unanswered, the long fuzz's hangs. A report is believed only from a terminal that
    agreed to send them, and then as the size the terminal really has."""
    from textual.drivers.linux_driver import LinuxDriver
    from textual.geometry import Size

    from tui_lab.ui.safe_terminal import safe_driver

    driver = object.__new__(safe_driver(LinuxDriver))
    driver._get_terminal_size = lambda: (100, 30)
    forged = events.Resize(Size(1500, 1500), Size(1500, 1500))
    driver._in_band_window_resize = False  # the terminal never agreed to mode 2048
    assert driver._real_size(forged) is None
    driver._in_band_window_resize = True
    assert tuple(driver._real_size(forged).size) == (100, 30)
