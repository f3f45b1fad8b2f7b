"""The status line: preset, device, step N/M with a progress bar, metrics, state, run directory."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

STATE_STYLE = {
    "idle": "dim", "loading": "yellow", "running": "bold green", "paused": "bold yellow",
    "completed": "bold cyan", "diverged": "bold red", "stopped": "bold magenta", "failed": "bold red",
    "following": "bold green", "replay": "bold cyan",
}  # fmt: skip


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "–"
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.2e}"


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_eta(s: float | None) -> str:
    if s is None or s != s:
        return "–"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def progress_bar(frac: float, width: int) -> str:
    frac = min(max(frac, 0.0), 1.0)
    full = int(frac * width)
    return "▓" * full + "░" * (width - full)


class StatusBar(Static):
    """Two lines; everything here comes from one Snapshot, the run meta and the state."""

    def show(
        self, *, preset: str, state: str, snap: Any, meta: dict[str, Any], total: int, run_dir: str | None,
        message: str = "", cursor: str = "",
    ) -> None:
        width = max(self.size.width, 40)
        device = meta.get("device") or "…"
        name = meta.get("device_name")
        if name and name != device and not str(device).startswith(str(name)):
            device = f"{device} {name}"
        if snap is not None and snap.mem_mb is not None:
            device += f" {snap.mem_mb:.0f} MB"
        step = snap.step + 1 if snap is not None else 0
        total = total or (snap.total_steps if snap is not None else 0) or 0
        frac = step / total if total else 0.0
        line1 = Text(no_wrap=True, overflow="ellipsis")
        line1.append(" tui-lab ", "bold reverse")
        line1.append(f" {preset} ", "bold")
        line1.append("· ")
        line1.append(f"{state}", STATE_STYLE.get(state, ""))
        if cursor:
            line1.append(f" {cursor}", "bold")
        line1.append(f" · {device} · step {step}/{total} ")
        bar_w = max(6, min(30, width - line1.cell_len - 6))
        line1.append(progress_bar(frac, bar_w), "cyan")
        line1.append(f" {frac * 100:3.0f}%")
        line2 = Text(no_wrap=True, overflow="ellipsis")
        if snap is not None:
            line2.append(f" loss {fmt_num(snap.loss)}")
            if snap.acc is not None:
                line2.append(f"  acc {fmt_num(snap.acc, 3)}")
            line2.append(f"  val {fmt_num(snap.val_loss)}" if snap.val_loss is not None else "")
            if snap.val_acc is not None:
                line2.append(f"/{fmt_num(snap.val_acc, 3)}")
            line2.append(f"  {fmt_rate(snap.samples_per_s)} samples/s  ETA {fmt_eta(snap.eta_s)}", "dim")
        else:
            line2.append(" r run · s step · l presets · ? lesson · e edit config", "dim")
        if message:
            line2.append("  " + message, "bold red")
        if run_dir:
            room = width - line2.cell_len - 4
            shown = run_dir if len(run_dir) <= room else "…" + run_dir[-max(room - 1, 12):]
            line2.append(f"  → {shown}", "dim italic")
        text = Text("\n").join([line1, line2])
        self.update(text)
