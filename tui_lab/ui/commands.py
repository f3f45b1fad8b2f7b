"""Every key of the app in one table: the bindings, the footer, the command palette and the status line's
hint are all made from it (the README's key table lists the same)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    keys: str  # Textual key names, comma separated
    action: str  # the app's action, e.g. "view(1)"
    label: str  # in the footer
    title: str = ""  # in the command palette ("" = not there)
    what: str = ""  # under the title in the palette, after the key
    footer: bool = True
    display: str | None = None  # how the footer writes the key
    priority: bool = False  # works while typing in a field (takes no letter from it)
    hint: bool = False  # named in the status line before a run
    needs: Literal["", "writable", "scrub"] = ""  # a run keys can change / a run to scrub through

    @property
    def key_name(self) -> str:
        return self.display or self.keys

    @property
    def help(self) -> str:
        return f"{self.key_name}: {self.what}"

    @property
    def name(self) -> str:
        return self.action.split("(")[0]

    def binding(self) -> Binding:
        return Binding(
            self.keys, self.action, self.label, show=self.footer, key_display=self.display, priority=self.priority
        )


COMMANDS: list[Command] = [
    Command(
        "r", "run", "run", "Run / resume", "start a run with the edited config, or resume", hint=True, needs="writable"
    ),
    Command("p", "pause", "pause", "Pause", "pause (or resume) the run", needs="writable"),
    Command("s", "step", "step", "Step", "run exactly one step and pause", hint=True, needs="writable"),
    Command("x", "stop", "stop", "Stop", "stop the run", needs="writable"),
    Command("n", "new_run", "new", "New run", "stop and start a new run with the edited config", needs="writable"),
    Command("l", "presets", "presets", "Presets", "pick a lesson preset", hint=True, needs="writable"),
    Command("question_mark", "lesson", "lesson", "Lesson", "the lesson of the loaded preset", display="?", hint=True),
    Command(
        "minus",
        "pace(-1)",
        "pace",  # one footer entry for both keys ('± pace'): every key fits at 80 columns
        "Slower",
        "watch at a slower pace: max → normal → slow",
        display="±",
        needs="writable",
    ),
    Command(
        "plus,equals_sign",
        "pace(1)",
        "faster",
        "Faster",
        "a faster pace: slow → normal → max",
        display="+",
        footer=False,
        needs="writable",
    ),
    Command(
        "c",
        "extend",
        "go on",
        "Go on",
        "a finished run trains as many steps again",
        footer=False,
        needs="writable",
    ),
    Command("b", "pin", "pin", "Pin baseline", "pin the current or last run as the baseline"),
    Command("B", "unpin", "unpin", "Clear baseline", "forget the baseline", footer=False),
    Command(
        "o", "pick_baseline", "baseline from runs", "Baseline from earlier runs", "choose a run directory", footer=False
    ),
    Command("v", "next_view", "view", "Next view", "cycle the panels on small terminals"),
    Command("g", "loss_scale", "loss scale", "Loss scale", "the loss axis: auto → log → linear", footer=False),
    Command("1", "view(0)", "config view", footer=False),
    Command("2", "view(1)", "gradients view", footer=False),
    Command("3", "view(2)", "curves view", footer=False),
    Command("4", "view(3)", "layers view", footer=False),
    Command("5", "view(4)", "learned view", footer=False),
    Command(
        "e", "edit", "edit config", "Edit config", "focus the config panel (esc leaves it)", footer=False, hint=True
    ),
    Command("left_square_bracket", "hist_layer(-1)", "previous layer", footer=False, display="["),
    Command("right_square_bracket", "hist_layer(1)", "next layer", footer=False, display="]"),
    # Not in the footer (no room at 80 columns): the status line names them (SCRUB_HINT).
    Command(
        "left,comma",
        "scrub(-1)",
        "earlier",
        "Earlier snapshot",
        "the snapshot before",
        footer=False,
        display="←",
        needs="scrub",
    ),
    Command(
        "right,full_stop",
        "scrub(1)",
        "later",
        "Later snapshot",
        "the snapshot after",
        footer=False,
        display="→",
        needs="scrub",
    ),
    Command("home", "scrub_to(0)", "first snapshot", footer=False, needs="scrub"),
    Command("end", "scrub_to(-1)", "follow the end", footer=False, needs="scrub"),
    Command("escape", "leave_input", "leave field", footer=False),
    Command("ctrl+r", "run", "run", footer=False, priority=True, needs="writable"),
    Command("ctrl+n", "new_run", "new run", footer=False, priority=True, needs="writable"),
    Command("ctrl+t", "step", "step", footer=False, priority=True, needs="writable"),
    Command("ctrl+x", "stop", "stop", footer=False, priority=True, needs="writable"),
    Command("q", "quit", "quit"),
]

BINDINGS = [command.binding() for command in COMMANDS]
PALETTE = [command for command in COMMANDS if command.title]
NEEDS = {command.name: command.needs for command in COMMANDS}
HINT = " · ".join(f"{c.key_name} {c.label}" for c in COMMANDS if c.hint)
SCRUB_HINT = "←/→ snapshots"
