"""The Config panel: every key of the schema, a Select for choices and a validated Input for the rest.

The fields' values are parsed as `--set` values are (TOML literals) and validated by `parse_config`, so the
reasons shown under a field are the command line's words. An invalid panel refuses to start a run
(`current()` returns no config).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.lazy import Lazy
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from tui_lab.core.config import SECTIONS, LabConfig, config_to_dict, field_choices, parse_config, parse_value
from tui_lab.core.errors import ConfigError
from tui_lab.core.fmt import printable
from tui_lab.core.i18n import N_
from tui_lab.core.run import LIVE_KEYS
from tui_lab.ui.components.panel import Panel
from tui_lab.ui.frame import Frame
from tui_lab.ui.glyphs import G

SOURCE = "config"
FOCUS_MARK = "▸"  # before the focused field's key
FIELD_MAX_CHARS = 200  # longer than any value a config key takes (a path, a device name)


def _fields() -> list[tuple[str, type | None, tuple[str, ...]]]:
    """(dotted key, python type, choices) for every editable key, in file order."""
    out: list[tuple[str, type | None, tuple[str, ...]]] = [("seed", int, ())]
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            kind = info.annotation if info.annotation in (int, float, str) else None
            out.append((f"{section}.{name}", kind, field_choices(model, name)))
    return out


FIELDS = _fields()


def field_id(key: str) -> str:
    return "cfg-" + key.replace(".", "-")


KEY_OF_FIELD = {field_id(key): key for key, _kind, _choices in FIELDS}


def key_label(key: str, edited: bool = False, focused: bool = False) -> str:
    """A row's key column: the focus mark (or room for it), the key's name, '*' when edited."""
    return f"{FOCUS_MARK if focused else ' '} {key.split('.')[-1]}{'*' if edited else ''}"


class FieldSelect(Select[str], inherit_bindings=False):
    """A form's drop-down: enter or space opens it; ↑/↓ are the form's (the next or previous field) while it
    is closed, and move in the list while it is open (the open list has the focus then)."""

    BINDINGS = [Binding("enter,space", "show_overlay", "Show menu", show=False)]


def _get(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else repr(value)
    return str(value)


def _value(kind: type | None, text: str) -> Any:
    """A field's text as the value it stands for: a TOML literal (a bare word stays a string)."""
    text = text.strip()
    if kind is str:
        return text
    value = parse_value(text)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # '1' in a float field means 1.0
    return value


class ConfigPanel(Panel, VerticalScroll):
    """Editable configuration. `load(cfg)` fills it; `current()` validates it; read-only for a recorded run.
    A key whose value differs from the loaded preset is marked (*). While a run goes, Enter in one of the
    LIVE_KEYS fields (lr, momentum, weight_decay, clip_norm) sends the value to that run (`LiveChange`)."""

    BORDER_TITLE = N_("Config")
    BORDER_SUBTITLE = N_("e edit · esc leave · * edited")
    BINDINGS = [
        Binding("down", "move_field(1)", "next field", show=False),
        Binding("up", "move_field(-1)", "previous field", show=False),
    ]

    class Edited(Message):
        """The fields now hold `cfg` (None: invalid), `changed` keys differing from the loaded preset."""

        def __init__(self, cfg: LabConfig | None, changed: list[str]) -> None:
            super().__init__()
            self.cfg, self.changed = cfg, changed

    class LiveChange(Message):
        """Enter (or leaving the field) in a live key's field with a valid value: the running run takes it."""

        def __init__(self, key: str, value: float) -> None:
            super().__init__()
            self.key, self.value = key, value

    def __init__(self, cfg: LabConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = cfg
        self.errors: dict[str, str] = {}
        self.general: list[str] = []
        self._loading = False
        self.read_only = False
        self.ready = False  # the rows mount just after the first frame (see compose)
        self.focused_key: str | None = None  # the key whose field has the focus (its row is marked)

    def compose(self) -> ComposeResult:
        # The rows are most of the app's widgets: mounting them after the first frame brings that frame up
        # sooner. Until they are there, the panel stands for `base` (load, current and validate know it).
        yield Lazy(_Rows(self))

    def _rows_mounted(self) -> None:
        self.ready = True
        self.load(self.base)
        if self.read_only:
            self.set_read_only(True)
        if G.ascii:  # Textual draws a Select's arrows as ▼ and ▲
            for arrow, glyph in ((".down-arrow", G.select_down), (".up-arrow", G.select_up)):
                for widget in self.query(f"Select {arrow}").results(Static):
                    widget.update(glyph)

    def _compose_rows(self) -> ComposeResult:
        data = config_to_dict(self.base)
        section = ""
        for key, _kind, choices in FIELDS:
            head = key.split(".")[0] if "." in key else ""
            if head != section:
                section = head
                yield Static(f"[{section}]", classes="cfg-section", markup=False)
            value = _get(data, key)
            fid = field_id(key)
            with Horizontal(classes="cfg-row"):
                yield Label(key_label(key), classes="cfg-key", id=fid + "-key")
                if choices:
                    yield FieldSelect(
                        [(c, c) for c in choices],
                        value=value,
                        allow_blank=False,
                        compact=True,
                        id=fid,
                        classes="cfg-field",
                    )
                else:
                    # Bounded: no config value is this long, and a pasted novel would be re-laid out every frame.
                    yield Input(
                        _text(value),
                        compact=True,
                        id=fid,
                        classes="cfg-field",
                        select_on_focus=False,
                        max_length=FIELD_MAX_CHARS,
                    )
            # The reasons echo what was typed: text, never markup ('[/]' in a field would crash the app).
            yield Static("", id=fid + "-err", classes="cfg-error", markup=False)
        yield Static("", id="cfg-general", classes="cfg-error", markup=False)

    # -- filling and reading ------------------------------------------------------------------------------

    def load(self, cfg: LabConfig) -> None:
        """Show `cfg` in every field (e.g. a preset was picked)."""
        self.base = cfg
        if not self.ready:
            return
        data = config_to_dict(cfg)
        self._loading = True
        try:
            for key, _kind, choices in FIELDS:
                widget = self.query_one("#" + field_id(key))
                value = _get(data, key)
                if choices:
                    widget.value = value  # type: ignore[attr-defined]
                else:
                    widget.value = _text(value)  # type: ignore[attr-defined]
        finally:
            self._loading = False
        self.validate()

    def _data(self) -> dict[str, Any]:
        """The base configuration with every field's value in place (not validated yet)."""
        data = config_to_dict(self.base)
        for key, kind, choices in FIELDS:
            value = self.query_one("#" + field_id(key)).value  # type: ignore[attr-defined]
            *sections, name = key.split(".")
            node = data
            for section in sections:
                node = node[section]
            node[name] = value if choices else _value(kind, str(value))
        return data

    def current(self) -> LabConfig | None:
        """The edited configuration, or None when a field is invalid (the reasons are shown)."""
        return self.validate()

    def validate(self) -> LabConfig | None:
        if not self.ready:
            return self.base
        errors: dict[str, str] = {}
        general: list[str] = []
        cfg = None
        try:
            cfg = parse_config(self._data(), source=SOURCE)
        except ConfigError as exc:
            for problem in exc.problems:
                for key, _k, _c in FIELDS:
                    if problem.startswith(key + " ") or problem.startswith(key + ":"):
                        errors.setdefault(key, problem)
                        break
                else:
                    general.append(problem)
        for key, _k, _c in FIELDS:
            fid = field_id(key)
            err = self.query_one(f"#{fid}-err", Static)
            widget = self.query_one("#" + fid)
            message = errors.get(key, "")
            err.update(message and G.wrong + " " + printable(message))
            err.display = bool(message)
            widget.set_class(bool(message), "-invalid")
        gen = self.query_one("#cfg-general", Static)
        gen.update("\n".join(G.wrong + " " + printable(g) for g in general))
        gen.display = bool(general)
        self.errors, self.general = errors, general
        changed = self._mark_edited()
        if not self._loading:
            self.post_message(self.Edited(cfg, changed))
        return cfg

    def _mark_edited(self) -> list[str]:
        """Mark the keys whose field differs from the loaded preset (a '*' after the name, and the style)."""
        base, data = config_to_dict(self.base), self._data()
        changed = []
        for key, _k, _c in FIELDS:
            edited = _get(data, key) != _get(base, key)
            label = self.query_one(f"#{field_id(key)}-key", Label)
            if label.has_class("-edited") != edited:
                label.set_class(edited, "-edited")
                label.update(key_label(key, edited, key == self.focused_key))
            if edited:
                changed.append(key)
        return changed

    @property
    def problems(self) -> list[str]:
        return list(self.errors.values()) + self.general

    def key(self, frame: Frame) -> Hashable:
        return frame.read_only

    def draw(self, frame: Frame) -> None:
        self.set_read_only(frame.read_only)

    def set_read_only(self, flag: bool) -> None:
        self.read_only = flag
        if not self.ready:
            return
        for key, _k, _c in FIELDS:
            self.query_one("#" + field_id(key)).disabled = flag

    # -- events -------------------------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self, event: Message) -> None:
        if not self._loading:
            self.validate()

    @on(Input.Submitted)
    @on(Input.Blurred)
    def _live(self, event: Input.Submitted | Input.Blurred) -> None:
        """A live key's field was committed (Enter, or leaving it): offer its value to the running run.
        Committed rather than on every keystroke, so that typing 0.05 never passes through 0.0 on the way."""
        key = next((k for k, _kind, _c in FIELDS if field_id(k) == event.input.id), None)
        if key not in LIVE_KEYS or key in self.errors or self.read_only:
            return
        value = _value(float, event.value)
        if isinstance(value, float):
            self.post_message(self.LiveChange(key, value))

    def focus_first(self) -> None:
        if self.ready:
            self.query(".cfg-field").first().focus()

    def action_move_field(self, delta: int) -> None:
        """↓/↑: the next or previous field (the first or last stays); the panel itself scrolls."""
        fields = [w for w in self.query(".cfg-field") if not w.disabled]
        current = _field_of(self.screen.focused)
        if current is None or current not in fields:
            self.action_scroll_down() if delta > 0 else self.action_scroll_up()
            return
        fields[min(max(fields.index(current) + delta, 0), len(fields) - 1)].focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._sync_focus()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self._sync_focus()

    def _sync_focus(self) -> None:
        # What has the focus now, not what the event names: a blur and the next focus may arrive in either order.
        field = _field_of(self.screen.focused)
        self._mark_focus(KEY_OF_FIELD.get(field.id or "") if field is not None else None)

    def _mark_focus(self, key: str | None) -> None:
        """Mark the row of the focused field: the focus mark before its key, its row's colours (app.tcss)."""
        if key == self.focused_key or not self.ready:
            return
        for k in (self.focused_key, key):
            if k is None:
                continue
            label = self.query_one(f"#{field_id(k)}-key", Label)
            label.update(key_label(k, label.has_class("-edited"), k == key))
            if label.parent is not None:
                label.parent.set_class(k == key, "-focused")
        self.focused_key = key


def _field_of(widget: Any) -> Any:
    """The form field `widget` is, or is inside (a drop-down's open list), or None."""
    node = widget
    while node is not None and not (hasattr(node, "has_class") and node.has_class("cfg-field")):
        node = node.parent
    return node


class _Rows(Vertical):
    """The panel's rows: a label and a field per key, and a line for the field's error."""

    DEFAULT_CSS = "_Rows { height: auto; }"

    def __init__(self, panel: ConfigPanel) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        return self.panel._compose_rows()

    def on_mount(self) -> None:
        # Children are queryable once this refresh is through.
        self.call_after_refresh(self.panel._rows_mounted)
