"""The run on screen: one trained here (`LiveRun`) or one read from a run directory (`RecordedRun`).

Both answer the same questions (what to draw, in which state, whether keys may change it), so the screen
never asks which kind it has. Neither imports Textual nor the app: the app starts a live run's training in
a thread worker, and the screen polls whichever run it is given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from tui_lab.core.config import LabConfig
from tui_lab.core.diagnosis import diagnose
from tui_lab.core.errors import one_line
from tui_lab.core.run import Control, Finding, RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import RunLog, default_run_dir, read_meta, read_metrics, read_run_config
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

    def position(self) -> str: ...

    def scrub(self, delta: int) -> None: ...

    def scrub_to(self, index: int) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float) -> bool: ...


class LiveRun:
    """A run trained in this process: its Control, its bridge, and the thread that trains it."""

    read_only = False
    can_scrub = False
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

    @classmethod
    def create(cls, cfg: LabConfig, name: str, histogram_layer: int, step: bool = False) -> LiveRun:
        """A new run with its run directory made (a UserError says why it cannot be). `step`: paused after
        one step."""
        runlog = RunLog(default_run_dir(name))
        run = cls(cfg, name, run_dir=runlog.dir, runlog=runlog)
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
    ) -> LiveRun:
        """A fixed sequence of snapshots shown as if a run produced them (deterministic tests, demos)."""
        run = cls(cfg, name, run_dir=run_dir)
        if paused:
            run.control.pause()
        run.bridge.on_start(meta)
        for snap in snapshots:
            run.bridge(snap)
        run.done.set()
        return run

    def train(self, previous: Run | None = None) -> None:
        """The body of the training thread: wait for the previous run to let go, then train to the end."""
        self.thread = threading.current_thread()
        try:
            if previous is not None:
                previous.join(10)
            from tui_lab.core.trainer import Trainer  # torch: prewarmed by the app, never on the UI thread

            sinks = [s for s in (self.runlog, self.bridge) if s is not None]
            Trainer(self.cfg, self.control, sinks=sinks, preset=self.name).run()
        except BaseException as exc:  # noqa: BLE001 - shown on screen, never a crash
            if self.bridge.result is None:
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

    def findings(self, view: View) -> list[Finding]:
        return list(view.latest.findings) if view.latest is not None else []

    def position(self) -> str:
        return ""

    def scrub(self, delta: int) -> None:
        """A live run is always at its latest snapshot."""

    def scrub_to(self, index: int) -> None:
        """A live run is always at its latest snapshot."""

    def stop(self) -> None:
        self.control.stop()
        self.control.resume()  # a paused trainer wakes up to see the stop

    def join(self, timeout: float) -> bool:
        """Stop and wait for the training thread to finish its run directory; True when it did in time."""
        self.stop()
        if self.thread is None or self.thread is threading.current_thread():
            return True  # never started (a replay), or asked from the training thread itself
        return self.done.wait(timeout)


class RecordedRun:
    """A run directory, finished or still growing (a headless run elsewhere): followed, and scrubbed with ←/→."""

    read_only = True
    can_scrub = True
    records_histograms = False  # metrics.jsonl keeps no histograms

    def __init__(self, directory: Path):
        self.run_dir = Path(directory)
        self.cfg = read_run_config(self.run_dir)
        self.meta, summary = read_meta(self.run_dir, self.cfg)
        self.name = str(summary.get("preset") or self.run_dir.name)
        self.status = "running"
        self.records: list[Snapshot] = []
        self.cursor: int | None = None  # None: following the end
        self.bridge = Bridge()
        self.bridge.on_start(self.meta)
        self._offset = 0
        self._result: RunResult | None = None
        self._last_poll = -FOLLOW_S
        self._findings: dict[int, list[Finding]] = {}  # by record index: metrics.jsonl keeps no findings
        self.poll()

    @property
    def state(self) -> str:
        if self.cursor is not None:
            return "replay"
        return "following" if self.status == "running" else self.status

    def poll(self) -> None:
        """Read what the run directory gained since the last look (at most every FOLLOW_S)."""
        now = time.monotonic()
        if self.status != "running" or now - self._last_poll < FOLLOW_S:
            return
        self._last_poll = now
        records, self._offset = read_metrics(self.run_dir, self._offset)
        _, summary = read_meta(self.run_dir)
        self.status = summary.get("status", "running")
        for record in records:
            snap = Snapshot.from_dict(record, total_steps=self.cfg.train.steps)
            self.records.append(snap)
            if self.cursor is None:
                self.bridge(snap)
        if self.status != "running" and self._result is None:
            self._result = RunResult(self.status, summary.get("steps", 0), message=summary.get("message", ""))  # type: ignore[arg-type]
            if self.cursor is None:
                self.bridge.finish(self._result)

    def findings(self, view: View) -> list[Finding]:
        """The findings of the snapshot on screen, diagnosed against the ones before it, as the trainer did."""
        if view.latest is None:
            return []
        index = next((i for i in range(len(self.records) - 1, -1, -1) if self.records[i] is view.latest), None)
        start = {"chance_loss": self.meta.chance_loss, "initial": self.records[0] if self.records else None}
        if index is None:
            return diagnose(view.latest, (), self.cfg, **start)
        if index not in self._findings:
            recent = self.records[max(0, index - 32) : index]  # as many as the trainer keeps
            self._findings[index] = diagnose(view.latest, recent, self.cfg, **start)
        return self._findings[index]

    def position(self) -> str:
        if not self.records:
            return ""
        n = len(self.records)
        return f"snapshot {(self.cursor if self.cursor is not None else n - 1) + 1}/{n} (←/→)"

    def scrub(self, delta: int) -> None:
        """Move `delta` snapshots back (< 0) or forward from the one on screen."""
        at = self.cursor if self.cursor is not None else len(self.records) - 1
        self.scrub_to(max(at + delta, 0))

    def scrub_to(self, index: int) -> None:
        """Show the run as it was at snapshot `index`; the last one (or -1) follows the end again."""
        if not self.records:
            return
        n = len(self.records)
        index = n - 1 if index < 0 else min(index, n - 1)
        self.cursor = None if index >= n - 1 else index
        bridge = Bridge()
        bridge.on_start(self.meta)
        for snap in self.records[: index + 1]:
            bridge(snap)
        if self.cursor is None and self._result is not None:
            bridge.finish(self._result)
        self.bridge = bridge

    def stop(self) -> None:
        """Nothing runs here."""

    def join(self, timeout: float) -> bool:
        return True
