"""A pinned baseline run: its curves and last gradient profile, and the label of what differs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_lab.core.config import SECTIONS, LabConfig, config_to_dict
from tui_lab.ui.bridge import History


@dataclass
class Baseline:
    cfg: LabConfig
    name: str
    history: History
    names: list[str]
    grads: list[float | None]  # the gradient profile (last snapshot with layer statistics)
    tgn: list[float] | None = None
    source: str = ""  # run directory, if any


def from_snapshots(cfg: LabConfig, name: str, snaps: list[Any], source: str = "") -> Baseline:
    h = History()
    last = None
    for s in snaps:
        if s.layers:
            h.add(s)
            last = s
    names = [layer.name for layer in last.layers] if last else []
    grads = [layer.grad_norm for layer in last.layers] if last else []
    return Baseline(cfg, name, h, names, grads, last.time_grad_norm if last else None, source)


def from_run_dir(directory: Path) -> Baseline:
    """Read a (finished or running) run directory as a baseline. Raises UserError if it is not one."""
    from tui_lab.core.runlog import read_metrics, read_run_config, read_summary
    from tui_lab.core.trainer import Snapshot  # plain data; torch is imported only inside the trainer's run

    cfg = read_run_config(directory)
    records, _ = read_metrics(directory)
    summary = read_summary(directory) or {}
    name = summary.get("preset") or Path(directory).name
    snaps = [Snapshot.from_dict(r) for r in records]
    return from_snapshots(cfg, str(name), snaps, str(directory))


def diff_labels(base: LabConfig, current: LabConfig) -> tuple[str, str]:
    """What differs between two configurations, as ('sigmoid/default', 'relu/he_normal')."""
    a, b = config_to_dict(base), config_to_dict(current)
    left, right = [], []
    keys = [("seed", None)] + [(section, k) for section in SECTIONS for k in a[section]]
    for section, key in keys:
        va = a[section] if key is None else a[section][key]
        vb = b[section] if key is None else b[section][key]
        if va != vb:
            label = section if key is None else key
            left.append(_short(label, va))
            right.append(_short(label, vb))
    if not left:
        return "baseline", "current"
    if len(left) > 3:
        left, right = left[:3] + ["…"], right[:3] + ["…"]
    return "/".join(left), "/".join(right)


def _short(key: str, value: Any) -> str:
    if isinstance(value, str) and key not in ("device",):
        return value
    if isinstance(value, float):
        return f"{key}={value:g}"
    return f"{key}={value}"
