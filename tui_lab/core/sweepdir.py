"""A sweep directory read back (`tui-lab show SWEEP_DIR`, the run picker): one row per configuration, with the
columns of the printed sweep table, followed live while the sweep runs. No torch, no Textual.

What `tui-lab sweep` leaves in SWEEP_DIR: a run directory per configuration (made when its run starts) and
sweep.csv (rewritten as each run ends; the grid's keys and values as typed, and each finished run's outcome).
A row comes from sweep.csv once its run has ended (the very numbers of the printed table); before that from the
run directory itself: summary.json (status, total steps) and the last whole line of metrics.jsonl (steps done,
loss, time), read incrementally, plus its first line once (the gradient ratio at initialisation). A sweep that
writes its plan (`write_plan`, sweep-plan.json) also shows the configurations not started yet (`queued`).

Each refresh costs a few stat calls: a file is read again only when its size, time or inode changed, and a
finished row is looked at again only on a full rescan (every RESCAN_S). A damaged subdirectory (unreadable, a
FIFO for a file, a config that does not parse, garbage lines) is skipped or shows what it still holds; reading
never raises on content.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_lab.core import fmt
from tui_lab.core.config import LabConfig, config_to_dict, differences, load_config
from tui_lab.core.diagnosis import grad_ratio
from tui_lab.core.errors import UserError, os_error_line
from tui_lab.core.i18n import N_, _
from tui_lab.core.run import RUN_STATUSES, Snapshot
from tui_lab.core.runlog import (
    LOCK_NAME,
    JsonlReader,
    atomic_write,
    open_regular,
    read_line,
    read_summary,
    step_of,
)
from tui_lab.core.watched import MODEL_FILE

# The sweep's files and the printed table's columns, defined here for both sides: tui_lab/sweep.py writes them,
# and the UI reads a sweep without importing the sweep's machinery.
CSV_NAME = "sweep.csv"
PLAN_NAME = "sweep-plan.json"
RATIO_COLUMN = "grad_ratio_first_last"
RESULT_COLUMNS = (RATIO_COLUMN, "final_loss", "final_val_acc", "status", "steps", "time_s", "run_dir")
RESULT_HEADER = (N_("grad L1/Ln @0"), N_("final loss"), N_("val acc"), N_("status"), N_("time"))
STEPS_HEADER = N_("steps")  # the screen's column beside the table's: steps done/total
ROW_STATUSES = (*RUN_STATUSES, "queued", "not run", "?")
STATUS_WORDS = (N_("queued"), N_("not run"))  # the others are the run states' words (core/run.py)

RESCAN_S = 5.0  # a full look at every row and the directory's listing at least this often
LOADS_PER_REFRESH = 50  # run directories read per refresh (~1 ms each): a big sweep fills in over a few
MAX_CSV = 16 * 2**20  # 10,000 rows of sweep.csv are about 2 MB
MAX_LOOK_BACK = 256  # of the metrics lines a run gained since the last look, at most this many read for val acc


def short_names(keys: list[str]) -> list[str]:
    """'model.activation' -> 'activation', unless two keys share their last part."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [s if last.count(s) == 1 else k for s, k in zip(last, keys)]


def holds_run_files(path: Path) -> bool:
    """`path` says what ran (config.toml, or a watched run's model.toml): a run directory, not a sweep."""
    return any(os.path.lexists(path / name) for name in ("config.toml", MODEL_FILE))


def is_sweep_dir(path: str | Path, look: int = 64) -> bool:
    """A sweep directory: no run of its own, and sweep.csv, a plan, or a subdirectory that holds a run (among
    the first `look` entries: a big directory that is none is not listed whole)."""
    path = Path(path)
    try:
        if not path.is_dir() or holds_run_files(path):
            return False
        if any(os.path.lexists(path / name) for name in (CSV_NAME, PLAN_NAME)):
            return True
        with os.scandir(path) as entries:
            for i, entry in enumerate(entries):
                if i >= look:
                    break
                run = Path(entry.path)
                # A run, or one starting: its directory is locked before config.toml is written.
                if entry.is_dir(follow_symlinks=False) and any((run / n).is_file() for n in ("config.toml", LOCK_NAME)):
                    return True
    except OSError:
        return False
    return False


def count_runs(path: str | Path) -> int:
    """How many configurations a sweep directory has: its plan's, else its run subdirectories."""
    path = Path(path)
    plan = read_plan(path)
    if plan is not None:
        return len(plan["runs"])
    try:
        with os.scandir(path) as entries:
            return sum(1 for e in entries if e.is_dir(follow_symlinks=False) and holds_run_files(Path(e.path)))
    except OSError:
        return 0


# ---------------------------------------------------------------------------------------------------------
# The plan: what a sweep will run, written before its first run starts (tui_lab/sweep.py calls write_plan).


def write_plan(out_dir: Path, keys: list[str], runs: list[tuple[str, list[str], int]], done: bool = False) -> None:
    """sweep-plan.json: the grid's keys, and per configuration its directory's name, its values as typed and
    its steps; `done` once the sweep has ended (configurations never started are then `not run`, not queued)."""
    plan = {
        "keys": list(keys),
        "runs": [{"dir": name, "values": list(values), "steps": steps} for name, values, steps in runs],
        "done": done,
    }
    atomic_write(Path(out_dir) / PLAN_NAME, json.dumps(plan, indent=1) + "\n")


def read_plan(path: Path) -> dict[str, Any] | None:
    """The plan, checked ({'keys': [str], 'runs': [{'dir', 'values', 'steps'}], 'done': bool}), or None when
    there is none or it is damaged (the sweep is then read from its subdirectories alone)."""
    try:
        with open_regular(path / PLAN_NAME) as f:
            data = f.read(MAX_CSV + 1)
        plan = json.loads(data.decode("utf-8")) if len(data) <= MAX_CSV else None
    except (OSError, UserError, ValueError, RecursionError):
        return None
    if not isinstance(plan, dict) or not _strings(plan.get("keys")) or not isinstance(plan.get("runs"), list):
        return None
    runs = []
    for run in plan["runs"]:
        if not isinstance(run, dict) or not _safe_dir_name(run.get("dir")) or not _strings(run.get("values")):
            return None
        if len(run["values"]) != len(plan["keys"]):
            return None
        steps = run.get("steps")
        runs.append({**run, "steps": steps if isinstance(steps, int) and not isinstance(steps, bool) else 0})
    return {"keys": plan["keys"], "runs": runs, "done": plan.get("done") is True}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _safe_dir_name(name: Any) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


# ---------------------------------------------------------------------------------------------------------
# A row.


@dataclass
class SweepRow:
    """One configuration as the sweep screen shows it."""

    name: str  # its directory's name under the sweep
    path: Path
    values: list[str]  # one per key of SweepDir.keys
    status: str = "queued"  # a run status, "queued", "not run", or "?" (a summary that cannot be read)
    steps: int = 0
    total: int = 0  # 0: not known
    ratio: float | None = None
    final_loss: float | None = None
    final_val_acc: float | None = None
    time_s: float | None = None
    message: str = ""
    order: int = 0  # the sweep's own order (the plan's, else sweep.csv's, else by name)

    @property
    def has_run(self) -> bool:
        """There is a run directory to open or pin."""
        return self.status not in ("queued", "not run")

    def steps_text(self) -> str:
        if not self.has_run:
            return fmt.MISSING
        return f"{self.steps}/{self.total}" if self.total else str(self.steps)

    def cells(self) -> list[str]:
        """The row as the printed sweep table writes it (tui_lab/sweep.py _cells), steps before the time."""
        return [
            *self.values,
            fmt.sci(self.ratio, fmt.MISSING),
            fmt.num(self.final_loss),
            fmt.num(self.final_val_acc, 3),
            _(self.status),
            self.steps_text(),
            f"{self.time_s:.1f}s" if self.time_s is not None else fmt.MISSING,
        ]

    def sort_value(self, column: int, n_keys: int) -> tuple[Any, ...]:
        """What column `column` of `cells()` sorts by: numbers as numbers, missing ones last."""
        if column < n_keys:
            value = self.values[column] if column < len(self.values) else ""
            number = fmt.finite(_number(value))
            return (0, number, "") if number is not None else (1, 0.0, value.casefold())
        which = column - n_keys
        if which == 3:
            return (0, 0.0, self.status)
        number = [self.ratio, self.final_loss, self.final_val_acc, None, self.steps, self.time_s][which]
        if which == 0 and isinstance(number, float) and math.isinf(number):
            return (0, number, "")
        number = fmt.finite(number) if which != 4 or self.has_run else None
        return (0, number, "") if number is not None else (1, 0.0, "")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------
# Following one run directory of the sweep.


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


@dataclass
class _RunReader:
    """One run directory of the sweep, read as it grows: only what changed since the last look."""

    path: Path
    cfg: LabConfig | None = None
    summary_sig: tuple[int, int, int] | None = None
    metrics_sig: tuple[int, int, int] | None = None
    reader: JsonlReader | None = None
    last_start: int | None = None
    ratio_read: bool = False
    status: str = "running"
    steps: int = 0
    total: int = 0
    ratio: float | None = None
    loss: float | None = None
    val_acc: float | None = None
    time_s: float | None = None
    message: str = ""
    final: bool = False  # summary.json says it ended: its numbers are the summary's
    values: tuple[tuple[str, ...], list[str]] | None = None  # its values of the sweep's keys (SweepDir._values)

    def poll(self) -> bool:
        """Look at the directory again; True when what it shows changed."""
        changed = False
        sig = _signature(self.path / "summary.json")
        if sig != self.summary_sig:
            self.summary_sig = sig
            changed = self._read_summary() or changed
        if not self.final:
            changed = self._read_metrics() or changed
        return changed

    def _read_summary(self) -> bool:
        before = self._shown()
        summary = read_summary(self.path)
        if summary is None:
            # Absent: a run that is starting (config.toml comes first); present but unreadable: damage.
            self.status = "running" if self.summary_sig is None else "?"
            return self._shown() != before
        status = summary.get("status")
        self.status = status if status in RUN_STATUSES else "?"
        total = summary.get("total_steps")
        if isinstance(total, int) and not isinstance(total, bool) and total > 0:
            self.total = total
        self.final = self.status not in ("running", "?")
        if self.final:
            steps = summary.get("steps")
            self.steps = steps if isinstance(steps, int) and not isinstance(steps, bool) else self.steps
            final = summary.get("final")
            if isinstance(final, dict):
                snap = Snapshot.from_dict(final)
                self.loss, self.val_acc = snap.loss, snap.val_acc if snap.val_acc is not None else self.val_acc
            elapsed = fmt.finite(summary.get("elapsed_s"))
            self.time_s = elapsed if elapsed is not None else self.time_s
            message = summary.get("message")
            self.message = message if isinstance(message, str) else ""
            self._read_metrics()  # the ratio, if it was not read yet (a run that ended between two looks)
        return self._shown() != before

    def _read_metrics(self) -> bool:
        path = self.path / "metrics.jsonl"
        sig = _signature(path)
        if sig == self.metrics_sig:
            return False
        self.metrics_sig = sig
        before = self._shown()
        if not self.ratio_read:
            first = read_line(path, 0)  # the step-0 snapshot: the gradients at initialisation, as the sweep's
            if first is not None:
                self.ratio_read = True
                if step_of(first) == 0:
                    snap = Snapshot.from_dict(first)
                    self.ratio = None if snap.nonfinite else grad_ratio(snap.layers)
        if self.final:
            return self._shown() != before
        # Where the new lines start (no JSON parsed, only the bytes written since the last look), then the last.
        if self.reader is None:
            self.reader = JsonlReader(path)
        train = self.cfg.train if self.cfg is not None else None
        # The lines between two evaluations, and one more: the lines gained hold the latest val acc, if any.
        look_back = min(train.eval_every // max(train.log_every, 1) + 2, MAX_LOOK_BACK) if train else 2
        starts: deque[int] = deque(maxlen=look_back)
        try:
            for start, _empty in self.reader.records(parse=False):
                starts.append(start)
        except UserError:
            return self._shown() != before  # no longer a regular file: what was read stays
        if starts:
            self.last_start = starts[-1]
            record = read_line(path, self.last_start)
            if record is not None:
                snap = Snapshot.from_dict(record)
                self.steps, self.loss, self.time_s = snap.step, snap.loss, snap.time_s
            # Validation comes every eval_every steps, not on each line: the latest of the lines gained.
            for start in reversed(starts):
                line = record if start == self.last_start else read_line(path, start)
                val_acc = fmt.finite(line.get("val_acc")) if line is not None else None
                if val_acc is not None:
                    self.val_acc = val_acc
                    break
        return self._shown() != before

    def _shown(self) -> tuple[Any, ...]:
        return (self.status, self.steps, self.total, self.ratio, self.loss, self.val_acc, self.time_s, self.message)


# ---------------------------------------------------------------------------------------------------------
# The whole sweep.


class SweepDir:
    """A sweep directory, followed: `refresh()` reads what changed, `rows()` the table, `keys` its key columns.
    Raises UserError (one line) when `path` is not a readable sweep directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            if not self.path.is_dir():
                raise UserError(_("{path}: not a directory").format(path=self.path))
            os.listdir(self.path)
        except OSError as exc:
            raise UserError(os_error_line(exc, self.path)) from None
        if not is_sweep_dir(self.path):
            message = _("{path}: not a sweep directory (no sweep.csv and no run directories in it)")
            raise UserError(message.format(path=self.path))
        self.keys: list[str] = []  # the grid's keys (dotted), as the table's first columns
        self._runs: dict[str, _RunReader] = {}
        self._broken: set[str] = set()  # subdirectories that are no run (damaged): not looked at again
        self._csv: dict[str, dict[str, Any]] = {}  # by directory name: the finished runs' rows
        self._csv_order: dict[str, int] = {}
        self._csv_keys: list[str] = []
        self._csv_sig: tuple[int, int, int] | None = None
        self._plan: dict[str, Any] | None = None
        self._plan_sig: tuple[int, int, int] | None = None
        self._dir_sig: tuple[int, int, int] | None = None
        self._names: list[str] = []  # the run subdirectories, by name
        self._totals: dict[str, int] = {}  # total steps of the ended runs that did not complete (0: unknown)
        self._rescanned = -math.inf
        self.refresh()

    @property
    def name(self) -> str:
        return self.path.name

    def header(self) -> list[str]:
        """The column titles: the keys' short names as typed, then the results' (N_: pass them through _())."""
        keys = short_names(self.keys) if self.keys else [N_("run")]
        return [*keys, *RESULT_HEADER[:4], STEPS_HEADER, RESULT_HEADER[4]]

    @property
    def key_count(self) -> int:
        return max(len(self.keys), 1)

    def refresh(self) -> bool:
        """Read what changed since the last look; True when a row changed (or rows came or went)."""
        now = time.monotonic()
        full = now - self._rescanned >= RESCAN_S
        changed = self._read_plan() | self._read_csv()
        sig = _signature(self.path)
        if full or sig != self._dir_sig:
            self._dir_sig = sig
            changed |= self._list()
        if full:
            self._rescanned = now
        loads, loaded = 0, False
        for name in list(self._names):  # _load drops a damaged one from the list
            if name in self._csv:
                if name not in self._totals and self._csv[name]["status"] != "completed":
                    self._totals[name] = _total_steps(self.path / name)  # once: where a stopped run was going
                continue  # ended: sweep.csv has its row, the directory need not be read
            reader = self._runs.get(name)
            if reader is None:
                if loads >= LOADS_PER_REFRESH:
                    continue
                loads += 1
                reader = self._load(name)
                if reader is None:
                    continue
                changed = loaded = True
            elif reader.final and not full:
                continue
            changed |= reader.poll()
        if loaded and not self._csv_keys and not self._plan:
            changed |= self._derive_keys()  # differences between every pair of configs: only when runs came
        return changed

    def _read_plan(self) -> bool:
        sig = _signature(self.path / PLAN_NAME)
        if sig == self._plan_sig:
            return False
        self._plan_sig = sig
        self._plan = read_plan(self.path)
        if self._plan is not None:
            self.keys = list(self._plan["keys"])
        return True

    def _read_csv(self) -> bool:
        sig = _signature(self.path / CSV_NAME)
        if sig == self._csv_sig:
            return False
        self._csv_sig = sig
        try:
            with open_regular(self.path / CSV_NAME) as f:
                data = f.read(MAX_CSV + 1)
        except (OSError, UserError):
            return False  # none yet (or not a file): the subdirectories say it all
        if len(data) > MAX_CSV:
            return False
        rows = list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))))
        if not rows or tuple(rows[0][-len(RESULT_COLUMNS) :]) != RESULT_COLUMNS:
            return False  # not a sweep's csv: ignored
        keys = rows[0][: -len(RESULT_COLUMNS)]
        n = len(keys)
        table: dict[str, dict[str, Any]] = {}
        order: dict[str, int] = {}
        for row in rows[1:]:
            if len(row) != len(rows[0]) or row[n + 3] not in RUN_STATUSES:
                continue  # a damaged line
            name = Path(row[n + 6]).name
            if not _safe_dir_name(name):
                continue
            steps = _int(row[n + 4])
            table[name] = {
                "values": row[:n],
                "ratio": _float(row[n]),
                "final_loss": _float(row[n + 1]),
                "final_val_acc": _float(row[n + 2]),
                "status": row[n + 3],
                "steps": steps,
                "time_s": _float(row[n + 5]),
            }
            order.setdefault(name, len(order))
        self._csv, self._csv_order, self._csv_keys = table, order, keys
        if self._plan is None:
            self.keys = keys
        return True

    def _list(self) -> bool:
        """The run subdirectories now there."""
        try:
            with os.scandir(self.path) as entries:
                names = sorted(
                    e.name
                    for e in entries
                    if e.name not in self._broken and e.is_dir(follow_symlinks=False) and _safe_dir_name(e.name)
                )
        except OSError:
            return False
        if names == self._names:
            return False
        gone = set(self._names) - set(names)
        for name in gone:
            self._runs.pop(name, None)
        self._names = names
        return True

    def _load(self, name: str) -> _RunReader | None:
        """A new subdirectory: a run once its config.toml is there (a run that is starting makes its directory
        first); one that cannot be read as a run is skipped, and not looked at again."""
        from tui_lab.core.runlog import check_run_dir

        path = self.path / name
        if not (path / "config.toml").exists():
            if os.path.lexists(path / "config.toml"):
                self._broken.add(name)  # a dangling link
            return None
        try:
            check_run_dir(path)
            cfg = load_config(path / "config.toml")
        except (UserError, OSError):
            self._broken.add(name)
            self._names.remove(name)
            return None
        reader = self._runs[name] = _RunReader(path, cfg, total=cfg.train.steps)
        return reader

    def _derive_keys(self) -> bool:
        """No sweep.csv and no plan yet: the keys are those whose values differ between the runs (file order)."""
        configs = [r.cfg for r in self._runs.values() if r.cfg is not None]
        found = {key for cfg in configs[1:] for key, _a, _b in differences(configs[0], cfg)}
        keys = [key for key in _dotted_keys(configs[0]) if key in found] if configs else []
        if keys == self.keys:
            return False
        self.keys = keys
        return True

    def rows(self) -> list[SweepRow]:
        """One row per configuration, in the sweep's order."""
        out: list[SweepRow] = []
        plan_runs = self._plan["runs"] if self._plan is not None else []
        planned = {run["dir"]: (i, run) for i, run in enumerate(plan_runs)}
        names = list(dict.fromkeys([*(r["dir"] for r in plan_runs), *self._csv_order, *self._runs]))
        for index, name in enumerate(names):
            reader = self._runs.get(name)
            done = self._csv.get(name)
            plan = planned.get(name)
            if reader is None and done is None and plan is None:
                continue
            row = SweepRow(name, self.path / name, self._values(name, reader, done, plan))
            # The plan's order, else sweep.csv's (the plan's too, for what ended), else by name.
            row.order = plan[0] if plan is not None else len(plan_runs) + index
            if plan is not None:
                row.total = plan[1]["steps"]
            if reader is not None:
                row.status, row.steps, row.total = reader.status, reader.steps, reader.total or row.total
                row.ratio, row.final_loss, row.final_val_acc = reader.ratio, reader.loss, reader.val_acc
                row.time_s, row.message = reader.time_s, reader.message
            if done is not None:  # ended: the printed table's numbers
                row.status, row.steps = done["status"], done["steps"]
                row.ratio, row.final_loss = done["ratio"], done["final_loss"]
                row.final_val_acc, row.time_s = done["final_val_acc"], done["time_s"]
                row.total = row.total or self._totals.get(name, 0) or (row.steps if row.status == "completed" else 0)
            elif reader is None:
                row.status = "not run" if self._plan is not None and self._plan["done"] else "queued"
            out.append(row)
        out.sort(key=lambda r: r.order)
        return out

    def _values(self, name: str, reader: _RunReader | None, done: dict | None, plan: Any) -> list[str]:
        if not self.keys:
            return [name]
        if plan is not None:
            return list(plan[1]["values"])
        if done is not None and self._csv_keys == self.keys:
            return list(done["values"])
        if reader is not None and reader.cfg is not None:
            keys = tuple(self.keys)
            if reader.values is None or reader.values[0] != keys:  # once per run (and set of keys)
                data = config_to_dict(reader.cfg)
                reader.values = (keys, [_typed(_lookup(data, key)) for key in keys])
            return list(reader.values[1])
        return ["?"] * len(self.keys)


def _total_steps(path: Path) -> int:
    summary = read_summary(path) or {}
    total = summary.get("total_steps")
    return total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else 0


def _dotted_keys(cfg: LabConfig) -> list[str]:
    """Every key of a configuration, dotted, in file order."""
    data = config_to_dict(cfg)
    return [
        f"{section}.{key}" if isinstance(values, dict) else section
        for section, values in data.items()
        for key in (values if isinstance(values, dict) else [section])
    ]


def _lookup(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _typed(value: Any) -> str:
    """A config value as one would type it in --grid."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "?" if value is None else str(value)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if not math.isnan(value) else None


def _int(text: str) -> int:
    with contextlib.suppress(ValueError):
        return max(int(text), 0)
    return 0
