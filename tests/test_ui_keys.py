"""Finding one's way by keyboard: the help screen made from the command table (and the README's key table
checked against it), moving through the config form with ↑/↓ and seeing which field has the focus, the pickers
filtering as you type, and screenshots landing in the run directory."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from textual.widgets import OptionList

from tui_lab.ui import commands
from tui_lab.ui.app import LabApp
from tui_lab.ui.components.config_panel import FOCUS_MARK, ConfigPanel, key_label
from tui_lab.ui.screens import HelpScreen, PresetPicker, RunPicker, help_renderable

from pilot import aio, panel_ready, screen_lines, wait_for
from support import ROOT, small_config


def plain(renderable, width: int = 70) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def screen_text(app) -> str:
    return "\n".join(screen_lines(app))


class TestHelp:
    def test_every_key_of_the_table_is_in_the_help(self):
        text = plain(help_renderable(), width=200)
        for title in commands.GROUPS.values():
            assert title in text
        for command in commands.COMMANDS:
            line = " / ".join(command.key_texts)
            assert re.search(rf"^{re.escape(line)} +{re.escape(command.what or command.label)}", text, re.M), line
        # every key the app binds (its own table, nothing else) is named
        bound = {key for b in LabApp.BINDINGS for key in b.key.split(",")}
        named = {key for c in commands.COMMANDS for key in c.keys.split(",")}
        assert bound <= named

    def test_readme_key_table_is_the_command_table(self):
        readme = (ROOT / "README.md").read_text()
        lines = readme.split("### Keys in the TUI", 1)[1].splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("|"))
        end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
        table = "\n".join(lines[start:end])
        assert table == commands.readme_table(), (
            "the README's key table differs from ui/commands.py: paste the output of `python -m tui_lab.ui.commands`"
        )

    @aio
    async def test_f1_opens_the_help_it_scrolls_and_esc_closes_it(self):
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "Keys · " in text and "Run" in text
            first = commands.COMMANDS[0]
            assert re.search(rf"\b{first.key_texts[0]} +{re.escape(first.what[:30])}", text)
            last = commands.grouped()[-1][1][-1]
            assert last.what[:30] not in text  # 80x24 shows the top; the rest scrolls
            await pilot.press("end")
            await pilot.pause(0.2)
            assert last.what[:30] in screen_text(app)
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert app.screen is app.screen_stack[0]
            await pilot.press("h")  # h too, and h (or F1) closes it again
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
            await pilot.press("h")
            await pilot.pause(0.1)
            assert app.screen is app.screen_stack[0]
            await pilot.press("question_mark")  # ? stays the lesson
            await pilot.pause(0.1)
            assert type(app.screen).__name__ == "LessonScreen"


class TestConfigForm:
    @aio
    async def test_down_and_up_move_between_fields_and_the_focused_row_is_marked(self):
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            panel = app.query_one(ConfigPanel)
            await pilot.press("e")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "cfg-seed", 5)
            await pilot.press("down")
            await pilot.pause(0.1)
            assert app.focused.id == "cfg-model-arch" and panel.focused_key == "model.arch"
            marked = [row for row in screen_lines(app) if FOCUS_MARK in row]
            assert len(marked) == 1 and key_label("model.arch", focused=True) in marked[0]
            assert app.query_one("#cfg-model-arch-key").parent.has_class("-focused")
            assert not app.query_one("#cfg-seed-key").parent.has_class("-focused")

            # a closed drop-down: ↓ is the next field, not its list
            await pilot.press("down")
            await pilot.pause(0.1)
            assert app.focused.id == "cfg-model-depth" and not app.query_one("#cfg-model-arch").expanded
            assert (
                next(row for row in screen_lines(app) if FOCUS_MARK in row)
                .lstrip("│")
                .startswith(key_label("model.depth", focused=True))
            )
            await pilot.press("down")  # in an input ↓ is free: the next field
            await pilot.pause(0.1)
            assert app.focused.id == "cfg-model-width"
            await pilot.press("up", "up")
            await pilot.pause(0.1)
            assert app.focused.id == "cfg-model-arch"

            # an open drop-down: ↑/↓ move in its list, enter picks, and the form goes on from there
            select = app.query_one("#cfg-model-arch")
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert select.expanded and panel.focused_key == "model.arch"
            overlay = app.focused
            before = overlay.highlighted
            await pilot.press("down")
            await pilot.pause(0.1)
            assert select.expanded and overlay.highlighted == before + 1
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert not select.expanded and app.focused is select and select.value == "resmlp"
            await pilot.press("tab")  # tab still works
            await pilot.pause(0.1)
            assert app.focused.id == "cfg-model-depth" and panel.focused_key == "model.depth"
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert app.focused is None and panel.focused_key is None
            assert not [row for row in screen_lines(app) if FOCUS_MARK in row]


class TestPickers:
    @aio
    async def test_typing_filters_the_presets_by_name_and_title(self):
        from tui_lab.core.presets import discover, read_title

        titles = {name: read_title(ref.path, "en") for name, ref in discover().items()}
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker), 5)
            await pilot.pause(0.1)
            ol = app.screen.query_one(OptionList)
            assert ol.option_count == len(titles)
            await pilot.press(*"relu")
            await pilot.pause(0.1)
            shown = [ol.get_option_at_index(i).id for i in range(ol.option_count)]
            expected = [n for n, t in titles.items() if "relu" in n.lower() or "relu" in t.lower()]
            assert shown == expected and len(expected) < len(titles)
            assert any("relu" not in n for n in shown)  # a title matches too
            await pilot.press("down")  # the field keeps the keys; ↓ moves in the list
            await pilot.pause(0.1)
            assert ol.highlighted == 1
            await pilot.press(*" zzz")
            await pilot.pause(0.1)
            assert ol.option_count == 1 and ol.get_option_at_index(0).disabled
            assert str(ol.get_option_at_index(0).prompt) == "no preset matches “relu zzz”"
            assert "no preset matches" in screen_text(app)
            await pilot.press("enter")  # nothing to pick
            await pilot.pause(0.1)
            assert isinstance(app.screen, PresetPicker)
            for _ in range(4):
                await pilot.press("backspace")
            await pilot.pause(0.1)
            assert ol.option_count == len(expected)
            await pilot.press("down", "enter")
            await pilot.pause(0.2)
            assert app.screen is app.screen_stack[0] and app.lab.preset == expected[1]

    @aio
    async def test_typing_filters_the_earlier_runs(self, runs_dir):
        for name in ("20250101-sigmoid", "20250102-relu", "20250103-relu-bn"):
            (runs_dir / name).mkdir(parents=True)
            (runs_dir / name / "config.toml").write_text("")
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            picked: list[Path] = []
            app.pin_run_dir = picked.append  # what enter would pin
            await pilot.press("o")
            await wait_for(pilot, lambda: isinstance(app.screen, RunPicker), 5)
            ol = app.screen.query_one(OptionList)
            assert ol.option_count == 3
            await pilot.press(*"relu")
            await pilot.pause(0.1)
            assert [ol.get_option_at_index(i).id for i in range(ol.option_count)] == [
                str(runs_dir / "20250103-relu-bn"),
                str(runs_dir / "20250102-relu"),
            ]
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert picked == [runs_dir / "20250103-relu-bn"]


class TestScreenshot:
    @aio
    async def test_a_screenshot_lands_in_the_run_directory_and_the_notification_names_it(self, tmp_path, monkeypatch):
        from tui_lab.core.runlog import RunLog
        from tui_lab.core.trainer import Trainer

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/Downloads
        run_dir = tmp_path / "runs" / "shown"
        assert Trainer(small_config(10), sinks=[RunLog(run_dir)], preset="tiny").run().status == "completed"

        async def shot(app, pilot) -> Path:
            before = set(Path.cwd().rglob("*.svg"))
            app.clear_notifications()
            app.action_screenshot()
            await wait_for(pilot, lambda: set(Path.cwd().rglob("*.svg")) - before, 5)
            (svg,) = set(Path.cwd().rglob("*.svg")) - before
            await wait_for(pilot, lambda: app._notifications, 5)
            (note,) = list(app._notifications)
            assert str(svg) in note.message and note.severity == "information"
            assert "<svg" in svg.read_text()[:200]
            return svg

        app = LabApp(preset_name="tiny", cfg=small_config(10))
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            assert (await shot(app, pilot)).parent == tmp_path  # no run on screen: the current directory

        app = LabApp(show_dir=run_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            assert (await shot(app, pilot)).parent == run_dir  # `show DIR`: into DIR
