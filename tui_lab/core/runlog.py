"""The run directory (README: Run directory): config.toml, metrics.jsonl (appended and flushed per snapshot),
learned.jsonl (likewise, for the snapshots that carry what the network learned), summary.json (replaced
atomically). Written so that a kill or a dropped SSH session loses at most the last
snapshot: every whole line of metrics.jsonl parses, and summary.json is always a complete file.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from tui_lab.core.config import LabConfig, dumps_config, load_config
from tui_lab.core.errors import UserError
from tui_lab.core.i18n import _
from tui_lab.core.run import Learned, RunMeta, RunResult, Snapshot

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
    safe = re.sub(r"[^\w.+=-]+", "-", name).strip("-") or "run"  # keeps 'deep-sigmoid+relu+lr=0.01'
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
        raise UserError(_("--out {path}: exists and is not a directory").format(path=path))
    if path.is_dir() and any(path.iterdir()) and not force:
        if force is None:
            raise UserError(_("--out {path}: exists and is not an empty directory; choose another").format(path=path))
        message = _("--out {path}: directory is not empty; choose another, or add --force to overwrite it")
        raise UserError(message.format(path=path))
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(
            _("--out {path}: cannot write there ({error})").format(path=path, error=exc.strerror or exc)
        ) from None
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
        self._learned = None  # learned.jsonl, open while the run goes
        self.lines = 0
        self._meta: dict[str, Any] = {}

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def learned_path(self) -> Path:
        return self.dir / "learned.jsonl"

    def on_start(self, meta: RunMeta) -> None:
        assert meta.config is not None
        self._meta = meta.summary()
        atomic_write(self.dir / "config.toml", dumps_config(meta.config))
        # Truncate any old metrics (--force) and keep the file open: one write + flush per snapshot.
        self._metrics = open(self.metrics_path, "w", encoding="utf-8")  # noqa: SIM115
        self._learned = open(self.learned_path, "w", encoding="utf-8")  # noqa: SIM115
        self.write_summary({"status": "running", "steps": 0, **self._meta})

    def on_resume(self, meta: RunMeta) -> None:
        """The run goes on (extended): the new train.steps in config.toml, metrics appended, status running."""
        assert meta.config is not None
        self._meta = meta.summary()
        atomic_write(self.dir / "config.toml", dumps_config(meta.config))
        if self._metrics is None:
            self._metrics = open(self.metrics_path, "a", encoding="utf-8")  # noqa: SIM115
        self.write_summary({"status": "running", **self._meta})

    def __call__(self, snapshot: Snapshot) -> None:
        if self._metrics is None:
            return
        if snapshot.learned is not None:  # before its metrics line: a reader that has the one has the other
            if self._learned is None:  # the run went on after it ended (on_resume)
                self._learned = open(self.learned_path, "a", encoding="utf-8")  # noqa: SIM115
            self._learned.write(dumps_strict(snapshot.learned.to_dict()) + "\n")
            self._learned.flush()
        self._metrics.write(dumps_strict(snapshot.to_dict()) + "\n")
        self._metrics.flush()
        self.lines += 1

    def on_finish(self, result: RunResult) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._learned is not None:
            self._learned.close()
            self._learned = None
        self.write_summary({**self._meta, **result.to_dict()})

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.dir / "summary.json", json.dumps(strict(summary), allow_nan=False, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------
# Reading a run directory back (tui-lab show, sweeps, tests).


def read_metrics(directory: str | Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole lines of metrics.jsonl from byte offset `start` -> (records, next offset). A partly written
    last line (the run is still going, or was killed mid-write) is left for the next call."""
    return read_jsonl(Path(directory) / "metrics.jsonl", start)


def read_learned(directory: str | Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole lines of learned.jsonl from byte offset `start` -> (records, next offset), as `read_metrics`; a run
    directory without the file (an older run) has none."""
    return read_jsonl(Path(directory) / "learned.jsonl", start)


def read_jsonl(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole JSON lines of a file from byte offset `start` -> (records, next offset); a partial last line waits."""
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


class LearnedLog:
    """learned.jsonl by step, to show what the network had learned at any snapshot (scrubbing, tui-lab show):
    only each line's step and where it starts are kept, a line is read back when asked for (a few are cached:
    the same line gives the same record). A run without a directory (a replay) keeps its records in memory."""

    CACHE = 8

    def __init__(self, directory: str | Path | None) -> None:
        self.path = Path(directory) / "learned.jsonl" if directory is not None else None
        self._steps: list[int] = []
        self._starts: list[int] = []
        self._end = 0  # bytes indexed so far
        self._memory: list[Learned] = []
        self._cache: dict[int, Learned] = {}

    def add(self, learned: Learned) -> None:
        """Keep a record in memory (no run directory)."""
        if self.path is None:
            self._steps.append(learned.step)
            self._memory.append(learned)

    def refresh(self) -> None:
        """Index the lines written since the last look (a partly written last line waits)."""
        if self.path is None:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self._end)
                data = f.read()
        except OSError:
            return
        at = 0
        while (newline := data.find(b"\n", at)) >= 0:
            try:
                step = int(json.loads(data[at:newline]).get("step", 0))
            except (ValueError, TypeError, AttributeError):
                step = None  # not a record: skipped
            if step is not None and (not self._steps or step >= self._steps[-1]):
                self._steps.append(step)
                self._starts.append(self._end + at)
            at = newline + 1
        self._end += at

    def __len__(self) -> int:
        return len(self._steps)

    def at(self, step: int) -> Learned | None:
        """The latest record measured at or before `step`."""
        index = bisect.bisect_right(self._steps, step) - 1
        return self._record(index) if index >= 0 else None

    def latest(self) -> Learned | None:
        return self._record(len(self._steps) - 1) if self._steps else None

    def _record(self, index: int) -> Learned | None:
        if self.path is None:
            return self._memory[index]
        learned = self._cache.get(index)
        if learned is None:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._starts[index])
                    learned = Learned.from_dict(json.loads(f.readline()))
            except (OSError, ValueError, TypeError, IndexError):
                return None
            if len(self._cache) >= self.CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = learned
        return learned


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
        raise UserError(_("{path}: not a run directory (no config.toml)").format(path=directory))
    return load_config(path)
