"""The run directory (README: Run directory): config.toml, metrics.jsonl (appended and flushed per snapshot),
summary.json (replaced atomically). Written so that a kill or a dropped SSH session loses at most the last
snapshot: every whole line of metrics.jsonl parses, and summary.json is always a complete file.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from tui_lab.core.config import LabConfig, dumps_config, load_config
from tui_lab.core.errors import UserError
from tui_lab.core.run import RunMeta, RunResult, Snapshot

RUNS_ENV = "TUI_LAB_RUNS"


def runs_root() -> Path:
    """Where runs go when no --out is given: $TUI_LAB_RUNS, else the platform's user data dir."""
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("tui-lab") / "runs"


def default_run_dir(name: str) -> Path:
    """A fresh directory name: <runs root>/<YYYYmmdd-HHMMSS>-<name>[-2, -3...]."""
    safe = re.sub(r"[^\w.-]+", "-", name).strip("-") or "run"
    base = runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    path, n = base, 2
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return path


def strict(value: Any) -> Any:
    """Make a value strict JSON: non-finite floats become None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def dumps_strict(value: Any) -> str:
    return json.dumps(strict(value), allow_nan=False, ensure_ascii=False)


def prepare_run_dir(directory: str | Path, force: bool | None = False) -> Path:
    """Make `directory` (given as --out) ready to hold runs: absent or empty, and writable. `force=True` takes a
    non-empty one too; `force=None` means the command has no --force to offer. Refused with a UserError
    otherwise, before anything is written."""
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        if force is None:
            raise UserError(f"--out {path}: exists and is not an empty directory; choose another")
        raise UserError(f"--out {path}: directory is not empty; choose another, or add --force to overwrite it")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file, then rename it over `path`: a reader sees the old file or the new."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunLog:
    """A sink for the trainer that writes the run directory."""

    def __init__(self, directory: str | Path, force: bool = False):
        self.dir = prepare_run_dir(directory, force)
        self._metrics = None
        self.lines = 0
        self._meta: dict[str, Any] = {}

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    def on_start(self, meta: RunMeta) -> None:
        assert meta.config is not None
        self._meta = meta.summary()
        atomic_write(self.dir / "config.toml", dumps_config(meta.config))
        # Truncate any old metrics (--force) and keep the file open: one write + flush per snapshot.
        self._metrics = open(self.metrics_path, "w", encoding="utf-8")  # noqa: SIM115
        self.write_summary({"status": "running", "steps": 0, **self._meta})

    def __call__(self, snapshot: Snapshot) -> None:
        if self._metrics is None:
            return
        self._metrics.write(dumps_strict(snapshot.to_dict()) + "\n")
        self._metrics.flush()
        self.lines += 1

    def on_finish(self, result: RunResult) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        self.write_summary({**self._meta, **result.to_dict()})

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.dir / "summary.json", json.dumps(strict(summary), allow_nan=False, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------
# Reading a run directory back (tui-lab show, sweeps, tests).


def read_metrics(directory: str | Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole lines of metrics.jsonl from byte offset `start` -> (records, next offset). A partly written
    last line (the run is still going, or was killed mid-write) is left for the next call."""
    path = Path(directory) / "metrics.jsonl"
    records: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return records, start
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records, start + end


def read_summary(directory: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(directory) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def read_meta(directory: str | Path, config: LabConfig | None = None) -> tuple[RunMeta, dict[str, Any]]:
    """The run's meta (preset, device, layers, steps) and its whole summary ({} if it has none yet)."""
    summary = read_summary(directory) or {}
    return RunMeta.from_summary(summary, config), summary


def read_run_config(directory: str | Path) -> LabConfig:
    path = Path(directory) / "config.toml"
    if not path.is_file():
        raise UserError(f"{directory}: not a run directory (no config.toml)")
    return load_config(path)
