"""A pinned baseline run: its curves and last gradient profile, and the label of what differs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tui_lab.core.config import LabConfig, differences, short
from tui_lab.core.run import Snapshot
from tui_lab.ui.bridge import History, View


@dataclass(eq=False)  # compared by identity: pinning again is a new baseline
class Baseline:
    cfg: LabConfig
    name: str
    history: History
    names: list[str]
    grads: list[float | None]  # the gradient profile (last snapshot with layer statistics)
    time_grads: list[float] | None = None
    source: str = ""  # run directory, if any

    @classmethod
    def of(cls, cfg: LabConfig, name: str, history: History, last: Snapshot | None, source: str = "") -> Baseline:
        """From a run's curves and its last snapshot with layer statistics."""
        if last is None:
            return cls(cfg, name, history, [], [], None, source)
        names = [layer.name for layer in last.layers]
        grads = [layer.grad_norm for layer in last.layers]
        return cls(cfg, name, history, names, grads, last.time_grad_norm, source)


def from_view(cfg: LabConfig, name: str, view: View, source: str = "") -> Baseline:
    """The run on screen, as the bridge has it."""
    return Baseline.of(cfg, name, view.history.copy(), view.latest_finite, source)


def from_snapshots(cfg: LabConfig, name: str, snaps: Iterable[Snapshot], source: str = "") -> Baseline:
    history, last = History(), None
    for snap in snaps:
        if snap.layers:
            history.add(snap)
            last = snap
    return Baseline.of(cfg, name, history, last, source)


def from_run_dir(directory: Path) -> Baseline:
    """Read a (finished or running) run directory as a baseline. Raises UserError (one line) if it is not one or
    cannot be read; a damaged one gives what it still holds (lines that are not records are skipped, values of
    the wrong type are missing), read line by line whatever the file's size."""
    from tui_lab.core.errors import UserError, os_error_line
    from tui_lab.core.runlog import JsonlReader, check_run_dir, read_meta, read_run_config

    directory = Path(directory)
    try:
        check_run_dir(directory)
        cfg = read_run_config(directory)
        meta, _summary = read_meta(directory)
        records = JsonlReader(directory / "metrics.jsonl").records()
        snaps = (Snapshot.from_dict(record) for _at, record in records)
        return from_snapshots(cfg, meta.preset or directory.name, snaps, str(directory))
    except OSError as exc:  # the disk failed mid-read
        raise UserError(os_error_line(exc, directory)) from None


def diff_labels(base: LabConfig, current: LabConfig) -> tuple[str, str]:
    """What differs between two configurations, as ('sigmoid/default', 'relu/he_normal')."""
    changed = differences(base, current)
    if not changed:
        return "baseline", "current"
    left = [short(key, a) for key, a, _b in changed]
    right = [short(key, b) for key, _a, b in changed]
    if len(left) > 3:
        left, right = left[:3] + ["…"], right[:3] + ["…"]
    return "/".join(left), "/".join(right)
