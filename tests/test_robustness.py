"""Robustness: odd but valid configurations train, bad ones are clear errors, runs survive kills and
signals, and the run directory is always readable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_lab.core.choices import CHOICES
from tui_lab.core.config import LabConfig, with_overrides
from tui_lab.core.errors import ConfigError, UserError
from tui_lab.core.runlog import RunLog, dumps_strict, read_metrics, read_summary
from tui_lab.core.trainer import Trainer

from support import ROOT, OwnTerminal


def strict_loads(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


# ---------------------------------------------------------------------------------------------------------
# Any valid configuration trains (or diverges): never `failed`. Any invalid one is a ConfigError.

ARCH_DATA = [
    ("mlp", "spiral"),
    ("mlp", "xor"),
    ("resmlp", "moons"),
    ("mlp", "digits"),
    ("cnn", "digits"),
    ("rnn", "adding"),
    ("lstm", "copy"),
    ("gru", "adding"),
    ("resmlp", "gaussians"),
    ("mlp", "circles"),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arch_data=st.sampled_from(ARCH_DATA),
    depth=st.integers(1, 6),
    width=st.integers(1, 24),
    activation=st.sampled_from(CHOICES["activation"]),
    init=st.sampled_from(CHOICES["init"]),
    norm=st.sampled_from(CHOICES["norm"]),
    optim=st.sampled_from(CHOICES["optim"]),
    lr=st.floats(1e-6, 100, allow_nan=False),
    clip=st.sampled_from([0.0, 0.5, 10.0]),
    dropout=st.sampled_from([0.0, 0.5]),
    l1=st.sampled_from([0.0, 1e-3]),
    batch=st.integers(1, 70),
    seq_len=st.integers(2, 8),
)
def test_any_valid_configuration_trains_or_diverges(
    arch_data, depth, width, activation, init, norm, optim, lr, clip, dropout, l1, batch, seq_len
):
    arch, data = arch_data
    overrides = [
        f"model.arch={arch}",
        f"data.name={data}",
        f"model.depth={depth}",
        f"model.width={width}",
        f"model.activation={activation}",
        f"model.init={init}",
        f"model.norm={norm}",
        f"optim.name={optim}",
        f"optim.lr={lr!r}",
        f"optim.clip_norm={clip}",
        f"model.dropout={dropout}",
        f"optim.l1={l1}",
        f"train.batch_size={batch}",
        f"data.seq_len={seq_len}",
        "data.samples=40",
        "train.steps=3",
        "train.log_every=1",
        "train.eval_every=2",
    ]
    try:
        cfg = with_overrides(LabConfig(), overrides)
    except ConfigError as exc:  # e.g. batch norm on a recurrent model: refused with a reason
        assert "model.norm" in str(exc) or "data.name" in str(exc)
        assert "\n" not in str(exc) or all(line.startswith("--set: ") for line in str(exc).splitlines())
        return
    snaps = []
    result = Trainer(cfg, sinks=[snaps.append]).run()
    assert result.status in ("completed", "diverged"), (overrides, result.message)
    for snap in snaps:
        strict_loads(dumps_strict(snap.to_dict()))


# ---------------------------------------------------------------------------------------------------------
# Output directories.


def test_a_non_empty_out_directory_is_refused_unless_forced(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty.*--force"):
        RunLog(tmp_path)
    with pytest.raises(UserError, match="not a tui-lab run"):  # --force replaces runs only (tests/test_run_dirs.py)
        RunLog(tmp_path, force=True)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_an_unwritable_out_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write there|not a directory"):
        RunLog(blocker / "run")
    with pytest.raises(UserError, match="not a directory"):
        RunLog(blocker)


def test_paths_with_spaces_and_non_ascii_characters(tmp_path):
    d = tmp_path / "my runs" / "ação ñ 実験"
    cfg = with_overrides(LabConfig(), ["train.steps=3", "model.depth=2", 'title="Ação: gradientes"'])
    result = Trainer(cfg, sinks=[RunLog(d)]).run()
    assert result.status == "completed"
    assert read_summary(d)["status"] == "completed"
    assert 'title = "Ação: gradientes"' in (d / "config.toml").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------
# Kills and signals, on a real process.

RUNNER = """
import sys
from pathlib import Path
from tui_lab.core.config import LabConfig, with_overrides
from tui_lab.core.runlog import RunLog
from tui_lab.core.trainer import Trainer
cfg = with_overrides(LabConfig(), ["train.steps=10000000", "train.log_every=1", "model.depth=2", "model.width=8"])
Trainer(cfg, sinks=[RunLog(Path(sys.argv[1]))]).run()
"""


def wait_for_lines(run_dir: Path, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(read_metrics(run_dir)[0]) >= n:
            return
        time.sleep(0.1)
    pytest.fail(f"no {n} metrics lines in {run_dir} after {timeout}s")


def env_with_path():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sigkill_leaves_every_whole_metrics_line_parseable(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(run_dir)], env=env_with_path())
    try:
        wait_for_lines(run_dir, 50)
    finally:
        proc.kill()
        proc.wait()
    text = (run_dir / "metrics.jsonl").read_text()
    whole = text[: text.rfind("\n") + 1].splitlines()
    assert len(whole) >= 50
    for line in whole:
        strict_loads(line)
    assert read_summary(run_dir)["status"] == "running"  # written at the start, complete JSON
    assert (run_dir / "config.toml").is_file()


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signal.SIGINT, "user"),
        (signal.SIGTERM, "terminated"),
        pytest.param(
            getattr(signal, "SIGHUP", None), "hangup", marks=pytest.mark.skipif(sys.platform == "win32", reason="POSIX")
        ),
    ],
)
def test_headless_run_stops_cleanly_on_a_signal(tmp_path, sig, reason):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui_lab",
            "run",
            "deep-sigmoid",
            "--steps",
            "10000000",
            "--out",
            str(run_dir),
            "--set",
            "train.log_every=5",
        ],
        env=env_with_path(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_lines(run_dir, 3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = read_summary(run_dir)
    assert summary["status"] == "stopped" and summary["steps"] > 0
    assert summary["reason"] == reason  # a hang-up or a kill is not "stopped by the user"
    assert ("stopped by the user" in summary["message"]) == (reason == "user")
    assert "stopped" in out


@pytest.mark.skipif(not hasattr(signal, "SIGHUP") or sys.platform == "win32", reason="needs a POSIX terminal")
def test_headless_run_survives_its_terminal_hanging_up(tmp_path):
    """As a dropped SSH session: the run's controlling terminal goes away (the kernel sends SIGHUP and every
    later write to it fails); the run stops as a hang-up with a complete run directory, and exits 0."""
    run_dir = tmp_path / "run"
    term = OwnTerminal(["run", "deep-sigmoid", "--steps", "10000000", "--out", str(run_dir)])
    term.drain_until(lambda: (run_dir / "metrics.jsonl").is_file() and len(read_metrics(run_dir)[0]) >= 3)
    assert term.hang_up() == 0
    summary = read_summary(run_dir)
    assert summary["status"] == "stopped" and summary["reason"] == "hangup", summary
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n") and len(read_metrics(run_dir)[0]) == len(text.splitlines())


@pytest.mark.skipif(not hasattr(signal, "SIGHUP") or sys.platform == "win32", reason="POSIX")
def test_under_nohup_a_hang_up_is_ignored(tmp_path):
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "tui_lab", "run", "deep-sigmoid", "--steps", "10000000", "--out", str(run_dir)]
    proc = subprocess.Popen(
        argv,
        env=env_with_path(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # what nohup does
    )
    try:
        wait_for_lines(run_dir, 2)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None  # still training
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    assert read_summary(run_dir)["reason"] == "terminated"


# ---------------------------------------------------------------------------------------------------------
# A long run: flat memory, a metrics file that grows linearly with snapshots.

LONG_RUN = """
import json, sys
from pathlib import Path
from tui_lab.core.config import LabConfig, with_overrides
from tui_lab.core.runlog import RunLog
from tui_lab.core.trainer import Trainer

def rss_mb():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

rss = {}
def watch(snap):
    if snap.step in (20_000, 199_999):
        rss[snap.step] = rss_mb()

cfg = with_overrides(LabConfig(), ["train.steps=200000", "model.depth=1", "model.width=4",
    "train.batch_size=8", "data.samples=64", "train.log_every=100", "train.eval_every=100000"])
log = RunLog(Path(sys.argv[1]))
result = Trainer(cfg, sinks=[log, watch]).run()
print(json.dumps({"status": result.status, "rss": rss}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_a_long_run_keeps_memory_flat_and_metrics_linear(tmp_path):
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-c", LONG_RUN, str(run_dir)],
        env=env_with_path(),
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["status"] == "completed"
    growth = report["rss"]["199999"] - report["rss"]["20000"]
    assert growth <= 20, f"RSS grew {growth:.1f} MB from step 20k to 200k"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2001  # one per 100 steps, plus the last step
    sizes = [len(line) for line in lines[100:]]
    assert max(sizes) < 1.5 * min(sizes)  # every line is about the same size: the file grows linearly


# ---------------------------------------------------------------------------------------------------------
# Nothing read from disk can execute code: TOML and JSON only.

UNSAFE = ("pickle", "torch.load(", " eval(", "(eval(", " exec(", "yaml.load(", "marshal", "shelve")


def test_nothing_loaded_from_disk_executes_code():
    offenders = []
    for path in (ROOT / "tui_lab").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in UNSAFE:
            for line in text.splitlines():
                code = line.split("#")[0]
                if needle in code and not ("torch.load(" in code and "weights_only=True" in code):
                    offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders, "code-executing loaders: " + "; ".join(offenders)


def test_a_preset_cannot_smuggle_code(tmp_path):
    bad = tmp_path / "evil.toml"
    bad.write_text("title = \"x\"\n[model]\nactivation = \"__import__('os').system('touch PWNED')\"\n")
    with pytest.raises(ConfigError, match="model.activation"):
        from tui_lab.core.config import load_config

        load_config(bad)
    assert not (tmp_path / "PWNED").exists()
