"""The run on screen: one trained here (`LiveRun`) or one read from a run directory (`RecordedRun`).

Both answer the same questions (what to draw, in which state, whether keys may change it), so the screen
never asks which kind it has. Neither imports Textual nor the app: the app starts a live run's training in
a thread worker, and the screen polls whichever run it is given.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from tui_lab.core.config import LabConfig
from tui_lab.core.diagnosis import diagnose
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.i18n import _, ngettext
from tui_lab.core.run import LIVE_KEYS, Control, Finding, Learned, RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import (
    RUN_STATUSES,
    JsonlReader,
    LearnedLog,
    RunLog,
    check_run_dir,
    default_run_dir,
    read_line,
    read_meta,
    read_run_config,
)
from tui_lab.core.watched import is_watched
from tui_lab.ui.bridge import Bridge, View

FOLLOW_S = 0.5  # how often a recorded run looks for new lines in a growing run directory


class Run(Protocol):
    cfg: LabConfig
    name: str
    run_dir: Path | None
    bridge: Bridge
    read_only: bool  # no key may start, pause or stop it
    can_scrub: bool  # ←/→ move through its snapshots
    records_histograms: bool

    @property
    def state(self) -> str: ...

    def poll(self) -> None: ...

    def findings(self, view: View) -> list[Finding]: ...

    def learned(self, view: View) -> Learned | None: ...

    def position(self) -> str: ...

    def scrubbed(self) -> Snapshot | None: ...

    def scrub(self, delta: int) -> None: ...

    def scrub_to(self, index: int) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float) -> bool: ...


class Timeline:
    """A run's snapshots by index. A live run's come back from its metrics.jsonl when asked for (a long run's
    snapshots would not fit in memory as objects: a few KB each, tens of thousands of them); only where each
    line starts is kept, and a few recently read snapshots. A run with no run directory (a replay) keeps its
    snapshots in memory."""

    CACHE = 64

    def __init__(self, run_dir: Path | None = None, total_steps: int = 0) -> None:
        self.path = run_dir / "metrics.jsonl" if run_dir is not None else None
        self.total_steps = total_steps
        self._starts: list[int] = []  # byte offset of each whole line that is a record
        self._reader = JsonlReader(self.path) if self.path is not None else None
        self._memory: list[Snapshot] = []
        self._cache: dict[int, Snapshot] = {}

    @property
    def skipped(self) -> int:
        """Lines of metrics.jsonl that were not records (damage), skipped."""
        return self._reader.skipped if self._reader is not None else 0

    def add(self, snap: Snapshot) -> None:
        """Keep a snapshot in memory (no run directory)."""
        if self.path is None:
            self._memory.append(snap)

    def follow(self, final: bool = False) -> Iterable[dict[str, Any]]:
        """Index the lines written since the last look, yielding each record (a partly written last line waits,
        unless `final`). Raises UserError when metrics.jsonl is not a regular file or cannot be read."""
        if self._reader is None:
            return
        for start, record in self._reader.records(final):
            self._starts.append(start)
            yield record

    def refresh(self) -> None:
        """Index the lines written since the last look (a partly written last line waits). Not parsed here: a
        live run's own lines are whole (RunLog writes a line whole or not at all), and one that no longer
        parses reads back as an empty snapshot."""
        if self._reader is None:
            return
        try:
            for start, _empty in self._reader.records(parse=False):
                self._starts.append(start)
        except UserError:
            return  # no longer readable: what was indexed stays

    def __len__(self) -> int:
        return len(self._memory) if self.path is None else len(self._starts)

    def __getitem__(self, index: int) -> Snapshot:
        if self.path is None:
            return self._memory[index]
        index = range(len(self._starts))[index]  # negative indices, and IndexError past the end
        snap = self._cache.get(index)
        if snap is None:
            record = read_line(self.path, self._starts[index]) or {}  # {}: the file changed under us
            snap = Snapshot.from_dict(record, total_steps=self.total_steps)
            if len(self._cache) >= self.CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = snap
        return snap

    def before(self, index: int, count: int) -> list[Snapshot]:
        """Up to `count` snapshots just before `index`, oldest first (the history a diagnosis looks at)."""
        return [self[i] for i in range(max(0, index - count), index)]


class Scrubbing:
    """←/→, Home/End through a run's snapshots while the bridge keeps the whole run: the curves stay whole
    (a marker shows where the cursor is), the per-snapshot panels show the snapshot under the cursor."""

    records: Timeline | list[Snapshot]
    cursor: int | None = None  # None: following the latest snapshot
    cfg: LabConfig
    bridge: Bridge
    _scrubbed_findings: dict[int, list[Finding]]
    learned_log: LearnedLog  # learned.jsonl by step

    def _sync(self) -> None:
        """Bring the records up to what the run has written."""

    def scrubbed(self) -> Snapshot | None:
        return self.records[self.cursor] if self.cursor is not None else None

    def position(self) -> str:
        if self.cursor is None:
            return ""
        return _("snapshot {index}/{count} (←/→, End: latest)").format(index=self.cursor + 1, count=len(self.records))

    def scrub(self, delta: int) -> None:
        """Move `delta` snapshots back (< 0) or forward from the one on screen."""
        self._sync()
        n = len(self.records)
        if not n:
            return
        at = self.cursor if self.cursor is not None else n - 1
        self.scrub_to(max(at + delta, 0))  # past the last one: following again

    def scrub_to(self, index: int) -> None:
        """Show snapshot `index`; -1 (or the last one) follows the run again."""
        self._sync()
        n = len(self.records)
        if not n:
            return
        index = n - 1 if index < 0 else min(index, n - 1)
        self.cursor = None if index >= n - 1 else index

    def learned(self, view: View) -> Learned | None:
        """What the network had learned at the snapshot on screen: the latest measured at or before it."""
        if self.cursor is None:
            return view.learned
        self.learned_log.refresh()
        return self.learned_log.at(self.records[self.cursor].step)

    def diagnosed(self, index: int) -> list[Finding]:
        """The findings of snapshot `index`, judged against the ones before it as the trainer did."""
        found = self._scrubbed_findings.get(index)
        if found is None:
            meta = self.bridge.meta
            first = self.records[0] if len(self.records) else None
            recent = self.records.before(index, 32) if isinstance(self.records, Timeline) else (
                self.records[max(0, index - 32) : index]
            )  # fmt: skip
            found = diagnose(self.records[index], recent, self.cfg, chance_loss=meta.chance_loss, initial=first)
            self._scrubbed_findings[index] = found
        return found


class LiveRun(Scrubbing):
    """A run trained in this process: its Control, its bridge, and the thread that trains it."""

    read_only = False
    can_scrub = True
    records_histograms = True

    def __init__(
        self,
        cfg: LabConfig,
        name: str,
        bridge: Bridge | None = None,
        run_dir: Path | None = None,
        runlog: RunLog | None = None,
        control: Control | None = None,
    ):
        self.cfg, self.name = cfg, name
        self.bridge = bridge or Bridge()
        self.run_dir, self.runlog = run_dir, runlog
        self.control = control or Control()
        self.thread: threading.Thread | None = None
        self.done = threading.Event()  # train() has returned (or never will run: a replay)
        self.records = Timeline(run_dir, cfg.train.steps)  # for scrubbing: read back from the run directory
        self.cursor: int | None = None
        self._scrubbed_findings: dict[int, list[Finding]] = {}
        self.learned_log = LearnedLog(run_dir)
        self.trainer: Any = None  # the Trainer, kept once it ran: a finished run can be extended
        self.first_steps = cfg.train.steps  # what an extension adds each time
        self.live = {key: getattr(cfg.optim, key.split(".")[1]) for key in LIVE_KEYS}  # as changed while it goes
        self.makes_dir = False  # its run directory is made when its training starts (create)
        self.started = False  # its training began (a run stopped while it waited for its turn never does)
        self._cancelled = False

    @classmethod
    def create(cls, cfg: LabConfig, name: str, histogram_layer: int, step: bool = False) -> LiveRun:
        """A new run; its run directory is made when its training starts (`train`), so a run stopped before
        its turn leaves none behind (r x n mashed). `step`: paused after one step."""
        run = cls(cfg, name)
        run.makes_dir = True
        run.control.histogram_layer = histogram_layer
        if step:
            run.control.step_once()
        return run

    @classmethod
    def replay(
        cls,
        cfg: LabConfig,
        name: str,
        meta: RunMeta,
        snapshots: Iterable[Snapshot],
        paused: bool = True,
        run_dir: Path | None = None,
        result: RunResult | None = None,
    ) -> LiveRun:
        """A fixed sequence of snapshots shown as if a run produced them (deterministic tests, demos); with the
        run's result it reads as finished (completed, diverged)."""
        run = cls(cfg, name, run_dir=run_dir)
        if paused:
            run.control.pause()
        run.bridge.on_start(meta)
        for snap in snapshots:
            run.bridge(snap)
            run.records.add(snap)
            if snap.learned is not None:
                run.learned_log.add(snap.learned)
        if result is not None:
            run.bridge.finish(result)
        run.done.set()
        return run

    def train(self, previous: Run | None = None) -> None:
        """The body of the training thread: wait for the previous run to let go, then make the run directory
        and train to the end. A run stopped before this began ends `stopped` at once, with no directory."""
        self.thread = threading.current_thread()
        try:
            if previous is not None:
                previous.join(10)
            if self.control.stopped:
                self.bridge.finish(RunResult("stopped", 0))
                return
            if self.makes_dir and self.runlog is None:
                runlog = RunLog(default_run_dir(self.name))
                self.records = Timeline(runlog.dir, self.cfg.train.steps)  # before run_dir: the screen reads them
                self.learned_log = LearnedLog(runlog.dir)
                self.runlog, self.run_dir = runlog, runlog.dir
            self.started = True
            from tui_lab.core.trainer import Trainer  # torch: prewarmed by the app, never on the UI thread

            sinks = [s for s in (self.runlog, self.bridge) if s is not None]
            self.trainer = Trainer(self.cfg, self.control, sinks=sinks, preset=self.name)
            self.trainer.run()
        except BaseException as exc:  # noqa: BLE001 - shown on screen, never a crash
            if self.bridge.result is None:
                self.bridge.finish(RunResult("failed", 0, message=one_line(exc)))
        finally:
            self.done.set()

    @property
    def can_extend(self) -> bool:
        """Ended well (completed or stopped) with its model still here: it can go on."""
        result = self.bridge.result
        return (
            result is not None and result.status in ("completed", "stopped") and self.trainer is not None
            and self.trainer._parts is not None and self.done.is_set()
        )  # fmt: skip

    def will_extend(self) -> None:
        """An extension is queued (on the UI thread): the run is busy from now on, and a stop before its turn
        cancels it (Trainer.extend forgets earlier stops)."""
        self.done.clear()
        self._cancelled = False

    def extend(self, more: int) -> None:
        """The body of the training thread when a finished run goes on for `more` steps (Trainer.extend)."""
        self.done.clear()
        self.thread = threading.current_thread()
        try:
            if self._cancelled:
                return
            self.trainer.extend(more)
            self.cfg = self.trainer.cfg
        except BaseException as exc:  # noqa: BLE001 - shown on screen, never a crash
            self.bridge.finish(RunResult("failed", 0, message=one_line(exc)))
        finally:
            self.done.set()

    @property
    def finished(self) -> bool:
        return self.bridge.result is not None

    @property
    def state(self) -> str:
        if self.bridge.result is not None:
            return self.bridge.result.status
        if not self.bridge.meta.layers:
            return "loading"
        return "paused" if self.control.paused else "running"

    def poll(self) -> None:
        """Nothing to fetch: the trainer pushes into the bridge."""

    def _sync(self) -> None:
        self.records.refresh()

    def findings(self, view: View) -> list[Finding]:
        if self.cursor is not None:
            return self.diagnosed(self.cursor)
        return list(view.latest.findings) if view.latest is not None else []

    def stop(self) -> None:
        self._cancelled = True  # a queued extension does not start
        self.control.stop()
        self.control.resume()  # a paused trainer wakes up to see the stop

    def join(self, timeout: float) -> bool:
        """Stop and wait for the training thread to finish its run directory; True when it did in time."""
        self.stop()
        if self.thread is None or self.thread is threading.current_thread():
            return True  # its training never began (a replay, a run stopped in the queue), or asked from itself
        return self.done.wait(timeout)


class TrainingLine:
    """The one thread that trains: runs (and extensions) wait their turn here and go one after the other, so
    at most one trains at a time. A run stopped while it waits ends at once when its turn comes (no run
    directory, no model built), so a storm of r/x/n costs nothing but the runs that really began. The thread
    exists only while there is work: with nothing queued, no thread is left behind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[Callable[[], None]] = deque()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="tui-lab-training", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    return
                job = self._jobs.popleft()
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job reports its own failure (LiveRun.train)
                pass

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def join(self, timeout: float) -> bool:
        """Wait for the queued work to end (stop the runs first); True when it did within `timeout`."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()


class RecordedRun(Scrubbing):
    """A run directory, finished or still growing (a headless run elsewhere): followed, and scrubbed with ←/→.
    A damaged directory shows what it still holds: lines that are not records are skipped and counted (the
    status line says how many), values of the wrong type are missing; a file that is not a regular file, or
    that cannot be read, is refused when it is opened (a UserError: `tui-lab show` says it in one line)."""

    read_only = True
    can_scrub = True
    records_histograms = False  # metrics.jsonl keeps no histograms

    def __init__(self, directory: Path):
        self.run_dir = Path(directory)
        check_run_dir(self.run_dir)
        self.watched = is_watched(self.run_dir)  # tui_lab.watch: any model, no lab data set (core/watched.py)
        self.cfg = read_run_config(self.run_dir)
        self.meta, _summary = read_meta(self.run_dir, self.cfg)
        self.name = self.meta.preset or self.run_dir.name
        self.status = "running"
        # By line offset, read back when shown: a long run's snapshots would not fit in memory as objects.
        self.records = Timeline(self.run_dir, self.cfg.train.steps)
        self.cursor: int | None = None  # None: following the end
        self.bridge = Bridge()
        self.bridge.on_start(self.meta)
        self._result: RunResult | None = None
        self._last_poll = -FOLLOW_S
        self._scrubbed_findings: dict[int, list[Finding]] = {}  # by record index: metrics.jsonl keeps none
        self.learned_log = LearnedLog(self.run_dir)
        self._read(raising=True)

    @property
    def state(self) -> str:
        if self.cursor is not None:
            return "replay"
        return "following" if self.status == "running" else self.status

    @property
    def skipped(self) -> int:
        """Lines of metrics.jsonl and learned.jsonl that could not be read, skipped."""
        return self.records.skipped + self.learned_log.skipped

    def position(self) -> str:
        where = super().position()
        if not self.skipped:
            return where
        note = ngettext("{count} unreadable line skipped", "{count} unreadable lines skipped", self.skipped)
        note = note.format(count=self.skipped)  # after the state on the status line: "completed · 3 unreadable..."
        return f"· {note} · {where}" if where else f"· {note}"

    def poll(self) -> None:
        """Read what the run directory gained since the last look (at most every FOLLOW_S)."""
        now = time.monotonic()
        if self.status != "running" or now - self._last_poll < FOLLOW_S:
            return
        self._last_poll = now
        self._read(raising=False)

    def _read(self, raising: bool) -> None:
        # The summary first: once it says the run ended, metrics.jsonl was complete before it was written, so
        # the lines read after it are all there are (a cut last line is then damage, not a line being written).
        _meta, summary = read_meta(self.run_dir)
        status = summary.get("status")
        self.status = status if status in RUN_STATUSES else "running"
        final = self.status != "running"
        last: Snapshot | None = None
        try:
            for record in self.records.follow(final):
                last = Snapshot.from_dict(record, total_steps=self.cfg.train.steps)
                self.bridge(last)
        except UserError:
            if raising:
                raise
        self.learned_log.refresh(final)  # after metrics.jsonl: each learned line is written before its snapshot's
        if last is None and len(self.records):
            last = self.records[-1]
        learned = self.learned_log.at(last.step) if last is not None else None
        if learned is not None and (self.bridge.learned is None or learned.step > self.bridge.learned.step):
            self.bridge.add_learned(learned)
        if final and self._result is None:
            steps, message, divergence = summary.get("steps"), summary.get("message"), summary.get("divergence")
            self._result = RunResult(
                self.status,  # type: ignore[arg-type]
                steps if isinstance(steps, int) and not isinstance(steps, bool) else 0,
                message=message if isinstance(message, str) else "",
                divergence=divergence if isinstance(divergence, dict) else None,
            )
            self.bridge.finish(self._result)

    def findings(self, view: View) -> list[Finding]:
        """The findings of the snapshot on screen, diagnosed against the ones before it, as the trainer did
        (metrics.jsonl keeps no findings): the last snapshot's are the summary's."""
        if not self.records:
            return []
        return self.diagnosed(self.cursor if self.cursor is not None else len(self.records) - 1)

    def stop(self) -> None:
        """Nothing runs here."""

    def join(self, timeout: float) -> bool:
        return True
