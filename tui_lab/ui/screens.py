"""Modal screens: the preset picker, the lesson, the keys (help), and the list of earlier runs (to pin as a
baseline). The two pickers filter as you type."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.command import CommandPalette
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tui_lab.core.fmt import printable
from tui_lab.core.i18n import _, ngettext
from tui_lab.core.run import RUN_STATUSES
from tui_lab.ui import commands, palette
from tui_lab.ui.components.footer import LabFooter


class Listing(OptionList):
    """An OptionList whose page moves survive a list that changed and is not laid out yet: Textual (8.2) looks the
    highlighted option up in lines it has not built (`KeyError: 0` from `_move_page`; PgUp/PgDn in a picker while
    its filter changes, found by benchmarks/fuzz_tui.py). The move then goes to the first or last option."""

    def _move_page(self, direction: Any) -> None:
        try:
            super()._move_page(direction)
        except (KeyError, IndexError):
            self.action_first() if direction < 0 else self.action_last()


class DismissOnce:
    """Mixed into a screen: it closes once. Two enters (or escapes) in one read of the terminal (a fast double
    tap, key repeat, a laggy link) reach it before the first has closed it, and a second dismiss would pop the
    screen below it (the main screen: ScreenStackError) and hand its callback a second result."""

    _dismissed = False
    is_active: bool

    def dismiss(self, result: Any = None) -> AwaitComplete:
        if self._dismissed or not self.is_active:
            return AwaitComplete.nothing()
        self._dismissed = True
        return super().dismiss(result)  # type: ignore[misc]


class Modal(DismissOnce, ModalScreen[Any]):
    """The app's modal screens (pickers, lesson, help)."""


class Palette(DismissOnce, CommandPalette):
    """Textual's command palette, closed once and running the chosen command once: a second enter that arrives
    before it closed is dropped (Textual's palette pops the screen below and runs the command again)."""

    @on(Input.Submitted)
    def _closed_already(self, event: Input.Submitted) -> None:
        if self._dismissed or not self.is_active:
            event.prevent_default()  # the palette's own handler (a subclass's runs first) is skipped
            event.stop()

    def _select_or_command(self, event: Any = None) -> None:
        if not self._dismissed and self.is_active:
            super()._select_or_command(event)


class Picker(Modal):
    """A list with a filter field above it: typing filters (every word must be in an entry's text), ↑/↓ move in
    the list while the field has the keys, enter picks the highlighted entry, esc closes."""

    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "close"),  # q only reaches here from the list: the field types it
        Binding("enter", "pick", "pick", show=True),
        Binding("down", "move('down')", show=False),
        Binding("up", "move('up')", show=False),
        Binding("pagedown", "move('page_down')", show=False),
        Binding("pageup", "move('page_up')", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        commands.translate_bindings(self)
        self.entries: list[tuple[str, Text, str]] = []  # (id, prompt, the text the filter searches)

    def filter_field(self) -> Input:
        # Bounded: a long paste would be matched against every entry on each change, the app busy for seconds.
        return Input(
            placeholder=_("type to filter"), id="picker-filter", compact=True, select_on_focus=False, max_length=80
        )

    def nothing(self, query: str) -> str:
        """What the list says when the filter leaves nothing."""
        return _("nothing matches “{query}”").format(query=query)

    def on_mount(self) -> None:
        self.refill("")
        self.query_one("#picker-filter", Input).focus()

    @property
    def listing(self) -> OptionList:
        return self.query_one(OptionList)

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.refill(event.value)

    def refill(self, query: str) -> None:
        """Show the entries that match `query`; the first is highlighted (a disabled line says when none is)."""
        ol = self.listing
        shown = [Option(prompt, id=key) for key, prompt, text in self.entries if matches(query, text)]
        ol.clear_options()
        if shown:
            ol.add_options(shown)
            ol.highlighted = 0
        else:
            ol.add_option(Option(Text(printable(self.nothing(query.strip())), style="italic"), disabled=True))
        self.highlight_changed(shown[0].id if shown else None)

    def highlight_changed(self, key: str | None) -> None:
        """The highlighted entry is now `key` (None: none)."""

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.highlight_changed(event.option.id)

    def action_move(self, how: str) -> None:
        """↑/↓/PgUp/PgDn in the filter field move in the list."""
        ol = self.listing
        move = {"down": ol.action_cursor_down, "up": ol.action_cursor_up, "page_down": ol.action_page_down,
                "page_up": ol.action_page_up}[how]  # fmt: skip
        move()  # Listing: a page move before the list is laid out again is safe

    @on(Input.Submitted, "#picker-filter")
    def _submitted(self) -> None:
        self.action_pick()

    def action_pick(self) -> None:
        ol = self.listing
        if ol.highlighted is not None:
            option = ol.get_option_at_index(ol.highlighted)
            if not option.disabled and option.id is not None:
                self.dismiss(self.picked(option.id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.picked(event.option.id))

    def picked(self, key: str) -> Any:
        return key


class PresetPicker(Picker):
    """Name and title of every preset, the lesson of the highlighted one; typing filters (names and titles),
    enter loads the highlighted one."""

    def __init__(self, lang: str = "en") -> None:
        super().__init__()
        self.lang = lang
        self.refs: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        from tui_lab.core.presets import discover, read_title

        skipped: list[str] = []  # a user preset that is a FIFO, a device or unreadable: left out, and said so
        self.refs = discover(warn=skipped.append)
        if skipped:
            more = len(skipped) - 1
            note = skipped[0] + (" " + _("(and {count} more)").format(count=more) if more else "")
            self.notify(printable(note), severity="warning", markup=False)
        for name, ref in self.refs.items():
            title = read_title(ref.path, self.lang)
            suffix = _(" (yours)") if ref.source == "user" else ""
            prompt = Text.assemble(printable(name) + suffix, "\n  ", (printable(title), "dim"))  # text, not markup
            self.entries.append((name, prompt, f"{name} {title}"))
        with Vertical(id="picker-box"):
            yield Static(
                _("Presets · type to filter · ↑↓ choose · enter load · esc close"), classes="modal-title", markup=False
            )
            with Horizontal():
                with Vertical(id="preset-left"):
                    yield self.filter_field()
                    yield Listing(id="preset-list")
                with VerticalScroll(id="preset-preview-box"):
                    yield Static("", id="preset-preview")
        yield LabFooter()

    def nothing(self, query: str) -> str:
        return _("no preset matches “{query}”").format(query=query)

    def highlight_changed(self, key: str | None) -> None:
        ref = self.refs.get(key or "")
        preview = self.query_one("#preset-preview", Static)
        if ref is None:
            preview.update("")
            return
        name = key
        try:
            from tui_lab.core.config import load_config

            cfg = load_config(ref.path)
            m, o = cfg.model, cfg.optim
            steps = _("{steps} steps").format(steps=cfg.train.steps)
            shape = (
                f"{m.arch} depth {m.depth} width {m.width} · {m.activation} · {m.init} · norm {m.norm} · "
                f"{o.name} lr {o.lr:g} · {steps}"
            )
            preview.update(  # a file's words: text, never markup or escape sequences
                Text.assemble(
                    (printable(cfg.title_for(self.lang) or name), "bold"), "\n", (printable(shape), "dim"), "\n\n",
                    printable(reflow(cfg.lesson_for(self.lang)), multiline=True),
                )
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a broken preset is shown, not raised
            preview.update(Text(printable(str(exc), multiline=True), "red"))


class LessonScreen(Modal):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "close")]

    def __init__(self, title: str, lesson: str) -> None:
        super().__init__()
        commands.translate_bindings(self)
        self.title_text = title
        self.lesson = lesson

    def compose(self) -> ComposeResult:
        with Vertical(id="lesson-box"):
            yield Static(printable(self.title_text) or _("Lesson"), classes="modal-title", markup=False)
            with VerticalScroll():
                yield Static(
                    printable(reflow(self.lesson), multiline=True)
                    or _("This configuration has no lesson text. Load a preset with l."),
                    id="lesson-text",
                    markup=False,
                )
        yield LabFooter()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()  # ↑/↓, PgUp/PgDn, Home/End scroll a long lesson at once


class RunPicker(Picker):
    """Earlier run directories (newest first): typing filters (names and status), enter pins one as the
    baseline; a sweep's directory is listed as one entry ("sweep: NAME (N runs)") that opens its table."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        for p, s in run_dirs(self.root):
            if SWEEP_RUNS in s:
                runs = ngettext("{count} run", "{count} runs", s[SWEEP_RUNS]).format(count=s[SWEEP_RUNS])
                label = _("sweep: {name} ({runs})").format(name=printable(p.name), runs=runs)
                self.entries.append((str(p), Text(label), f"{label} sweep"))
                continue
            status = s.get("status") if s.get("status") in RUN_STATUSES else "?"  # a damaged summary: unknown
            count = s.get("steps")
            steps = _("{steps} steps").format(steps=count if type(count) is int else "?")
            shown = Text.assemble(printable(p.name), "  ", (printable(f"{_(status)}, {steps}"), "dim"))
            self.entries.append((str(p), shown, f"{p.name} {status}"))
        with Vertical(id="picker-box"):
            yield Static(
                _("Pin an earlier run as the baseline · {root}").format(root=printable(self.root)),
                classes="modal-title",
                markup=False,
            )
            yield self.filter_field()
            yield Listing(id="run-list")
        yield LabFooter()

    def nothing(self, query: str) -> str:
        if not self.entries:
            return _("no runs under {root} yet").format(root=printable(self.root))
        return _("no run matches “{query}”").format(query=query)

    def picked(self, key: str) -> Path:
        return Path(key)


SWEEP_RUNS = "sweep_runs"  # in run_dirs' entry for a sweep's directory: how many runs it has


def run_dirs(root: Path, limit: int = 200) -> list[tuple[Path, dict[str, Any]]]:
    """The run directories under `root`, newest first, with their summaries ({}: none readable). One that cannot
    be read, or whose files are not regular files (a FIFO, a device, a directory), is left out: picking it
    could only fail, and looking at it must never hang or crash the app. A sweep's directory comes as
    {SWEEP_RUNS: how many runs it has}."""
    from tui_lab.core.errors import UserError
    from tui_lab.core.runlog import check_run_dir, read_summary
    from tui_lab.core.sweepdir import count_runs, is_sweep_dir
    from tui_lab.core.watched import MODEL_FILE

    try:
        names = sorted(os.listdir(root), reverse=True)
    except OSError:
        return []
    found = []
    for name in names:
        path = root / name
        try:
            if not any(os.path.lexists(path / name) for name in ("config.toml", MODEL_FILE)):  # a watched run too
                if is_sweep_dir(path):
                    found.append((path, {SWEEP_RUNS: count_runs(path)}))
                continue
            check_run_dir(path)
        except (OSError, UserError):
            continue
        found.append((path, read_summary(path) or {}))
        if len(found) >= limit:
            break
    return found


class HelpScreen(Modal):
    """Every key of the app by section, made from the command table (ui/commands.py); it scrolls."""

    BINDINGS = [Binding("escape,q,f1,h", "dismiss(None)", "close")]

    def __init__(self) -> None:
        super().__init__()
        commands.translate_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(_("Keys · ↑↓ PgUp PgDn scroll · esc close"), classes="modal-title", markup=False)
            with VerticalScroll(id="help-scroll"):
                yield Static(help_renderable(), id="help-text")
        yield LabFooter()

    def on_mount(self) -> None:
        for scroll in self.query("#help-scroll"):  # none when it is dismissed before it mounted (a key storm)
            scroll.focus()


KEY_COLUMN = 13  # "↑ / Shift+Tab"


def help_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(keys, what they do)]) in the language on screen, from the command table."""
    out = []
    for title, group in commands.grouped():
        rows = []
        for c in group:
            keys = " / ".join(_(k) if c.shown else k for k in c.key_texts)
            what = _(c.what) if c.what else _(c.label)
            rows.append((keys, f"{what}; {_(c.more)}" if c.more else what))
        out.append((_(title), rows))
    return out


def help_renderable():
    """The help screen's text: a title per section, then its keys and what they do (the text wraps beside the
    keys)."""
    from rich.console import Group
    from rich.table import Table

    parts: list[Any] = []
    for i, (title, rows) in enumerate(help_rows()):
        parts.append(Text(("\n" if i else "") + title, style=palette.style(palette.ACCENT, "bold")))
        grid = Table.grid(padding=(0, 2, 0, 0), expand=True)
        grid.add_column(width=KEY_COLUMN, no_wrap=True, style="bold")
        grid.add_column(ratio=1)
        for keys, what in rows:
            grid.add_row(keys, what)
        parts.append(grid)
    return Group(*parts)


def matches(query: str, text: str) -> bool:
    """Every word of `query` is somewhere in `text` (case-insensitive); an empty query matches everything."""
    text = text.casefold()
    return all(word in text for word in query.casefold().split())


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph so the text wraps to the screen's width; keep
    blank lines, list items and indented lines as they are."""
    out: list[str] = []
    for line in text.strip().splitlines():
        stripped = line.strip()
        starts_item = stripped[:1] in ("-", "*", "•") or (stripped[:2].rstrip(".)").isdigit() and stripped[1:2] in ".)")
        if out and out[-1] and stripped and not starts_item and not line.startswith((" ", "\t")):
            out[-1] += " " + stripped
        else:
            out.append(line.rstrip())
    return "\n".join(out)
