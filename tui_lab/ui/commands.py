"""Every key of the app in one table: the bindings, the footer, the command palette, the status line's hint,
the help screen (F1) and the README's key table are all made from it (`python -m tui_lab.ui.commands` prints
the README's table; a test checks that the README has it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from textual.binding import Binding
from textual.dom import DOMNode

from tui_lab.core.i18n import DEFAULT_LANGUAGE, N_, _, language

Group = Literal["run", "views", "scrub", "form", "pickers", "sweep", "help"]

# The help screen's and the README's sections, in this order.
GROUPS: dict[str, str] = {
    "run": N_("Run"),
    "views": N_("Views"),
    "scrub": N_("Snapshots and pace"),
    "form": N_("Config form"),
    "pickers": N_("Pickers (presets, earlier runs)"),
    "sweep": N_("A sweep's table (tui-lab show SWEEP_DIR, or a sweep picked with o)"),
    "help": N_("Help"),
}

# How a Textual key name is written for people (the help screen, the README).
_KEY_TEXT = {
    "question_mark": "?",
    "minus": "-",
    "plus": "+",
    "equals_sign": "=",
    "comma": ",",
    "full_stop": ".",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "left": "←",
    "right": "→",
    "up": "↑",
    "down": "↓",
    "escape": "Esc",
    "enter": "Enter",
    "space": "Space",
    "tab": "Tab",
    "home": "Home",
    "end": "End",
    "pageup": "PgUp",
    "pagedown": "PgDn",
}


def key_text(key: str) -> str:
    """'question_mark' -> '?', 'ctrl+r' -> 'Ctrl+R', 'shift+tab' -> 'Shift+Tab', 'f1' -> 'F1', 'B' -> 'B'."""
    if key in _KEY_TEXT:
        return _KEY_TEXT[key]
    if "+" in key:
        *mods, last = key.split("+")
        return "+".join([m.capitalize() for m in mods] + [key_text(last).upper() if len(last) == 1 else key_text(last)])
    if key[:1] == "f" and key[1:].isdigit():
        return key.upper()
    return key.capitalize() if len(key) > 1 else key


@dataclass(frozen=True)
class Command:
    keys: str  # Textual key names, comma separated
    action: str  # the app's action, e.g. "view(1)"
    label: str  # in the footer
    title: str = ""  # in the command palette ("" = not there)
    what: str = ""  # under the title in the palette, after the key; in the help screen and the README
    footer: bool = True
    display: str | None = None  # how the footer writes the key
    priority: bool = False  # works while typing in a field (takes no letter from it)
    hint: bool = False  # named in the status line before a run
    needs: Literal["", "writable", "scrub"] = ""  # a run keys can change / a run to scrub through
    group: Group = "run"  # its section of the help screen and the README
    more: str = ""  # said after `what` in the help screen and the README (too long for the palette)
    bind: bool = True  # False: a key of a widget or a screen (the form, the pickers): listed, bound elsewhere
    shown: str = ""  # how the help writes its keys when they are no key names ('type' for typing)

    @property
    def key_name(self) -> str:
        return self.display or self.keys

    @property
    def help(self) -> str:
        return f"{self.key_name}: {self.what}"

    @property
    def name(self) -> str:
        return self.action.split("(")[0]

    @property
    def key_texts(self) -> list[str]:
        """Every key, as people write it: ['←', ','] for 'left,comma'."""
        if self.shown:
            return [self.shown]
        return [key_text(k) for k in self.keys.split(",") if k]

    @property
    def description(self) -> str:
        what = self.what or self.label
        return f"{what}; {self.more}" if self.more else what

    def binding(self) -> Binding:
        return Binding(
            self.keys, self.action, self.label, show=self.footer, key_display=self.display, priority=self.priority
        )


COMMANDS: list[Command] = [
    Command(
        "r",
        "run",
        N_("run"),
        N_("Run / resume"),
        N_("start a run with the edited config, or resume"),
        hint=True,
        needs="writable",
    ),
    Command("p", "pause", N_("pause"), N_("Pause"), N_("pause (or resume) the run"), needs="writable"),
    Command("s", "step", N_("step"), N_("Step"), N_("run exactly one step and pause"), hint=True, needs="writable"),
    Command("x", "stop", N_("stop"), N_("Stop"), N_("stop the run"), needs="writable"),
    Command(
        "n",
        "new_run",
        N_("new"),
        N_("New run"),
        N_("stop and start a new run with the edited config"),
        needs="writable",
    ),
    Command(
        "l",
        "presets",
        N_("presets"),
        N_("Presets"),
        N_("pick a lesson preset"),
        hint=True,
        needs="writable",
        group="pickers",
    ),
    Command(
        "question_mark",
        "lesson",
        N_("lesson"),
        N_("Lesson"),
        N_("the lesson of the loaded preset"),
        display="?",
        hint=True,
        group="help",
    ),
    Command(
        "f1,h",
        "help",
        N_("help"),
        N_("Help"),
        N_("every key, grouped (esc closes)"),
        display="F1",
        footer=False,  # no room at 80 columns: the status line names it before a run
        hint=True,
        group="help",
    ),
    Command(
        "minus",
        "pace(-1)",
        N_("pace"),  # one footer entry for both keys ('± pace'): every key fits at 80 columns
        N_("Slower"),
        N_("watch at a slower pace: max → normal → slow"),
        display="±",
        needs="writable",
        group="scrub",
        more=N_("normal is 8 snapshots a second, slow 2, so the first steps of a lesson can be watched"),
    ),
    Command(
        "plus,equals_sign",
        "pace(1)",
        N_("faster"),
        N_("Faster"),
        N_("a faster pace: slow → normal → max"),
        display="+",
        footer=False,
        needs="writable",
        group="scrub",
        more=N_("max is as fast as it trains"),
    ),
    Command(
        "c",
        "extend",
        N_("go on"),
        N_("Go on"),
        N_("a finished run trains as many steps again"),
        footer=False,
        needs="writable",
        more=N_("a completed or stopped run of this session, in the same run directory"),
    ),
    Command("b", "pin", N_("pin"), N_("Pin baseline"), N_("pin the current or last run as the baseline")),
    Command("B", "unpin", N_("unpin"), N_("Clear baseline"), N_("forget the baseline"), footer=False),
    Command(
        "o",
        "pick_baseline",
        N_("baseline from runs"),
        N_("Baseline from earlier runs"),
        N_("choose a run directory to pin as the baseline"),
        footer=False,
        group="pickers",
        more=N_("a sweep is listed as one entry, which opens its table"),
    ),
    Command("v", "next_view", N_("view"), N_("Next view"), N_("cycle the panels on small terminals"), group="views"),
    Command(
        "f",
        "findings",
        N_("findings"),
        N_("Findings"),
        N_("focus the findings panel: ↑/↓ scroll it, esc leaves"),
        footer=False,
        group="views",
        more=N_("a short panel says how many lines are below on its border"),
    ),
    Command(
        "g",
        "loss_scale",
        N_("loss scale"),
        N_("Loss scale"),
        N_("the loss axis: auto → log → linear"),
        footer=False,
        group="views",
        more=N_("auto is log when the loss spans 3 decades or more; linear starts at 0"),
    ),
    Command(
        "z",
        "blocks",
        N_("blocks"),
        N_("Blocks / layers"),
        N_("the per-layer panels: one row per block of the model (blocks.3, layer2.0), or every layer again"),
        footer=False,
        group="views",
        more=N_("a block's bar is the joint ‖∇W‖ of its layers; the layer furthest from level is named after it"),
    ),
    Command(
        "pagedown",
        "layer_rows(1)",
        N_("layers down"),
        footer=False,
        group="views",
        what=N_("the gradient-flow and layers panels: the next page of rows"),
        more=N_("a deep net's folded rows unfold; a focused panel (Tab) scrolls with ↑/↓, Home and End too"),
    ),
    Command(
        "pageup",
        "layer_rows(-1)",
        N_("layers up"),
        footer=False,
        group="views",
        what=N_("the page of rows before (from the top: a deep net folds again)"),
    ),
    Command(
        "1",
        "view(0)",
        N_("config view"),
        footer=False,
        what=N_("view 1: the config"),
        group="views",
    ),
    Command(
        "2", "view(1)", N_("gradients view"), footer=False, what=N_("view 2: gradient flow and findings"), group="views"
    ),
    Command("3", "view(2)", N_("curves view"), footer=False, what=N_("view 3: loss and ‖∇W‖ over time"), group="views"),
    Command(
        "4",
        "view(3)",
        N_("layers view"),
        footer=False,
        what=N_("view 4: histogram, layers, time steps (RNNs)"),
        group="views",
    ),
    Command(
        "5", "view(4)", N_("learned view"), footer=False, what=N_("view 5: what the network learned"), group="views"
    ),
    Command(
        "left_square_bracket",
        "hist_layer(-1)",
        N_("previous layer"),
        footer=False,
        display="[",
        what=N_("the histogram's previous layer"),
        group="views",
    ),
    Command(
        "right_square_bracket",
        "hist_layer(1)",
        N_("next layer"),
        footer=False,
        display="]",
        what=N_("the histogram's next layer"),
        group="views",
    ),
    # Not in the footer (no room at 80 columns): the status line names them (SCRUB_HINT).
    Command(
        "left,comma",
        "scrub(-1)",
        N_("earlier"),
        N_("Earlier snapshot"),
        N_("the snapshot before"),
        footer=False,
        display="←",
        needs="scrub",
        group="scrub",
        more=N_(
            "during a run and after it (and in show): the curves stay whole, the bars, layers and findings show "
            "the snapshot under the cursor"
        ),
    ),
    Command(
        "right,full_stop",
        "scrub(1)",
        N_("later"),
        N_("Later snapshot"),
        N_("the snapshot after"),
        footer=False,
        display="→",
        needs="scrub",
        group="scrub",
    ),
    Command(
        "home",
        "scrub_to(0)",
        N_("first snapshot"),
        footer=False,
        needs="scrub",
        group="scrub",
        what=N_("the first snapshot"),
    ),
    Command(
        "end",
        "scrub_to(-1)",
        N_("follow the end"),
        footer=False,
        needs="scrub",
        group="scrub",
        what=N_("the latest snapshot, and follow the run again"),
    ),
    Command(
        "e",
        "edit",
        N_("edit config"),
        N_("Edit config"),
        N_("focus the config panel (esc leaves it)"),
        footer=False,
        hint=True,
        group="form",
    ),
    # The form's own keys (the config panel and its fields handle them): listed, not bound by the app.
    Command("down,tab", "", N_("next field"), footer=False, bind=False, group="form", what=N_("the next field")),
    Command(
        "up,shift+tab", "", N_("previous field"), footer=False, bind=False, group="form", what=N_("the previous field")
    ),
    Command(
        "enter,space",
        "",
        N_("open list"),
        footer=False,
        bind=False,
        group="form",
        what=N_("open a field's list of choices; ↑/↓ move in it, Enter picks, Esc closes it"),
    ),
    Command(
        "enter",
        "",
        N_("apply now"),
        footer=False,
        bind=False,
        group="form",
        what=N_(
            "in lr, momentum, weight_decay or clip_norm while a run goes: the run takes the value at its next step"
        ),
        more=N_("other edited keys (marked *) wait for the next run (n)"),
    ),
    Command("escape", "leave_input", N_("leave field"), footer=False, group="form", what=N_("leave the field")),
    Command(
        "ctrl+r",
        "run",
        N_("run"),
        footer=False,
        priority=True,
        needs="writable",
        group="form",
        what=N_("run / resume, from inside a field"),
    ),
    Command(
        "ctrl+n",
        "new_run",
        N_("new run"),
        footer=False,
        priority=True,
        needs="writable",
        group="form",
        what=N_("new run, from inside a field"),
    ),
    Command(
        "ctrl+t",
        "step",
        N_("step"),
        footer=False,
        priority=True,
        needs="writable",
        group="form",
        what=N_("one step, from inside a field"),
    ),
    Command(
        "ctrl+x",
        "stop",
        N_("stop"),
        footer=False,
        priority=True,
        needs="writable",
        group="form",
        what=N_("stop, from inside a field"),
    ),
    # The pickers' own keys (ui/screens.py).
    Command(
        "",
        "",
        N_("filter"),
        footer=False,
        bind=False,
        group="pickers",
        shown=N_("type"),
        what=N_("filter the list: every word must appear in the name or the title"),
    ),
    Command("up,down", "", N_("move"), footer=False, bind=False, group="pickers", what=N_("move in the list")),
    Command(
        "enter", "", N_("pick"), footer=False, bind=False, group="pickers", what=N_("load the preset / pin the run")
    ),
    Command("escape", "", N_("close"), footer=False, bind=False, group="pickers", what=N_("close the picker")),
    # The sweep table's own keys (ui/sweep_screen.py).
    Command(
        "up,down,left,right",
        "",
        N_("move"),
        footer=False,
        bind=False,
        group="sweep",
        what=N_("move in the table; ← → scroll it sideways (the grid's columns stay)"),
    ),
    Command(
        "enter",
        "",
        N_("open"),
        footer=False,
        bind=False,
        group="sweep",
        what=N_("open the run under the cursor, as tui-lab show does; Esc on it comes back to the table"),
    ),
    Command(
        "b",
        "",
        N_("pin"),
        footer=False,
        bind=False,
        group="sweep",
        what=N_("pin the run under the cursor as the baseline"),
    ),
    Command(
        "s",
        "",
        N_("sort"),
        footer=False,
        bind=False,
        group="sweep",
        what=N_("sort by the next column; after the last, the sweep's own order"),
    ),
    Command(
        "escape",
        "",
        N_("back"),
        footer=False,
        bind=False,
        group="sweep",
        what=N_("back to the run opened last, or to the session the sweep was opened from (o)"),
    ),
    Command(
        "ctrl+p",
        "",
        N_("palette"),
        footer=False,
        bind=False,
        group="help",
        what=N_("the command palette: every command by name, the theme, and Screenshot"),
        more=N_("a screenshot (SVG) goes into the run directory of the run on screen, else the current directory"),
    ),
    Command("q", "quit", N_("quit"), group="help", what=N_("quit (a run stops; its run directory is complete)")),
    Command(
        "ctrl+z",
        "suspend_process",
        N_("suspend"),
        footer=False,
        group="help",
        what=N_("suspend to the shell (the terminal as it was); `fg` brings the lab back"),
    ),
]

BINDINGS = [command.binding() for command in COMMANDS if command.bind]
PALETTE = [command for command in COMMANDS if command.title and command.bind]
NEEDS = {command.name: command.needs for command in COMMANDS if command.bind}
HINT = " · ".join(f"{c.key_name} {c.label}" for c in COMMANDS if c.hint)
SCRUB_HINT = N_("←/→ snapshots")  # shown through _()


def hint_line() -> str:
    """HINT in the current language: the status line's keys before a run."""
    return " · ".join(f"{c.key_name} {_(c.label)}" for c in COMMANDS if c.hint)


# Textual's own words that reach the screen (the palette key in the footer, the palette's system commands):
# in the catalogue, so that they are translated too (`translate_bindings`, LabApp.get_system_commands).
TEXTUAL_WORDS = (
    N_("palette"),
    N_("Search for commands…"),
    N_("Theme"),
    N_("Change the current theme"),
    N_("Quit"),
    N_("Quit the application as soon as possible"),
    N_("Keys"),
    N_("Show help for the focused widget and a summary of available keys"),
    N_("Hide the keys and widget help panel"),
    N_("Maximize"),
    N_("Maximize the focused widget"),
    N_("Minimize"),
    N_("Minimize the widget and restore to normal size"),
    N_("Screenshot"),
    N_("Save an SVG 'screenshot' of the current screen"),
)


def translate_bindings(node: DOMNode) -> None:
    """The footer's words for `node`'s keys in the current language. Textual merges a class's BINDINGS once,
    when the class is made (in English, the words of this table); each instance gets its own copy, whose
    descriptions are translated here, once, right after the node's __init__."""
    if language() == DEFAULT_LANGUAGE:
        return
    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [replace(b, description=_(b.description)) if b.description else b for b in bindings]


def grouped() -> list[tuple[str, list[Command]]]:
    """The commands by section, in GROUPS' order (the help screen and the README)."""
    return [(title, [c for c in COMMANDS if c.group == group]) for group, title in GROUPS.items()]


def readme_table() -> str:
    """The README's key table (Markdown): every key of the table, by section."""
    rows = ["| key | action |", "| --- | --- |"]
    for title, group in grouped():
        rows.append(f"| **{title}** | |")
        for command in group:
            keys = " ".join(f"_{k}_" if command.shown else f"`{k}`" for k in command.key_texts)
            what = command.description.replace("|", "\\|")
            rows.append(f"| {keys} | {what} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(readme_table())
