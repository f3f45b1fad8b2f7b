"""The run directory (README: Run directory): config.toml, metrics.jsonl (appended and flushed per snapshot),
learned.jsonl (likewise, for the snapshots that carry what the network learned), summary.json (replaced
atomically). Written so that a kill or a dropped SSH session loses at most the last
snapshot: every whole line of metrics.jsonl parses, and summary.json is always a complete file.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import json
import math
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tui_lab.core.config import LabConfig, dumps_config, load_config
from tui_lab.core.errors import UserError, os_cause, os_error_line
from tui_lab.core.i18n import _
from tui_lab.core.run import RUN_STATUSES, Learned, RunMeta, RunResult, Snapshot
from tui_lab.core.watched import MODEL_FILE, is_watched, read_description, stand_in_config

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
    try:  # nearly every line is finite: json's C encoder alone (walking it in Python first costs twice as much)
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError:  # a NaN or Inf somewhere: None in its place
        return json.dumps(strict(value), allow_nan=False, ensure_ascii=False)


LOCK_NAME = ".tui-lab.lock"  # in every run directory: flock'ed while a run writes there; holds the writer's pid
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class RunDirError(UserError):
    """The run directory cannot be written (a full disk, a lost permission): the run fails, and says why."""


def _out_error(path: Path, exc: OSError) -> UserError:
    return UserError(_("--out {path}: cannot write there ({error})").format(path=path, error=os_cause(exc)))


def holds_run(path: Path) -> bool:
    """Whether `path` recognisably holds a tui-lab run (what --force may replace): a config.toml, and a
    summary.json that a run wrote (a known status, its total_steps and layers). A user's own directory with a
    config.toml of theirs is not one."""
    # A watched run (tui_lab.watch) says what ran in model.toml instead.
    if not any((path / name).is_file() and not (path / name).is_symlink() for name in ("config.toml", MODEL_FILE)):
        return False
    summary = read_summary(path)
    return (
        summary is not None
        and summary.get("status") in RUN_STATUSES
        and isinstance(summary.get("total_steps"), int)  # written from the start, and by an extension too
        and isinstance(summary.get("layers"), list)
    )


def check_out_path(directory: str | Path, option: str = "--out") -> Path:
    """`directory` as a path a run may be written to, or a UserError: not empty, `~user` known, and not itself a
    symbolic link (a link could send the run's files anywhere; name the directory it points to)."""
    if not str(directory).strip():
        raise UserError(_("{option}: an empty path; name a directory").format(option=option))
    try:
        path = Path(directory).expanduser()
    except RuntimeError:  # ~nouser
        raise UserError(
            _("{option} {path}: unknown user's home directory").format(option=option, path=directory)
        ) from None
    if path.is_symlink():
        message = _("{option} {path}: is a symbolic link; name the directory it points to")
        raise UserError(message.format(option=option, path=path))
    return path


def prepare_run_dir(directory: str | Path, force: bool | None = False) -> Path:
    """Make `directory` (given as --out) ready to hold runs: absent or empty, and writable. `force=True` takes a
    directory that holds a tui-lab run (`holds_run`) too, never any other; `force=None` means the command has no
    --force to offer. Refused with a UserError otherwise, before anything is written."""
    path = check_out_path(directory)
    try:
        if path.exists() and not path.is_dir():
            raise UserError(_("--out {path}: exists and is not a directory").format(path=path))
        # A lock file alone is what a run that died at once leaves: nothing to keep.
        taken = path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir())
    except OSError as exc:
        raise _out_error(path, exc) from None
    if taken and not force:
        if force is None:
            raise UserError(_("--out {path}: exists and is not an empty directory; choose another").format(path=path))
        message = _("--out {path}: directory is not empty; choose another, or add --force to overwrite it")
        raise UserError(message.format(path=path))
    if taken and not holds_run(path):
        message = _("--out {path}: holds files that are not a tui-lab run; --force replaces only a run directory")
        raise UserError(message.format(path=path))
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600))
        probe.unlink()
    except OSError as exc:
        raise _out_error(path, exc) from None
    return path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _exclusive_temp(name: str, dir_fd: int | None) -> tuple[str, int]:
    """A new temporary file beside `name`, created exclusively (never an existing file, never through a link)."""
    for attempt in range(100):
        tmp = f".{name}.{os.getpid()}.{attempt}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
            return tmp, os.open(tmp, flags, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot make a temporary file", name)


def _replace_with(name: str, data: bytes, dir_fd: int | None, keep_open: bool = False) -> int | None:
    """Write `data` to an exclusive temporary file, then rename it over `name` (in `dir_fd`'s directory): a reader
    sees the old file or the new, and a symbolic link planted at `name` is replaced, never written through.
    With `keep_open`, the new file's descriptor is returned (for appending)."""
    tmp, fd = _exclusive_temp(name, dir_fd)
    try:
        _write_all(fd, data)
        if not keep_open:
            os.fsync(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if keep_open:
        return fd
    os.close(fd)
    return None


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file, then rename it over `path`: a reader sees the old file or the new (and
    a symbolic link at `path` is replaced, not followed)."""
    dir_fd = os.open(path.parent, os.O_RDONLY | _CLOEXEC)
    try:
        _replace_with(path.name, text.encode("utf-8"), dir_fd)
    finally:
        os.close(dir_fd)


def _pid_in(fd: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip() or 0)
    return 0


def _busy(directory: Path, pid: int) -> RunDirError:
    return RunDirError(_("{path}: another tui-lab run is writing here (pid {pid})").format(path=directory, pid=pid))


class RunLog:
    """A sink for the trainer that writes the run directory. It holds the directory's lock while the run writes
    (a second writer is refused; the kernel lets go when the process ends, however it ends), and writes every
    file through a descriptor of the directory itself: nothing is opened through a symbolic link."""

    def __init__(self, directory: str | Path, force: bool = False):
        path = check_out_path(directory)
        self.dir = path
        self._dir_fd: int | None = None
        self._lock_fd: int | None = None
        self._metrics: int | None = None  # metrics.jsonl, open while the run goes
        self._learned: int | None = None  # learned.jsonl, likewise
        self._sizes = {"metrics.jsonl": 0, "learned.jsonl": 0}  # bytes of whole lines written
        self.lines = 0
        self._meta: dict[str, Any] = {}
        try:
            if os.path.lexists(path / LOCK_NAME):  # a run may be writing there: say so before "not empty"
                self._open_dir()
                self.lock()
            self.dir = prepare_run_dir(path, force)
            self._open_dir()
            self.lock()
        except BaseException:
            self.close()
            raise

    def _open_dir(self) -> None:
        if self._dir_fd is None:
            try:
                self._dir_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
            except OSError as exc:
                raise _out_error(self.dir, exc) from None

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def learned_path(self) -> Path:
        return self.dir / "learned.jsonl"

    def lock(self) -> None:
        """Take the directory's lock (RunDirError naming the pid of the run that has it)."""
        if self._lock_fd is not None:
            return
        self._open_dir()
        try:
            fd = os.open(
                LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=self._dir_fd
            )
        except OSError as exc:
            raise RunDirError(os_error_line(exc, self.dir / LOCK_NAME)) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunDirError(_("{path}: not a regular file").format(path=self.dir / LOCK_NAME))
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise _busy(self.dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # the pid is a courtesy for the message above; the lock is what counts
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing lets go of the flock
            self._lock_fd = None

    def _close_files(self) -> None:
        """Close metrics.jsonl and learned.jsonl (each once)."""
        for name in ("_metrics", "_learned"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)

    def close(self) -> None:
        """Close every file and let go of the lock (on_finish does; a RunLog never used needs this, or exit)."""
        self._close_files()
        self.unlock()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _failed(self, exc: OSError, name: str) -> RunDirError:
        return RunDirError(os_error_line(exc, self.dir / name))

    def _open_append(self, name: str) -> int:
        """The existing file `name` for appending (a run that goes on), never through a link or into a FIFO."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC
        fd = os.open(name, flags, 0o644, dir_fd=self._dir_fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file", str(self.dir / name))
        self._sizes[name] = info.st_size
        return fd

    def description(self, meta: RunMeta) -> tuple[str, str]:
        """The file that says what ran, and its text: config.toml (a watched run's is model.toml: watch.py)."""
        assert meta.config is not None
        return "config.toml", dumps_config(meta.config)

    def on_start(self, meta: RunMeta) -> None:
        self.lock()
        self._meta = meta.summary()
        name, text = self.description(meta)
        try:
            _replace_with(name, text.encode("utf-8"), self._dir_fd)
            # New empty files renamed over any old ones (--force): one write per snapshot from here on.
            name = "metrics.jsonl"
            self._metrics = _replace_with(name, b"", self._dir_fd, keep_open=True)
            name = "learned.jsonl"
            self._learned = _replace_with(name, b"", self._dir_fd, keep_open=True)
        except OSError as exc:
            raise self._failed(exc, name) from None
        self._sizes = {"metrics.jsonl": 0, "learned.jsonl": 0}
        self.write_summary({"status": "running", "steps": 0, **self._meta})

    def on_resume(self, meta: RunMeta) -> None:
        """The run goes on (extended): the new train.steps in config.toml, metrics appended, status running."""
        assert meta.config is not None
        self.lock()
        self._meta = meta.summary()
        name = "config.toml"
        try:
            _replace_with(name, dumps_config(meta.config).encode("utf-8"), self._dir_fd)
            name = "metrics.jsonl"
            if self._metrics is None:
                self._metrics = self._open_append(name)
        except OSError as exc:
            raise self._failed(exc, name) from None
        self.write_summary({"status": "running", **self._meta})

    def _append(self, name: str, fd: int, line: str) -> None:
        """One whole line, or nothing: a write cut short (a full disk) is taken back, so every line stays whole."""
        data = line.encode("utf-8")
        try:
            _write_all(fd, data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._sizes[name])
            raise self._failed(exc, name) from None
        self._sizes[name] += len(data)

    def __call__(self, snapshot: Snapshot) -> None:
        if self._metrics is None:
            return
        if snapshot.learned is not None:  # before its metrics line: a reader that has the one has the other
            if self._learned is None:  # the run went on after it ended (on_resume)
                try:
                    self._learned = self._open_append("learned.jsonl")
                except OSError as exc:
                    raise self._failed(exc, "learned.jsonl") from None
            self._append("learned.jsonl", self._learned, dumps_strict(snapshot.learned.to_dict()) + "\n")
        self._append("metrics.jsonl", self._metrics, dumps_strict(snapshot.to_dict()) + "\n")
        self.lines += 1

    def on_finish(self, result: RunResult) -> None:
        self._close_files()
        try:
            self.write_summary({**self._meta, **result.to_dict()})
        finally:
            self.unlock()  # the run is over: a --force may replace it (an extension takes the lock again)

    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(strict(summary), allow_nan=False, indent=2) + "\n"
        self._open_dir()
        try:
            _replace_with("summary.json", text.encode("utf-8"), self._dir_fd)
        except OSError as exc:
            raise self._failed(exc, "summary.json") from None


# ---------------------------------------------------------------------------------------------------------
# Reading a run directory back (tui-lab show, the baseline picker, sweeps, tests). Whatever is in the files
# (a damaged disk, an editor, a hostile neighbour), reading never raises on content and never hangs: a line
# that is not a JSON object with a step is skipped and counted, a line longer than MAX_LINE is skipped without
# being held whole, and a file that is not a regular one (a directory, a FIFO, /dev/zero) is refused.

MAX_LINE = 16 * 2**20  # a metrics line is a few KB; longer is damage
MAX_SUMMARY = 16 * 2**20
CHUNK = 2**20  # bytes read at a time: memory stays bounded by MAX_LINE + CHUNK whatever the file's size


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file (links followed), else a UserError naming it; a missing
    file raises FileNotFoundError. Opened without blocking: a FIFO would wait for a writer forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UserError(os_error_line(exc, path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(_("{path}: not a regular file (a directory, a FIFO or a device)").format(path=path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_run_dir(directory: str | Path) -> None:
    """Refuse (UserError, one line) a run directory that cannot be read or whose files are not regular files;
    what the files hold is the readers' business (they skip what they cannot use)."""
    path = Path(directory)
    try:
        if not path.is_dir():
            raise UserError(_("{path}: not a directory; `tui-lab show` takes a run directory").format(path=path))
        os.listdir(path)  # read and search permission: a clear line now, not an empty screen later
        for name in ("config.toml", MODEL_FILE, "summary.json", "metrics.jsonl", "learned.jsonl"):
            file = path / name
            try:
                info = file.stat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode):
                raise UserError(_("{path}: not a regular file (a directory, a FIFO or a device)").format(path=file))
            if not os.access(file, os.R_OK):
                raise UserError(os_error_line(PermissionError(errno.EACCES, "", str(file))))
    except OSError as exc:
        raise UserError(os_error_line(exc, path)) from None


def step_of(record: Any) -> int | None:
    """The step of a metrics or learned line: a non-negative int (a bool, a string, a float are not)."""
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8 (UnicodeDecodeError is a ValueError), not JSON, too deep
        return None
    return record if step_of(record) is not None else None


class JsonlReader:
    """The JSON lines a file gains, read incrementally from `offset` (bytes): `records()` yields each whole
    line's (offset, record) and moves `offset` past it; a partly written last line waits for the next call
    (unless `final`: the writer is done). `skipped` counts the lines that were not a record."""

    def __init__(self, path: str | Path, start: int = 0, max_line: int = MAX_LINE) -> None:
        self.path = Path(path)
        self.offset = start
        self.skipped = 0
        self.max_line = max_line
        self._dropping = False  # inside a line longer than max_line: skipped up to its newline

    def records(self, final: bool = False, parse: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
        """Raises UserError when the file is not a regular file or cannot be read; a missing file has none.
        `parse=False` only finds where the lines start (yielding {} for each line that is not blank): a run's
        own lines, parsed when shown, are indexed 15 times faster."""
        try:
            f = open_regular(self.path)
        except FileNotFoundError:
            return
        with f:
            f.seek(self.offset)
            base = line_start = self.offset  # where the chunk and the line being read start in the file
            pending: list[bytes] = []
            pending_len = 0
            while chunk := f.read(CHUNK):
                at = 0
                while (newline := chunk.find(b"\n", at)) >= 0:
                    if self._dropping:
                        self._dropping = False  # the end of an over-long line: already counted
                    else:
                        piece = chunk[at:newline]
                        line = b"".join([*pending, piece]) if pending else piece
                        record = None
                        if len(line) <= self.max_line:
                            record = _parse_line(line) if parse else ({} if line.strip() else None)
                        self.offset = base + newline + 1
                        if record is not None:
                            yield line_start, record
                        elif line.strip():
                            self.skipped += 1
                    pending, pending_len = [], 0
                    at = newline + 1
                    line_start = self.offset = base + at
                rest = chunk[at:]
                if rest and not self._dropping:
                    if pending_len + len(rest) > self.max_line:
                        self.skipped += 1
                        self._dropping, pending, pending_len = True, [], 0
                    else:
                        pending.append(rest)
                        pending_len += len(rest)
                base += len(chunk)
                if self._dropping:
                    self.offset = base  # never read again
            if final:
                if pending:
                    record = _parse_line(b"".join(pending))
                    self.offset = base
                    if record is not None:
                        yield line_start, record
                    elif b"".join(pending).strip():
                        self.skipped += 1
                self._dropping = False
                self.offset = base


def read_metrics(directory: str | Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole lines of metrics.jsonl from byte offset `start` -> (records, next offset). A partly written
    last line (the run is still going, or was killed mid-write) is left for the next call."""
    return read_jsonl(Path(directory) / "metrics.jsonl", start)


def read_learned(directory: str | Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole lines of learned.jsonl from byte offset `start` -> (records, next offset), as `read_metrics`; a run
    directory without the file (an older run) has none."""
    return read_jsonl(Path(directory) / "learned.jsonl", start)


def read_jsonl(path: Path, start: int = 0, final: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Whole JSON lines of a file from byte offset `start` -> (records, next offset); a partial last line waits.
    Lines that are not records are skipped (JsonlReader counts them); a special file is a UserError."""
    reader = JsonlReader(path, start)
    records = [record for _at, record in reader.records(final)]
    return records, reader.offset


class LearnedLog:
    """learned.jsonl by step, to show what the network had learned at any snapshot (scrubbing, tui-lab show):
    only each line's step and where it starts are kept, a line is read back when asked for (a few are cached:
    the same line gives the same record). A run without a directory (a replay) keeps its records in memory."""

    CACHE = 8

    def __init__(self, directory: str | Path | None) -> None:
        self.path = Path(directory) / "learned.jsonl" if directory is not None else None
        self._steps: list[int] = []
        self._starts: list[int] = []
        self._reader = JsonlReader(self.path) if self.path is not None else None
        self._memory: list[Learned] = []
        self._cache: dict[int, Learned] = {}

    @property
    def skipped(self) -> int:
        """Lines of learned.jsonl that were not records (damage), skipped."""
        return self._reader.skipped if self._reader is not None else 0

    def add(self, learned: Learned) -> None:
        """Keep a record in memory (no run directory)."""
        if self.path is None:
            self._steps.append(learned.step)
            self._memory.append(learned)

    def refresh(self, final: bool = False) -> None:
        """Index the lines written since the last look (a partly written last line waits, unless `final`)."""
        if self._reader is None:
            return
        try:
            for start, record in self._reader.records(final):
                step = step_of(record)
                if step is not None and (not self._steps or step >= self._steps[-1]):
                    self._steps.append(step)
                    self._starts.append(start)
        except UserError:
            return  # no longer a regular file: what was indexed stays

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
            record = read_line(self.path, self._starts[index])
            if record is None:
                return None
            learned = Learned.from_dict(record)
            if len(self._cache) >= self.CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = learned
        return learned


def read_line(path: Path, start: int) -> dict[str, Any] | None:
    """The record on the line that starts at byte `start` (indexed earlier), or None if it is no longer one."""
    try:
        with open_regular(path) as f:
            f.seek(start)
            line = f.readline(MAX_LINE + 1)
    except (OSError, UserError):
        return None
    return _parse_line(line) if len(line) <= MAX_LINE else None


def read_summary(directory: str | Path) -> dict[str, Any] | None:
    """summary.json as a dict, or None when it is missing, not a regular file, too big or not a JSON object."""
    try:
        with open_regular(Path(directory) / "summary.json") as f:
            data = f.read(MAX_SUMMARY + 1)
        summary = json.loads(data.decode("utf-8")) if len(data) <= MAX_SUMMARY else None
    except (OSError, UserError, ValueError, RecursionError):
        return None
    return summary if isinstance(summary, dict) else None


def read_meta(directory: str | Path, config: LabConfig | None = None) -> tuple[RunMeta, dict[str, Any]]:
    """The run's meta (preset, device, layers, steps) and its whole summary ({} if it has none yet)."""
    summary = read_summary(directory) or {}
    return RunMeta.from_summary(summary, config), summary


def read_run_config(directory: str | Path) -> LabConfig:
    """The run's configuration; a watched run's stands in for its model.toml (core/watched.py)."""
    path = Path(directory) / "config.toml"
    if not os.path.lexists(path) and is_watched(directory):
        return stand_in_config(read_description(directory))
    if not os.path.lexists(path):
        raise UserError(_("{path}: not a run directory (no config.toml)").format(path=directory))
    return load_config(path)  # a special or huge file is refused there, with its name
