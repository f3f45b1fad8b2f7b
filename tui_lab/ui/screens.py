"""Modal screens: the preset picker, the lesson, and the list of earlier runs (to pin as a baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option


class PresetPicker(ModalScreen[str | None]):
    """Name and title of every preset, the lesson of the highlighted one; enter loads it."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "close"), Binding("enter", "pick", "load", show=True)]

    def __init__(self, lang: str = "en") -> None:
        super().__init__()
        self.lang = lang
        self.refs: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        from tui_lab.core.presets import discover, read_title

        self.refs = discover()
        options = []
        for name, ref in self.refs.items():
            title = read_title(ref.path, self.lang)
            suffix = " (yours)" if ref.source == "user" else ""
            options.append(Option(f"{name}{suffix}\n  [dim]{title}[/dim]", id=name))
        with Vertical(id="picker-box"):
            yield Static("Presets · ↑↓ choose · enter load · esc close", classes="modal-title")
            with Horizontal():
                yield OptionList(*options, id="preset-list")
                with VerticalScroll(id="preset-preview-box"):
                    yield Static("", id="preset-preview")
        yield Footer()

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if ol.option_count:
            ol.highlighted = 0
        ol.focus()

    @on(OptionList.OptionHighlighted)
    def _preview(self, event: OptionList.OptionHighlighted) -> None:
        name = event.option.id
        ref = self.refs.get(name or "")
        preview = self.query_one("#preset-preview", Static)
        if ref is None:
            preview.update("")
            return
        try:
            from tui_lab.core.config import load_config

            cfg = load_config(ref.path)
            m, o = cfg.model, cfg.optim
            head = (
                f"[b]{cfg.title_for(self.lang) or name}[/b]\n[dim]{m.arch} depth {m.depth} width {m.width} · "
                f"{m.activation} · {m.init} · norm {m.norm} · {o.name} lr {o.lr:g} · {cfg.train.steps} steps[/dim]\n"
            )
            preview.update(head + "\n" + _escape(reflow(cfg.lesson_for(self.lang))))
        except Exception as exc:  # noqa: BLE001 - a broken preset is shown, not raised
            preview.update(f"[red]{_escape(str(exc))}[/red]")

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None:
            self.dismiss(ol.get_option_at_index(ol.highlighted).id)


class LessonScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "close")]

    def __init__(self, title: str, lesson: str) -> None:
        super().__init__()
        self.title_text = title
        self.lesson = lesson

    def compose(self) -> ComposeResult:
        with Vertical(id="lesson-box"):
            yield Static(self.title_text or "Lesson", classes="modal-title")
            with VerticalScroll():
                yield Static(
                    reflow(self.lesson) or "This configuration has no lesson text. Load a preset with l.",
                    id="lesson-text",
                    markup=False,
                )
        yield Footer()


class RunPicker(ModalScreen[Path | None]):
    """Earlier run directories (newest first): enter pins one as the baseline."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "close")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        from tui_lab.core.runlog import read_summary

        runs = []
        try:
            runs = sorted((p for p in self.root.iterdir() if (p / "config.toml").is_file()), reverse=True)
        except OSError:
            pass
        options = []
        for p in runs[:200]:
            s = read_summary(p) or {}
            status = s.get("status", "?")
            options.append(Option(f"{p.name}  [dim]{status}, {s.get('steps', 0)} steps[/dim]", id=str(p)))
        with Vertical(id="picker-box"):
            yield Static(f"Pin an earlier run as the baseline · {self.root}", classes="modal-title")
            if options:
                yield OptionList(*options, id="run-list")
            else:
                yield Static(f"no runs under {self.root} yet", id="run-list-empty")
        yield Footer()

    def on_mount(self) -> None:
        for ol in self.query(OptionList):
            if ol.option_count:
                ol.highlighted = 0
            ol.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id or ""))


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


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
