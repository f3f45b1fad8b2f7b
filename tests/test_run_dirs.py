"""Run directories that are safe to write and safe to read (issues 16 and 19): --force replaces only a run,
nothing is written through a planted symbolic link, a lock refuses a second writer, a full disk fails the run
with its lines whole, and damaged directories are read without a crash or a hang (bad lines skipped and
counted, wrong types missing, special files refused, huge lines skipped in bounded memory)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_lab.cli import main
from tui_lab.core.config import LabConfig
from tui_lab.core.errors import UserError
from tui_lab.core.run import Learned, RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import (
    LOCK_NAME,
    JsonlReader,
    LearnedLog,
    RunDirError,
    RunLog,
    read_jsonl,
    read_meta,
    read_metrics,
    read_summary,
)

from support import ROOT, small_config

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads and writes whatever the permissions say


def fake_run(directory: Path, lines: int = 3, status: str = "completed", **kwargs) -> RunLog:
    """A run directory as a run writes it, without training: config, `lines` metrics lines, summary."""
    log = RunLog(directory, **kwargs)
    log.on_start(RunMeta(config=LabConfig(), preset="tiny", layers=["L1", "out"], total_steps=lines))
    for step in range(lines):
        log(snap(step))
    log.on_finish(RunResult(status, lines))  # type: ignore[arg-type]
    return log


def snap(step: int) -> Snapshot:
    from tui_lab.core.run import LayerStats

    return Snapshot(step, 10, 0.1, 0.1, loss=1.0 / (step + 1), layers=[LayerStats("L1", grad_norm=0.5)])


def good_line(step: int) -> bytes:
    return (json.dumps(snap(step).to_dict()) + "\n").encode()


# ---------------------------------------------------------------------------------------------------------
# Writing: --force, symbolic links, the lock.


class TestForce:
    def test_force_replaces_a_run_and_keeps_what_is_not_the_runs(self, tmp_path):
        d = tmp_path / "run"
        fake_run(d, lines=5)
        (d / "notes.txt").write_text("mine")
        with pytest.raises(UserError, match="not empty.*--force"):
            RunLog(d)
        fake_run(d, lines=2, force=True)
        assert len(read_metrics(d)[0]) == 2  # the old run's lines are gone: replaced, not appended to
        assert (d / "notes.txt").read_text() == "mine"

    def test_force_refuses_a_users_own_directory(self, tmp_path):
        d = tmp_path / "mine"
        d.mkdir()
        (d / "config.toml").write_text("# my own config\n")
        (d / "summary.json").write_text('{"title": "my notes"}')
        with pytest.raises(UserError, match="not a tui-lab run; --force replaces only a run directory"):
            RunLog(d, force=True)
        assert (d / "config.toml").read_text() == "# my own config\n"  # nothing touched
        assert sorted(p.name for p in d.iterdir()) == ["config.toml", "summary.json"]

    def test_an_older_run_without_a_lock_file_is_still_a_run(self, tmp_path):
        d = tmp_path / "old"
        fake_run(d)
        (d / LOCK_NAME).unlink()  # runs written before the lock existed
        fake_run(d, lines=1, force=True)
        assert read_summary(d)["steps"] == 1

    def test_an_empty_out_is_refused(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "config.toml").write_text("x")
        for out in ("", "  "):
            with pytest.raises(UserError, match="empty path"):
                RunLog(out, force=True)
        assert (tmp_path / "config.toml").read_text() == "x"

    def test_out_that_is_a_symbolic_link_is_refused(self, tmp_path):
        target = tmp_path / "elsewhere"
        target.mkdir()
        (tmp_path / "link").symlink_to(target)
        with pytest.raises(UserError, match="symbolic link"):
            RunLog(tmp_path / "link")
        assert list(target.iterdir()) == []


class TestSymlinks:
    def test_planted_links_are_replaced_never_written_through(self, tmp_path):
        d = tmp_path / "run"
        fake_run(d)
        victims = {}
        for name in ("metrics.jsonl", "learned.jsonl", "summary.json", "config.toml"):
            victim = tmp_path / f"victim-{name}"
            victim.write_text("precious\n")
            victims[name] = victim
            if name.endswith(".jsonl"):
                (d / name).unlink()
                (d / name).symlink_to(victim)
        # The temporary file's first name is taken by a link too: it is never opened.
        (d / f".summary.json.{os.getpid()}.0.tmp").symlink_to(victims["summary.json"])
        log = RunLog(d, force=True)
        for name in ("config.toml", "summary.json"):  # links there make it no run to replace: planted after the check
            (d / name).unlink()
            (d / name).symlink_to(victims[name])
        log.on_start(RunMeta(config=LabConfig(), preset="tiny", layers=["L1"], total_steps=2))
        log(snap(0))
        log.on_finish(RunResult("completed", 1))
        for name, victim in victims.items():
            assert victim.read_text() == "precious\n", name
            assert (d / name).is_file() and not (d / name).is_symlink(), name
        assert read_summary(d)["status"] == "completed" and len(read_metrics(d)[0]) == 1

    def test_a_link_planted_before_an_extension_is_refused(self, tmp_path):
        d = tmp_path / "run"
        log = fake_run(d)
        victim = tmp_path / "victim"
        victim.write_text("precious\n")
        (d / "metrics.jsonl").unlink()
        (d / "metrics.jsonl").symlink_to(victim)
        meta = RunMeta(config=LabConfig(), preset="tiny", layers=["L1"], total_steps=4)
        with pytest.raises(RunDirError, match="metrics.jsonl"):
            log.on_resume(meta)
        assert victim.read_text() == "precious\n"


WRITER = """
import sys, time
from pathlib import Path
from tui_lab.core.config import LabConfig
from tui_lab.core.run import RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import RunLog
from tui_lab.core.errors import UserError
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
try:
    log = RunLog(Path(sys.argv[1]))
except UserError as exc:
    print("refused:", exc, flush=True)
    sys.exit(2)
log.on_start(RunMeta(config=LabConfig(), preset="p", layers=["L1"], total_steps=200))
print("writing", flush=True)
for step in range(int(sys.argv[3])):
    log(Snapshot(step, 200, 0.0, 0.0, loss=1.0))
    time.sleep(float(sys.argv[4]))
log.on_finish(RunResult("completed", 200))
"""


def writer(d: Path, go: Path, lines: int, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(d), str(go), str(lines), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


class TestLock:
    def test_a_second_writer_is_refused_with_the_first_ones_pid(self, tmp_path):
        d, go = tmp_path / "run", tmp_path / "go"
        go.touch()
        first = writer(d, go, 100000, 0.01)
        try:
            assert first.stdout.readline().strip() == "writing"
            with pytest.raises(RunDirError, match=rf"another tui-lab run is writing here \(pid {first.pid}\)"):
                RunLog(d, force=True)
            with pytest.raises(RunDirError, match="another tui-lab run is writing here"):
                RunLog(d)  # not "not empty": the clearer reason first
            assert read_summary(d)["status"] == "running"  # readers do not lock: `show` follows the run
            from tui_lab.ui.runs import RecordedRun

            assert RecordedRun(d).state == "following"
        finally:
            first.kill()
            first.wait()
        fake_run(d, force=True)  # killed: the kernel let go of the lock; its summary says running, a run
        assert read_summary(d)["status"] == "completed"

    def test_two_runs_started_together_into_one_directory(self, tmp_path):
        d, go = tmp_path / "run", tmp_path / "go"
        procs = [writer(d, go, 60, 0.001) for _ in range(2)]
        time.sleep(1.5)  # both imported and waiting
        go.touch()
        outs = [p.communicate(timeout=60)[0] for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], outs
        refused = next(o for o in outs if "refused" in o)
        assert "another tui-lab run is writing here" in refused or "not empty" in refused
        text = (d / "metrics.jsonl").read_bytes()
        assert text.count(b"\n") == 60 and all(
            json.loads(line)["step"] == i for i, line in enumerate(text.splitlines())
        )

    def test_the_lock_is_let_go_when_the_run_ends_and_taken_again_to_go_on(self, tmp_path):
        d = tmp_path / "run"
        log = fake_run(d)
        other = RunLog(d, force=True)  # the first run ended: a --force may replace it
        meta = RunMeta(config=LabConfig(), preset="tiny", layers=["L1"], total_steps=4)
        with pytest.raises(RunDirError, match="another tui-lab run is writing here"):
            log.on_resume(meta)  # ... and then the first cannot go on into it
        other.close()
        log.on_resume(meta)
        log(snap(3))
        log.on_finish(RunResult("completed", 4))
        assert [r["step"] for r in read_metrics(d)[0]] == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------------------
# A full disk, and other OSErrors on the user's side.


def _full_after(monkeypatch, lines_ok: int, partial: bool = True, summary_too: bool = False):
    """Make metrics.jsonl's writes fail with ENOSPC after `lines_ok` lines (the failing one half written first, as
    a real full disk may) and, with `summary_too`, every later write."""
    import tui_lab.core.runlog as runlog

    real = runlog._write_all
    state = {"lines": 0, "full": False}

    def write_all(fd: int, data: bytes) -> None:
        is_metrics_line = data.startswith(b'{"step"') and b'"epoch"' in data[:40]  # not a learned.jsonl line
        if state["full"] and summary_too:
            raise OSError(errno.ENOSPC, "No space left on device")
        if is_metrics_line:
            if state["lines"] >= lines_ok:
                state["full"] = True
                if partial:
                    real(fd, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
            state["lines"] += 1
        real(fd, data)

    monkeypatch.setattr(runlog, "_write_all", write_all)


class TestDiskFull:
    def test_a_disk_that_fills_mid_run_fails_the_run_with_every_line_whole(self, tmp_path, monkeypatch):
        from tui_lab.core.trainer import Trainer

        _full_after(monkeypatch, lines_ok=3)
        seen = []
        result = Trainer(small_config(200), sinks=[RunLog(tmp_path / "run"), seen.append]).run()
        assert result.status == "failed" and "disk full" in result.message and "metrics.jsonl" in result.message
        assert result.user_error and result.steps > 0
        text = (tmp_path / "run" / "metrics.jsonl").read_bytes()
        assert text.endswith(b"\n") and len(text.splitlines()) == 3  # the half line was taken back
        assert all(isinstance(json.loads(line), dict) for line in text.splitlines())
        summary = read_summary(tmp_path / "run")
        assert summary["status"] == "failed" and "disk full" in summary["message"]

    def test_headless_disk_full_exits_2_with_the_result_line(self, tmp_path, monkeypatch, capsys):
        from tui_lab.headless import run_headless

        _full_after(monkeypatch, lines_ok=2)
        code = run_headless("tiny", small_config(200), out=tmp_path / "run")
        assert code == 2
        assert "failed" in capsys.readouterr().out and "disk full" in read_summary(tmp_path / "run")["message"]

    def test_when_not_even_the_summary_fits_one_line_and_exit_2(self, tmp_path, monkeypatch, capsys):
        from tui_lab.headless import run_headless

        _full_after(monkeypatch, lines_ok=2, summary_too=True)
        monkeypatch.setattr(
            "tui_lab.cli._cmd_run", lambda args, lang: run_headless("tiny", small_config(200), out=tmp_path / "r")
        )
        assert main(["run", "tiny"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"tui-lab: {tmp_path / 'r' / 'summary.json'}: disk full (no space left on the device)"]
        assert all(
            isinstance(json.loads(x), dict) for x in (tmp_path / "r" / "metrics.jsonl").read_bytes().splitlines()
        )
        assert read_summary(tmp_path / "r")["status"] == "running"  # the summary written at the start, whole

    def test_a_real_file_size_limit_mid_run(self, tmp_path):
        """RLIMIT_FSIZE in a child (SIGXFSZ is ignored by Python: the write fails with EFBIG), a real OSError from
        the kernel: the run ends failed, every line whole, exit 2 with the result line."""
        preset = tmp_path / "p.toml"
        preset.write_text('[train]\nsteps = 2000\nlog_every = 1\ndevice = "cpu"\n[model]\ndepth = 3\nwidth = 8\n')
        code = (
            "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000)); "
            "from tui_lab.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", code, "run", str(preset), "--out", str(tmp_path / "run")],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "failed" in proc.stdout and "file too large" in proc.stdout
        text = (tmp_path / "run" / "metrics.jsonl").read_bytes()
        assert text.endswith(b"\n") and all(isinstance(json.loads(x), dict) for x in text.splitlines())
        assert read_summary(tmp_path / "run")["status"] == "failed"


def tiny_preset(directory: Path) -> str:
    path = directory / "tiny.toml"
    path.write_text('[train]\nsteps = 2\ndevice = "cpu"\n[model]\ndepth = 2\nwidth = 4\n')
    return str(path)


class TestOSErrorsAreOneLine:
    def test_an_oserror_names_the_path_and_the_cause(self, monkeypatch, capsys):
        def boom(args, lang):
            raise OSError(errno.ENOSPC, "No space left on device", "/data/runs/x/metrics.jsonl")

        monkeypatch.setattr("tui_lab.cli._cmd_run", boom)
        assert main(["run", "tiny"]) == 2
        assert (
            capsys.readouterr().err == "tui-lab: /data/runs/x/metrics.jsonl: disk full (no space left on the device)\n"
        )

    def test_a_name_too_long(self, tmp_path, capsys):
        assert main(["run", tiny_preset(tmp_path), "--steps", "2", "--out", str(tmp_path / ("x" * 300))]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "name too long" in err[0] and "x" * 300 in err[0]

    def test_out_under_a_file(self, tmp_path, capsys):
        (tmp_path / "f").write_text("")
        assert main(["run", tiny_preset(tmp_path), "--steps", "2", "--out", str(tmp_path / "f" / "run")]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "not a directory" in err[0]

    def test_show_on_a_directory_it_may_not_read(self, tmp_path, monkeypatch, capsys):
        d = tmp_path / "run"
        fake_run(d)
        real = os.listdir

        def listdir(path="."):
            if Path(path) == d:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "listdir", listdir)  # as a user without read permission sees it (root never does)
        assert main(["show", str(d)]) == 2
        assert capsys.readouterr().err == f"tui-lab: {d}: permission denied\n"

    def test_every_sink_hears_the_end_when_the_summary_cannot_be_written(self, tmp_path, monkeypatch):
        from tui_lab.core.trainer import Trainer

        _full_after(monkeypatch, lines_ok=1, summary_too=True)
        ended = []

        class Screen:  # the TUI's bridge, after the run log in the sinks
            def __call__(self, snapshot):
                pass

            def on_finish(self, result):
                ended.append(result)

        with pytest.raises(RunDirError, match="summary.json: disk full"):
            Trainer(small_config(100), sinks=[RunLog(tmp_path / "run"), Screen()]).run()
        assert [r.status for r in ended] == ["failed"] and "metrics.jsonl: disk full" in ended[0].message

    @pytest.mark.skipif(ROOT_USER, reason="root ignores permissions")
    def test_a_parent_without_search_permission(self, tmp_path, capsys):  # pragma: no cover - not as root
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o600)
        try:
            assert main(["run", tiny_preset(tmp_path), "--steps", "2", "--out", str(locked / "run")]) == 2
            assert main(["show", str(locked / "run")]) == 2
        finally:
            locked.chmod(0o700)
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and all("permission denied" in line for line in err)


# ---------------------------------------------------------------------------------------------------------
# Reading damaged run directories.


def damaged_run(directory: Path) -> Path:
    fake_run(directory, lines=0)
    lines = [
        good_line(0),
        b'{"step": 1, "loss": \xff\xfe}\n',  # invalid UTF-8
        b"[1,2,3]\n",
        b'{"step":"abc"}\n',
        good_line(2),
        b'{"step": 3, "loss": "x", "lr": [1], "layers": [1, {"name": 5, "grad_norm": "a", "act_std": 0.5}],'
        b' "time_grad_norm": "no", "changes": [{"key": 3}], "nonfinite": "yes"}\n',  # wrong types: missing
        b"\n",
        good_line(4)[:20],  # a cut last line (the run was killed mid-write)
    ]
    (directory / "metrics.jsonl").write_bytes(b"".join(lines))
    return directory


class TestDamagedReads:
    def test_unreadable_lines_are_skipped_and_counted(self, tmp_path):
        reader = JsonlReader(damaged_run(tmp_path / "run") / "metrics.jsonl")
        steps = [record["step"] for _at, record in reader.records()]
        assert steps == [0, 2, 3] and reader.skipped == 3  # the cut line waits: the run may be writing it
        assert list(reader.records(final=True)) == [] and reader.skipped == 4

    def test_wrong_types_are_missing_values(self, tmp_path):
        records, _ = read_jsonl(damaged_run(tmp_path / "run") / "metrics.jsonl")
        s = Snapshot.from_dict(records[2])
        assert (s.step, s.loss, s.lr, s.time_grad_norm, s.nonfinite) == (3, None, 0.0, None, False)
        assert [(la.name, la.grad_norm, la.act_std) for la in s.layers] == [("L2", None, 0.5)]
        assert s.changes[0].key == "" and s.changes[0].was is None

    def test_summary_of_the_wrong_types(self, tmp_path):
        d = tmp_path / "run"
        fake_run(d)
        bad = {"status": ["x"], "steps": "abc", "preset": {"a": 1}, "layers": 5, "total_steps": "x", "chance_loss": "y"}
        (d / "summary.json").write_text(json.dumps(bad))
        meta, _summary = read_meta(d)
        assert (meta.preset, meta.layers, meta.total_steps, meta.chance_loss) == (None, [], 0, None)
        (d / "summary.json").write_text("[1, 2]")
        assert read_summary(d) is None
        (d / "summary.json").write_bytes(b"\xff{")
        assert read_summary(d) is None

    def test_show_reads_a_damaged_run_and_says_how_many_lines_it_skipped(self, tmp_path):
        from tui_lab.ui.runs import RecordedRun

        d = damaged_run(tmp_path / "run")
        bad = {"status": "completed", "steps": "many", "message": ["x"], "divergence": 3, "preset": 7}
        (d / "summary.json").write_text(json.dumps(bad))
        (d / "learned.jsonl").write_bytes(
            b"garbage\n" + json.dumps({"step": 0, "kind": "regions", "grid": [1]}).encode() + b"\n"
        )
        run = RecordedRun(d)
        assert len(run.records) == 3 and [run.records[i].step for i in range(3)] == [0, 2, 3]
        assert run.state == "completed" and run.name == "run"
        assert run.position() == "· 5 unreadable lines skipped"  # 4 in metrics (the cut line: the run ended), 1 learned
        run.scrub(-1)
        assert run.position().startswith("· 5 unreadable lines skipped · snapshot 2/3")
        assert run.findings(run.bridge.read()) is not None
        assert run.learned_log.latest().grid == []  # a grid of the wrong type is no grid

    @pytest.mark.parametrize("kind", ["directory", "fifo", "dev-zero", "dangling"])
    def test_special_metrics_files_are_refused_at_once(self, tmp_path, capsys, kind):
        d = tmp_path / "run"
        fake_run(d)
        metrics = d / "metrics.jsonl"
        metrics.unlink()
        if kind == "directory":
            metrics.mkdir()
        elif kind == "fifo":
            os.mkfifo(metrics)
        elif kind == "dev-zero":
            metrics.symlink_to("/dev/zero")
        else:
            metrics.symlink_to(tmp_path / "nowhere")
        started = time.monotonic()
        if kind == "dangling":  # a missing file: a run with no lines yet
            assert read_metrics(d) == ([], 0)
            return
        with pytest.raises(UserError, match="not a regular file"):
            read_metrics(d)
        assert main(["show", str(d)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == [f"tui-lab: {metrics}: not a regular file (a directory, a FIFO or a device)"]
        assert time.monotonic() - started < 5

    def test_a_huge_line_is_skipped_in_bounded_memory(self, tmp_path):
        path = tmp_path / "metrics.jsonl"
        with open(path, "wb") as f:
            f.write(good_line(0))
            f.write(b'{"step": 1, "x": "')
            block = b"a" * 2**20
            for _ in range(100):  # a 100 MB line
                f.write(block)
            f.write(b'"}\n')
            f.write(good_line(2))
        tracemalloc.start()
        try:
            reader = JsonlReader(path)
            steps = [r["step"] for _at, r in reader.records()]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert steps == [0, 2] and reader.skipped == 1
        assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MB"

    def test_a_huge_line_still_being_written_is_not_read_again(self, tmp_path):
        path = tmp_path / "metrics.jsonl"
        path.write_bytes(good_line(0) + b"x" * (17 * 2**20))
        reader = JsonlReader(path)
        assert [r["step"] for _at, r in reader.records()] == [0] and reader.skipped == 1
        assert reader.offset == path.stat().st_size  # dropped, not held
        with open(path, "ab") as f:
            f.write(b"more\n" + good_line(1))
        assert [r["step"] for _at, r in reader.records()] == [1] and reader.skipped == 1

    def test_the_timeline_and_the_learned_log_read_alike(self, tmp_path):
        from tui_lab.ui.runs import Timeline

        d = damaged_run(tmp_path / "run")
        learned = Learned(step=2, kind="classes", correct=[1], counts=[2])
        (d / "learned.jsonl").write_bytes(b"[]\n" + json.dumps(learned.to_dict()).encode() + b"\n{")
        timeline, log = Timeline(d, 10), LearnedLog(d)
        assert [r["step"] for r in timeline.follow()] == [0, 2, 3]  # what `show` reads: parsed, bad lines counted
        log.refresh()
        assert (len(timeline), timeline.skipped) == (3, 3)
        assert (len(log), log.skipped, log.at(5).correct) == (1, 1, [1])
        # A live run's timeline only indexes (its own lines are whole); a damaged one reads back empty, no crash.
        live = Timeline(d, 10)
        live.refresh()
        assert len(live) == 6 and [live[i].step for i in range(6)] == [0, 0, 0, 0, 2, 3]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    garbage=st.lists(st.binary(max_size=200), max_size=6),
    tail=st.binary(max_size=300),
    good=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
)
def test_any_bytes_never_crash_the_reader_and_whole_good_lines_are_read(tmp_path, garbage, tail, good):
    """Good lines with any bytes between them (each run of garbage ending its line) and any bytes at the end:
    reading never raises, every good line is read in order, and whatever it yields turns into a Snapshot."""
    path = tmp_path / "metrics.jsonl"
    body = b""
    for i, step in enumerate(good):
        body += good_line(step)
        if i < len(garbage):
            body += garbage[i].replace(b"\n", b" ") + b"\n"
    path.write_bytes(body + tail)
    for final in (False, True):
        reader = JsonlReader(path)
        records = [r for _at, r in reader.records(final)]
        steps = [r["step"] for r in records]
        it = iter(steps)
        assert all(any(s == step for s in it) for step in good)  # the good lines, in order
        for record in records:
            Snapshot.from_dict(record)
            Learned.from_dict(record)


# ---------------------------------------------------------------------------------------------------------
# The baseline picker (o) in a running TUI.


def test_the_baseline_picker_survives_damaged_run_directories(runs_dir):
    from textual.widgets import OptionList

    from tui_lab.ui.app import LabApp
    from tui_lab.ui.screens import RunPicker

    from pilot import aio, panel_ready, wait_for

    damaged_run(runs_dir / "20250101-garbage")
    for name, kind in (("20250102-fifo", "fifo"), ("20250103-dir", "dir"), ("20250104-zero", "zero")):
        d = runs_dir / name
        fake_run(d)
        (d / "metrics.jsonl").unlink()
        {"fifo": os.mkfifo, "dir": os.mkdir, "zero": lambda p: os.symlink("/dev/zero", p)}[kind](d / "metrics.jsonl")
    d = runs_dir / "20250105-summary"
    fake_run(d)
    (d / "summary.json").write_text('{"status": {"a": 1}, "steps": [2], "preset": 5}')

    @aio
    async def drive():
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("o")
            await wait_for(pilot, lambda: isinstance(app.screen, RunPicker), 5)
            ol = app.screen.query_one(OptionList)
            ids = [ol.get_option_at_index(i).id for i in range(ol.option_count)]
            assert ids == [str(runs_dir / "20250105-summary"), str(runs_dir / "20250101-garbage")]  # special: left out
            assert "?, ? steps" in str(ol.get_option_at_index(0).prompt)
            for index in range(2):
                if not isinstance(app.screen, RunPicker):
                    await pilot.press("o")
                    await wait_for(pilot, lambda: isinstance(app.screen, RunPicker), 5)
                app.screen.query_one(OptionList).highlighted = index
                await pilot.press("enter")
                await wait_for(pilot, lambda: app.lab.baseline is not None, 5)
                assert app.lab.baseline.source == ids[index]
                app.lab.baseline = None
            app.pin_run_dir(runs_dir / "20250102-fifo")  # picked some other way: refused in a notification
            await pilot.pause(0.2)
            assert app.lab.baseline is None and app.is_running

    drive()
