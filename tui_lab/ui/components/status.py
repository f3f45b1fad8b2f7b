"""The status line: preset, state, device, step N/M with a progress bar; the metrics, a message, the run
directory. Everything here comes from one Frame."""

from __future__ import annotations

from collections.abc import Hashable

from rich.text import Text
from textual.widgets import Static

from tui_lab.core import fmt
from tui_lab.ui import palette
from tui_lab.ui.commands import HINT, SCRUB_HINT
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
    return "▓" * full + "░" * (width - full)


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
        device = (meta.device if meta else "") or "…"
        name = meta.device_name if meta else ""
        if name and name != device and not device.startswith(name):
            device = f"{device} {name}"
        if snap is not None and snap.mem_mb is not None:
            device += f" {snap.mem_mb:.0f} MB"
        step = snap.step + 1 if snap is not None else 0
        total = (meta.total_steps if meta else 0) or frame.cfg.train.steps
        frac = step / total if total else 0.0
        line1 = Text(no_wrap=True, overflow="ellipsis")
        line1.append(" tui-lab ", "bold reverse")
        line1.append(f" {frame.name or frame.preset} ", "bold")
        line1.append("· ")
        line1.append(frame.state, STATE_STYLE.get(frame.state, ""))
        if frame.position:
            line1.append(f" {frame.position}", "bold")
        if not frame.read_only:
            line1.append(" · pace ")
            line1.append(frame.pace, "bold" if frame.pace != "max" else "")
        line1.append(f" · {device} · step {step}/{total} ")
        room = min(30, width - line1.cell_len - 6)
        if room >= 6:  # a narrow terminal keeps the numbers and drops the bar
            line1.append(progress_bar(frac, room), palette.style(palette.ACCENT))
        line1.append(f" {frac * 100:3.0f}%")
        line2 = Text(no_wrap=True, overflow="ellipsis")
        if snap is not None:
            line2.append(" " + "  ".join(fmt.metrics(snap)))
            line2.append("  " + "  ".join(fmt.speed(snap)), "dim")
        else:
            line2.append(" " + HINT, "dim")
        if frame.loaded:
            line2.append(f"  loaded: {frame.loaded} (n runs it)", "bold")
        hint = snap is not None and not frame.position and frame.state not in ("running", "loading")
        if frame.message:
            line2.append("  " + frame.message, palette.style(palette.ALARM, "bold"))
        if frame.run_dir:
            room = width - line2.cell_len - 4
            shown = frame.run_dir if len(frame.run_dir) <= room else "…" + frame.run_dir[-max(room - 1, 12) :]
            line2.append(f"  → {shown}", "dim italic")
        if hint and line2.cell_len + len(SCRUB_HINT) + 2 <= width:  # the run directory first; then, with room
            line2.append(f"  {SCRUB_HINT}", "dim")
        lines = Text("\n", no_wrap=True, overflow="ellipsis").join([line1, line2])
        self.update(lines)  # two lines, never more: a wrapped first line would push the metrics away
