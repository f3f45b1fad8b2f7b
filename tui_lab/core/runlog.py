"""The run directory (DESIGN.md §4): config.toml, metrics.jsonl (appended and flushed per snapshot),
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


class RunLog:
    """A sink for the trainer that writes the run directory."""

    def __init__(self, directory: str | Path, force: bool = False):
        self.dir = Path(directory).expanduser()
        if self.dir.exists() and not self.dir.is_dir():
            raise UserError(f"--out {self.dir}: exists and is not a directory")
        if self.dir.is_dir() and any(self.dir.iterdir()) and not force:
            raise UserError(
                f"--out {self.dir}: directory is not empty; choose another, or add --force to overwrite it"
            )
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"--out {self.dir}: cannot write there ({exc.strerror or exc})") from None
        self._metrics = None
        self.lines = 0
        self._meta: dict[str, Any] = {}

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    def on_start(self, meta: dict[str, Any]) -> None:
        cfg: LabConfig = meta["config"]
        self._meta = _meta_for_summary(meta)
        _atomic_write(self.dir / "config.toml", dumps_config(cfg))
        # Truncate any old metrics (--force) and keep the file open: one write + flush per snapshot.
        self._metrics = open(self.metrics_path, "w", encoding="utf-8")  # noqa: SIM115
        self.write_summary({"status": "running", "steps": 0, **_meta_for_summary(meta)})

    def __call__(self, snapshot: Any) -> None:
        if self._metrics is None:
            return
        self._metrics.write(dumps_strict(snapshot.to_dict()) + "\n")
        self._metrics.flush()
        self.lines += 1

    def on_finish(self, result: Any) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        self.write_summary({**self._meta, **result.to_dict()})

    def write_summary(self, summary: dict[str, Any]) -> None:
        _atomic_write(self.dir / "summary.json", json.dumps(strict(summary), allow_nan=False, indent=2) + "\n")


def _meta_for_summary(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k in ("preset", "device", "device_name", "layers", "total_steps")}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def read_run_config(directory: str | Path) -> LabConfig:
    path = Path(directory) / "config.toml"
    if not path.is_file():
        raise UserError(f"{directory}: not a run directory (no config.toml)")
    return load_config(path)
