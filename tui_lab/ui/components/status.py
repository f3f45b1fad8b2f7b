"""The status line: preset, state, device, step N/M with a progress bar; the metrics, a message, the run
directory. Everything here comes from one Frame."""

from __future__ import annotations

from collections.abc import Hashable

from rich.text import Text
from textual.widgets import Static

from tui_lab.core import fmt
from tui_lab.core.i18n import _
from tui_lab.ui import glyphs, palette
from tui_lab.ui.commands import SCRUB_HINT, hint_line
from tui_lab.ui.components.panel import Panel
from tui_lab.ui.frame import Frame

STATE_STYLE = {
    "idle": "dim",
    "loading": "dim",
    "running": palette.style(palette.HEALTHY, "bold"),
    "paused": "bold",  # not a caution: yellow means one (ui/palette.py)
    "completed": palette.style(palette.ACCENT, "bold"),
    "diverged": palette.style(palette.ALARM, "bold"),
    "stopped": "bold",
    "failed": palette.style(palette.ALARM, "bold"),
    "following": palette.style(palette.HEALTHY, "bold"),
    "replay": palette.style(palette.ACCENT, "bold"),
}


def progress_bar(frac: float, width: int) -> str:
    frac = min(max(frac, 0.0), 1.0)
    full = int(frac * width)
    return glyphs.G.done * full + glyphs.G.todo * (width - full)


class StatusBar(Panel, Static):
    """Two lines at the top of the screen (no border: a panel only in that it draws a Frame)."""

    DEFAULT_CLASSES = ""

    def key(self, frame: Frame) -> Hashable:
        return (
            frame.view, frame.scrubbed, frame.state, frame.message, frame.run_dir, frame.position, frame.preset,
            frame.name,
            frame.loaded, frame.pace, self.size,
        )  # fmt: skip

    def draw(self, frame: Frame) -> None:
        width = max(self.size.width, 40)
        view = frame.view
        snap = frame.scrubbed or (view.latest if view is not None else None)  # the numbers of what is shown
        meta = view.meta if view is not None else None
        device = (meta.device if meta else "") or glyphs.G.ellipsis
        name = meta.device_name if meta else ""
        if name and name != device and not device.startswith(name):
            device = f"{device} {name}"
        if snap is not None and snap.mem_mb is not None:
            device += f" {snap.mem_mb:.0f} MB"
        step = snap.step + 1 if snap is not None else 0
        total = 0 if frame.open_ended else (meta.total_steps if meta else 0) or frame.cfg.train.steps
        frac = step / total if total else 0.0
        line1 = Text(no_wrap=True, overflow="ellipsis")
        line1.append(" tui-lab ", "bold reverse")
        line1.append(f" {fmt.printable(frame.name or frame.preset)} ", "bold")  # names come from files
        line1.append("· ")
        line1.append(_(frame.state), STATE_STYLE.get(frame.state, ""))
        if frame.position:  # 'snapshot 3/81 (←/→, End: latest)': the keys only where there is room
            position = frame.position if width >= 100 else frame.position.split(" (")[0]
            line1.append(f" {position}", "bold")
        if frame.scrubbed is not None:  # the snapshot's own step, as its panels and the curves' cursor say it
            steps = _("step {step}").format(step=frame.scrubbed.step)
        elif not total:  # a watched loop of unknown length: the steps taken
            steps = _("step {step}").format(step=step)
        else:  # steps taken so far
            steps = _("step {step}/{total}").format(step=step, total=total)
        pace = Text(" · " + _("pace") + " ")
        pace.append(_(frame.pace), "bold" if frame.pace != "max" else "")
        # What goes when 80 columns cannot hold it all: the device first, then the pace (the footer has its keys)
        for extras in ((True, True), (True, False), (False, False)):
            fits = line1.cell_len + len(steps) + 12 + (pace.cell_len if extras[0] else 0)
            fits += len(device) + 3 if extras[1] else 0
            if fits <= width:
                break
        if extras[0] and not frame.read_only:
            line1.append_text(pace)
        line1.append(f" · {device} · {steps} " if extras[1] else f" · {steps} ")
        room = min(30, width - line1.cell_len - 6)
        if room >= 6 and total:  # a narrow terminal keeps the numbers and drops the bar
            line1.append(progress_bar(frac, room), palette.style(palette.ACCENT))
        if total:
            line1.append(f" {frac * 100:3.0f}%")
        line2 = Text(no_wrap=True, overflow="ellipsis")
        # A long error gets the line to itself (a divergence keeps the numbers: the gradient panel says where)
        if frame.message and frame.state != "diverged" and len(frame.message) + 40 > width:
            snap = None
        if snap is not None:
            line2.append(" " + "  ".join(fmt.metrics(snap)))
            moving = frame.state in ("running", "paused", "loading") and frame.scrubbed is None
            line2.append("  " + "  ".join(fmt.speed(snap)[: None if moving else 1]), "dim")  # an ETA while it goes
        elif not frame.message:
            line2.append(" " + glyphs.text(hint_line()), "dim")
        if frame.loaded:
            line2.append("  " + _("loaded: {name} (n runs it)").format(name=fmt.printable(frame.loaded)), "bold")
        hint = snap is not None and not frame.position and frame.state not in ("running", "loading")
        if frame.message:  # cut only here: the whole text is in a notification and the findings panel
            mark = glyphs.G.error + " " if palette.no_color() else ""  # without colour, the mark says it is one
            message = fmt.printable(frame.message)
            line2.append(("  " if line2.cell_len else " ") + mark + message, palette.style(palette.ALARM, "bold"))
        room = width - line2.cell_len - 3 - len(glyphs.G.arrow)
        run_dir = fmt.printable(frame.run_dir)
        if run_dir and room >= 24:  # a path cut at both ends says nothing: the findings panel has it whole
            dots = glyphs.G.ellipsis
            shown = run_dir if len(run_dir) <= room else dots + run_dir[-max(room - len(dots), 12) :]
            line2.append(f"  {glyphs.G.arrow} {shown}", "dim italic")
        scrub_hint = glyphs.text(_(SCRUB_HINT))
        if hint and line2.cell_len + len(scrub_hint) + 2 <= width:  # the run directory first; then, with room
            line2.append(f"  {scrub_hint}", "dim")
        lines = Text("\n", no_wrap=True, overflow="ellipsis").join([line1, line2])
        self.update(glyphs.rich(lines))  # two lines, never more: a wrapped first line would push the metrics away
