"""The benchmarks stay runnable: each one in its --smoke mode (seconds), writing its JSON with the expected keys.

Only that: the figures and targets are the benchmarks' business (benchmarks/README.md), not the test suite's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

BENCH = ROOT / "benchmarks"
COMMON = {"benchmark", "date", "machine", "load_before", "load_after"}

needs_pty = pytest.mark.skipif(not hasattr(os, "openpty") or sys.platform == "win32", reason="needs a pty")


def run_bench(name: str, tmp_path: Path, *extra: str, timeout: int = 300) -> dict:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), "--smoke", "--results-dir", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    path = tmp_path / f"{name}.json"
    assert path.is_file(), proc.stdout
    data = json.loads(path.read_text())
    assert set(data) >= COMMON, sorted(data)
    assert data["benchmark"] == name and data["smoke"] is True
    assert "results:" in proc.stdout
    return data


def test_bench_probes_smoke(tmp_path):
    data = run_bench("bench_probes", tmp_path)
    for key in (
        "ratio",
        "target",
        "meets_target",
        "cpu_ratio",
        "trainer_s_median",
        "plain_s_median",
        "trainer_s",
        "plain_s",
        "steps",
        "reps",
        "snapshots_per_run",
    ):
        assert key in data, key
    assert data["ratio"] > 0 and data["snapshots_per_run"] >= 4
    assert len(data["trainer_s"]) == len(data["plain_s"]) == data["reps"]


def test_bench_memory_smoke(tmp_path):
    data = run_bench("bench_memory", tmp_path)
    for key in (
        "rss_growth_mb",
        "target_mb",
        "meets_target",
        "rss_early_mb",
        "rss_late_mb",
        "metrics_bytes",
        "metrics_linearity",
        "samples",
        "steps",
        "early_step",
    ):
        assert key in data, key
    assert data["rss_late_mb"] > 0 and data["metrics_bytes"] > 0


@needs_pty
def test_bench_startup_smoke(tmp_path):
    data = run_bench("bench_startup", tmp_path)
    for key in (
        "first_frame_s_median",
        "target_s",
        "meets_target",
        "first_frame_s",
        "version_s_median",
        "version",
        "command",
        "failures",
        "headless_first_line_s_median",
        "headless_header_s_median",
        "headless_target_s",
    ):
        assert key in data, key
    assert data["failures"] == 0 and data["first_frame_s_median"] > 0
    assert data["version"]
    assert 0 < data["headless_header_s_median"] <= data["headless_first_line_s_median"]


def test_bench_sweep_smoke(tmp_path):
    data = run_bench("bench_sweep", tmp_path)
    for key in ("ratio", "target", "meets_target", "jobs1_s", "jobs2_s", "same_results", "steps", "reps"):
        assert key in data, key
    assert data["ratio"] > 0 and len(data["jobs1_s"]) == len(data["jobs2_s"]) == data["reps"]
    assert data["same_results"] is True  # the workers never change a run's numbers


@needs_pty
@pytest.mark.slow
def test_bench_ui_smoke(tmp_path):
    data = run_bench("bench_ui", tmp_path, timeout=600)
    assert {"p50_ms", "p95_ms", "presses", "meets_target"} <= set(data["latency"])
    assert data["latency"]["presses"] >= 2
    assert {"p50_ms", "p95_ms", "presses"} <= set(data["pty_latency"])
    assert {"tui_vs_headless", "tui_s_median", "headless_s_median", "meets_target"} <= set(data["speed"])
    assert {"kb_per_s", "idle_kb_per_s", "meets_target"} <= set(data["bandwidth"])
    assert {"rss_growth_mb", "rss_early_mb", "rss_late_mb", "meets_target"} <= set(data["memory"])


@needs_pty
def test_fuzz_tui_smoke(tmp_path):
    pytest.importorskip("pyte")
    out = tmp_path / "copy.json"
    data = run_bench("fuzz_tui", tmp_path, "--seed", "3", "--json", str(out), timeout=300)
    for key in (
        "seed",
        "events",
        "events_by_kind",
        "probes",
        "crashes",
        "hangs",
        "threads",
        "rss_mb",
        "quit_by",
        "exit_code",
        "terminal_restored",
        "failures",
        "passed",
    ):
        assert key in data, key
    assert data["seed"] == 3 and data["events"] > 0 and data["rss_mb"]["max"] > 0
    assert json.loads(out.read_text())["events"] == data["events"]  # --json writes the same summary


def test_bench_watch_smoke(tmp_path):
    data = run_bench("bench_watch", tmp_path, "--arms", "plain,watch,tensorboard,wandb")
    mlp = data["models"]["mlp"]
    assert set(mlp) | set(data["skipped"]) == {"plain", "watch", "tensorboard", "wandb"}
    assert mlp["plain"]["ratio"] == 1.0 and mlp["watch"]["ratio"] > 0 and mlp["watch"]["ms_per_step"] > 0
    assert data["target"] == 1.05 and data["every"] == 10
