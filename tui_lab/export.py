"""`tui-lab export DIR --format csv|tensorboard`: a run directory (a lab run's or a watched one's) into the tools
people already keep their runs in.

- csv: one row per snapshot and layer (the snapshot's numbers repeated on each of its layers' rows), written to
  `DIR/metrics.csv` or `--out FILE`.
- tensorboard: event files in `DIR/tensorboard` or `--out DIR`: the loss, accuracy and lr, and per layer every
  statistic as a scalar (`grad_norm/L1`, ...). metrics.jsonl keeps no histograms, so none are written. Needs the
  `tensorboard` package (torch's SummaryWriter writes the files).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tui_lab.core.errors import UserError
from tui_lab.core.i18n import _
from tui_lab.core.run import LayerStats, Snapshot
from tui_lab.core.runlog import atomic_write, check_run_dir, read_metrics

FORMATS = ("csv", "tensorboard")
RUN_COLUMNS = ("step", "time_s", "loss", "acc", "val_loss", "val_acc", "lr", "samples_per_s")
LAYER_COLUMNS = tuple(
    name for name in LayerStats.__dataclass_fields__ if name not in ("name", "nonfinite")
)  # grad_norm, weight_norm, ...


def snapshots(run_dir: Path) -> list[Snapshot]:
    check_run_dir(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise UserError(_("{path}: not a run directory (no metrics.jsonl)").format(path=run_dir))
    records, _end = read_metrics(run_dir)
    return [Snapshot.from_dict(r) for r in records]


def to_csv(snaps: list[Snapshot]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*RUN_COLUMNS, "layer", *LAYER_COLUMNS])
    for snap in snaps:
        run = [_cell(getattr(snap, c)) for c in RUN_COLUMNS]
        for layer in snap.layers:
            writer.writerow([*run, layer.name, *(_cell(getattr(layer, c)) for c in LAYER_COLUMNS)])
    return buf.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def to_tensorboard(snaps: list[Snapshot], out: Path) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - torch's writer needs the tensorboard package
        raise UserError(_("--format tensorboard needs the tensorboard package (pip install tensorboard)")) from None
    writer = SummaryWriter(str(out))
    try:
        for snap in snaps:
            for key in ("loss", "acc", "val_loss", "val_acc", "lr"):
                value = getattr(snap, key)
                if value is not None:
                    writer.add_scalar(key, value, snap.step, walltime=None)
            for layer in snap.layers:
                for key in LAYER_COLUMNS:
                    value = getattr(layer, key)
                    if isinstance(value, (int, float)):
                        writer.add_scalar(f"{key}/{layer.name}", value, snap.step)
    finally:
        writer.close()


def export(run_dir: Path, fmt: str, out: Path | None = None) -> Path:
    """Write the export; returns where it went. Bad input: a UserError, one line."""
    if fmt not in FORMATS:
        raise UserError(_("--format {value}: allowed: {allowed}").format(value=fmt, allowed=", ".join(FORMATS)))
    snaps = snapshots(run_dir)
    if fmt == "csv":
        path = out or run_dir / "metrics.csv"
        try:
            atomic_write(path, to_csv(snaps))
        except OSError as exc:
            raise UserError(_("{path}: cannot write there ({error})").format(path=path, error=exc.strerror)) from None
        return path
    path = out or run_dir / "tensorboard"
    to_tensorboard(snaps, path)
    return path
