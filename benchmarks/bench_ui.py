"""The TUI while it trains: key-to-effect latency, training speed against headless, terminal bandwidth, memory.

1. Latency (Pilot). LabApp under `run_test` at 120x36 trains an 8x128 ReLU MLP (batch 128). `p` is pressed,
   then `r`, again and again at random moments; each time the clock runs from the key event reaching the
   app's driver until the state label in the status bar reads `paused` (or `running` again). p50 and p95
   over all presses. (The key is sent as Pilot.press sends it, without Pilot's wait for an idle process,
   which a busy trainer thread turns into a fixed 2 s.)
   Also in a real pty (`tui-lab` as a user runs it): from writing the key to the terminal until the terminal
   receives a repaint whose text says `paused` / `running`, i.e. the effect a user would see.
2. Training speed. The same configuration trained by the app in a pty (press r, wait for summary.json to say
   completed) and by `tui-lab run` (headless, its own process), alternated; each run's time is the trainer's
   own elapsed time from summary.json. The figure is TUI speed / headless speed.
3. Terminal bandwidth: bytes the app writes to its 120x36 pty per second while training (the TUI runs of 2).
4. Memory: the app's RSS (VmRSS of its process) at step 2k and at step 50k of a tiny model in the pty.

    python benchmarks/bench_ui.py
    python benchmarks/bench_ui.py --only latency,speed

Targets: latency p95 <= 50 ms; TUI speed >= 0.9x headless; <= 20 KB/s; RSS growth 2k -> 50k <= 20 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, median, percentile, verdict, write_results
from _pty import PtyProcess, term_env, tui_lab_command

TARGET_P95_MS = 50.0
TARGET_SPEED = 0.9
TARGET_KBPS = 20.0
TARGET_MB = 20.0
COLS, ROWS = 120, 36


def config(steps: int, kind: str = "bench"):
    from tui_lab.core.config import LabConfig, with_overrides

    if kind == "tiny":
        sets = ["model.depth=4", "model.width=32", "data.samples=1000", "train.batch_size=32", "train.eval_every=100"]
    else:
        sets = ["model.depth=8", "model.width=128", "data.samples=8000", "train.batch_size=128", "train.eval_every=200"]
    return with_overrides(
        LabConfig(),
        [
            *sets,
            "model.activation=relu",
            "model.init=he_normal",
            "data.name=spiral",
            "optim.name=sgd",
            "optim.lr=0.05",
            f"train.steps={steps}",
            "train.log_every=10",
            "train.device=cpu",
        ],
    )


# ---------------------------------------------------------------------------------------------------------
# 1. Latency with the Pilot.


async def _pilot_latency(presses: int, steps: int) -> dict:
    from textual import events

    from tui_lab.ui.app import LabApp

    app = LabApp(preset_name="bench", cfg=config(steps))
    lat_p: list[float] = []
    lat_r: list[float] = []
    rng = random.Random(0)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        status = app.query_one("#status")

        def label() -> str:
            return str(status.content)

        def press(key: str) -> None:
            # What Pilot.press does, minus its wait for the process to go idle: with a trainer thread
            # busy on the CPU that wait always runs to its 1 s cap, twice, and would be all we measured.
            event = events.Key(key, key)
            event.set_sender(app)
            app._driver.send_message(event)

        async def until(cond, timeout: float = 10.0) -> bool:
            end = time.perf_counter() + timeout
            while not cond():
                if time.perf_counter() > end:
                    return False
                await asyncio.sleep(0.0005)
            return True

        await pilot.press("r")
        await until(lambda: app.lab.state == "running" and app.lab.run.bridge.snapshots > 2, 60)
        await until(lambda: "running" in label(), 5)
        for _ in range(presses):
            for key, word, out in (("p", "paused", lat_p), ("r", "running", lat_r)):
                await asyncio.sleep(rng.uniform(0.05, 0.25))  # land at a random phase of training and repaints
                t0 = time.perf_counter()
                press(key)
                if await until(lambda word=word: word in label()):
                    out.append((time.perf_counter() - t0) * 1000)
        snaps = app.lab.run.bridge.snapshots
        await pilot.press("x")
        await until(lambda: app.lab.state in ("stopped", "completed"), 10)
    return {"pause_ms": lat_p, "resume_ms": lat_r, "snapshots_meanwhile": snaps}


def pilot_latency(presses: int, steps: int, tmp: Path) -> dict:
    import os

    from tui_lab.core.runlog import RUNS_ENV

    old = os.environ.get(RUNS_ENV)
    os.environ[RUNS_ENV] = str(tmp / "runs-pilot")  # the app's run directory goes there, not to the user's
    try:
        return asyncio.run(_pilot_latency(presses, steps))
    finally:
        if old is None:
            os.environ.pop(RUNS_ENV, None)
        else:
            os.environ[RUNS_ENV] = old


# ---------------------------------------------------------------------------------------------------------
# The app in a pty.


def _preset_file(cfg, directory: Path, name: str) -> Path:
    from tui_lab.core.config import dumps_config

    path = directory / f"{name}.toml"
    path.write_text(dumps_config(cfg))
    return path


def _last_step(metrics: Path) -> int:
    """The step of the last whole line of metrics.jsonl (-1 if none)."""
    try:
        with open(metrics, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 8192))
            data = f.read()
    except OSError:
        return -1
    lines = [line for line in data.split(b"\n")[:-1] if line.strip()]
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return -1


def _summary(run_dir: Path | None) -> dict:
    if run_dir is None:
        return {}
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class AppSession:
    """`tui-lab --preset FILE` in a 120x36 pty, runs written under a private runs directory."""

    def __init__(self, preset: Path, runs: Path):
        self.runs = runs
        runs.mkdir(parents=True, exist_ok=True)
        self.child = PtyProcess(
            [*tui_lab_command(), "--preset", str(preset)], COLS, ROWS, env=term_env({"TUI_LAB_RUNS": str(runs)})
        )
        self.first_frame = self.child.wait_for("tui-lab", 30)
        if self.first_frame is None:
            self.child.close()
            raise SystemExit(
                "the app drew no frame within 30 s:\n" + self.child.buffer[-2000:].decode("utf-8", "replace")
            )
        self.child.drain(0.5)

    def run_dir(self) -> Path | None:
        dirs = [d for d in self.runs.iterdir() if d.is_dir()]
        return max(dirs, key=lambda d: d.stat().st_mtime) if dirs else None

    def press_and_wait(self, key: bytes, text: str, timeout: float = 10.0) -> float | None:
        """Write a key; seconds until the terminal shows `text` in what it receives after the key."""
        since = len(self.child.buffer)
        t0 = time.perf_counter()
        self.child.write(key)
        t = self.child.wait_for(text, timeout, since=since)
        return None if t is None else time.perf_counter() - t0

    def close(self) -> None:
        self.child.close(b"q", grace=5)


def pty_latency(presses: int, steps: int, tmp: Path) -> dict:
    preset = _preset_file(config(steps), tmp, "bench-latency")
    app = AppSession(preset, tmp / "runs-latency")
    rng = random.Random(1)
    lat_p: list[float] = []
    lat_r: list[float] = []
    try:
        app.child.write(b"r")
        end = time.perf_counter() + 60
        while _last_step((app.run_dir() or tmp) / "metrics.jsonl") < 30 and time.perf_counter() < end:
            app.child.drain(0.1)
        for _ in range(presses):
            app.child.drain(rng.uniform(0.1, 0.3))
            t = app.press_and_wait(b"p", "paused")
            if t is not None:
                lat_p.append(t * 1000)
            app.child.drain(rng.uniform(0.1, 0.3))
            t = app.press_and_wait(b"r", "running")
            if t is not None:
                lat_r.append(t * 1000)
        app.child.write(b"x")
        app.child.drain(0.5)
    finally:
        app.close()
    return {"pause_ms": lat_p, "resume_ms": lat_r}


def tui_run(cfg, tmp: Path, tag: str, rss_marks: tuple[int, ...] = ()) -> dict:
    """Train `cfg` in the app in a pty: the trainer's time, bytes written while training, RSS at marks."""
    preset = _preset_file(cfg, tmp, f"bench-{tag}")
    app = AppSession(preset, tmp / f"runs-{tag}")
    total = cfg.train.steps
    rss: dict[int, float] = {}
    try:
        app.child.drain(1.5)  # let the start-up settle (torch loads in the background)
        idle_bytes = app.child.drain(2.0) / 2.0  # the idle screen, for scale
        app.child.write(b"r")
        t_press = time.perf_counter()
        bytes_at_press = app.child.total
        run_dir = None
        t_first = b_first = None
        marks = sorted(rss_marks)
        deadline = time.perf_counter() + 1800
        while time.perf_counter() < deadline:
            app.child.drain(0.05)
            run_dir = run_dir or app.run_dir()
            if run_dir is None:
                continue
            step = _last_step(run_dir / "metrics.jsonl")
            if t_first is None and step >= 0:
                t_first, b_first = time.perf_counter(), app.child.total
            while marks and step >= marks[0]:
                rss[marks.pop(0)] = _rss_mb(app.child.proc.pid)
            summary = _summary(run_dir)
            if summary.get("status") in ("completed", "diverged", "stopped", "failed"):
                break
        t_end, b_end = time.perf_counter(), app.child.total
        if marks:  # the last mark is the end of the run
            for m in marks:
                rss[m] = _rss_mb(app.child.proc.pid)
        summary = _summary(run_dir)
        app.child.drain(0.5)
    finally:
        app.close()
    if summary.get("status") != "completed":
        raise SystemExit(f"TUI run {tag} ended {summary.get('status')}: {summary.get('message')}")
    window = t_end - (t_first or t_press)
    written = b_end - (b_first if b_first is not None else bytes_at_press)
    return {
        "elapsed_s": summary["elapsed_s"],
        "steps": summary["steps"],
        "bytes": written,
        "window_s": window,
        "bytes_per_s": written / window if window > 0 else float("nan"),
        "idle_bytes_per_s": idle_bytes,
        "first_frame_s": app.first_frame,
        "rss_mb": rss,
        "steps_total": total,
    }


def headless_run(cfg, tmp: Path, tag: str) -> dict:
    preset = _preset_file(cfg, tmp, f"bench-{tag}")
    out = tmp / f"headless-{tag}"
    proc = subprocess.run(
        [*tui_lab_command(), "run", str(preset), "--out", str(out)],
        capture_output=True,
        text=True,
        env=term_env(),
        cwd=str(ROOT),
        timeout=1800,
    )
    summary = _summary(out)
    if proc.returncode != 0 or summary.get("status") != "completed":
        raise SystemExit(f"headless run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {"elapsed_s": summary["elapsed_s"], "steps": summary["steps"]}


# ---------------------------------------------------------------------------------------------------------


VIEW_NAMES = {"1": "config", "2": "gradients", "3": "curves", "4": "layers", "5": "learned"}


def view_bandwidth(tmp: Path, seconds: float, views: str = "12345") -> dict[str, float]:
    """Bytes per second the app writes to its 120x36 pty while training, in each view (one app per view:
    the view's key, then r; the window starts once the first snapshot is on disk)."""
    preset = _preset_file(config(10_000_000), tmp, "bench-views")
    out: dict[str, float] = {}
    for view in views:
        app = AppSession(preset, tmp / f"runs-view-{view}")
        try:
            app.child.write(view.encode())
            app.child.drain(0.5)
            app.child.write(b"r")
            end = time.perf_counter() + 60
            while _last_step((app.run_dir() or tmp) / "metrics.jsonl") < 0 and time.perf_counter() < end:
                app.child.drain(0.1)
            app.child.drain(1.0)  # the first repaints of the run, then the steady state
            out[view] = app.child.drain(seconds) / seconds
            app.child.write(b"x")
            app.child.drain(0.3)
        finally:
            app.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presses", type=int, default=20, help="p and r presses each (latency)")
    p.add_argument("--speed-steps", type=int, default=3000)
    p.add_argument("--reps", type=int, default=3, help="TUI and headless runs each (alternated)")
    p.add_argument("--mem-steps", type=int, default=50_000)
    p.add_argument("--early", type=int, default=2_000)
    p.add_argument(
        "--only",
        default="latency,pty_latency,speed,memory,views",
        help="comma-separated subset of latency,pty_latency,speed,memory,views",
    )
    p.add_argument("--view-seconds", type=float, default=15.0, help="seconds of training measured per view")
    p.add_argument("--smoke", action="store_true", help="seconds, not minutes: keeps the benchmark runnable")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.presses, args.speed_steps, args.reps, args.mem_steps, args.early = 2, 200, 1, 600, 200
        args.view_seconds = 2.0
    parts = {s.strip() for s in args.only.split(",") if s.strip()}
    load_before = loadavg()
    results: dict = {
        "_load_before": load_before,
        "smoke": args.smoke,
        "terminal": f"{COLS}x{ROWS}",
        "command": tui_lab_command(),
    }
    lines: list[str] = []

    if "latency" in parts:
        with tempfile.TemporaryDirectory(prefix="bench-ui-pilot-") as tmpname:
            lat = pilot_latency(args.presses, 10_000_000, Path(tmpname))
        allms = lat["pause_ms"] + lat["resume_ms"]
        p50, p95 = percentile(allms, 50), percentile(allms, 95)
        results["latency"] = {
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "target_p95_ms": TARGET_P95_MS,
            "meets_target": p95 <= TARGET_P95_MS,
            "presses": len(allms),
            "max_ms": round(max(allms), 2),
            "pause_ms": [round(x, 2) for x in lat["pause_ms"]],
            "resume_ms": [round(x, 2) for x in lat["resume_ms"]],
            "method": "Pilot (run_test 120x36): press -> status label reads paused/running, while training",
        }
        lines.append(
            f"key -> state label (Pilot): p95 {p95:.1f} ms = {p95 / TARGET_P95_MS:.2f}x the "
            f"{TARGET_P95_MS:.0f} ms target ({verdict(p95, TARGET_P95_MS)}); p50 {p50:.1f} ms; "
            f"{len(allms)} presses"
        )
        print(lines[-1], flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmpname:
        tmp = Path(tmpname)
        if "pty_latency" in parts:
            lat = pty_latency(args.presses, 10_000_000, tmp)
            allms = lat["pause_ms"] + lat["resume_ms"]
            p50, p95 = percentile(allms, 50), percentile(allms, 95)
            results["pty_latency"] = {
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "target_p95_ms": TARGET_P95_MS,
                "meets_target": p95 <= TARGET_P95_MS,
                "presses": len(allms),
                "pause_ms": [round(x, 2) for x in lat["pause_ms"]],
                "resume_ms": [round(x, 2) for x in lat["resume_ms"]],
                "method": "tui-lab in a 120x36 pty: key written -> terminal receives text paused/running",
            }
            lines.append(
                f"key -> screen (real app in a pty): p95 {p95:.1f} ms = {p95 / TARGET_P95_MS:.2f}x "
                f"the target; p50 {p50:.1f} ms; {len(allms)} presses"
            )
            print(lines[-1], flush=True)

        if "views" in parts:
            per_view = view_bandwidth(tmp, args.view_seconds)
            worst = max(per_view.values())
            results["bandwidth_per_view"] = {
                **{f"view_{k}_{VIEW_NAMES[k]}_kb_per_s": round(v / 1024, 2) for k, v in per_view.items()},
                "target_kb_per_s": TARGET_KBPS,
                "meets_target": worst / 1024 <= TARGET_KBPS,
                "seconds_each": args.view_seconds,
                "method": "tui-lab in a 120x36 pty, one app per view: the view key, r, bytes read while training",
            }
            lines.append(
                "bytes to the terminal while training, 120x36: "
                + ", ".join(f"view {k} {v / 1024:.1f} KB/s" for k, v in per_view.items())
                + f"; worst = {worst / 1024 / TARGET_KBPS:.2f}x the {TARGET_KBPS:.0f} KB/s target"
            )
            print(lines[-1], flush=True)

        if "speed" in parts:
            cfg = config(args.speed_steps)
            tui: list[dict] = []
            head: list[dict] = []
            for rep in range(args.reps):
                for arm in ("tui", "headless") if rep % 2 == 0 else ("headless", "tui"):
                    if arm == "tui":
                        tui.append(tui_run(cfg, tmp, f"speed-tui-{rep}"))
                    else:
                        head.append(headless_run(cfg, tmp, f"speed-head-{rep}"))
                print(
                    f"  rep {rep + 1}/{args.reps}: TUI {tui[-1]['elapsed_s']:.2f}s "
                    f"({tui[-1]['bytes_per_s'] / 1024:.1f} KB/s to the terminal), headless "
                    f"{head[-1]['elapsed_s']:.2f}s",
                    flush=True,
                )
            t_med = median([r["elapsed_s"] for r in tui])
            h_med = median([r["elapsed_s"] for r in head])
            speed = h_med / t_med
            kbps = median([r["bytes_per_s"] for r in tui]) / 1024
            idle = median([r["idle_bytes_per_s"] for r in tui]) / 1024
            results["speed"] = {
                "tui_vs_headless": round(speed, 4),
                "target": TARGET_SPEED,
                "meets_target": speed >= TARGET_SPEED,
                "tui_s_median": round(t_med, 3),
                "headless_s_median": round(h_med, 3),
                "tui_s": [r["elapsed_s"] for r in tui],
                "headless_s": [r["elapsed_s"] for r in head],
                "steps": args.speed_steps,
                "reps": args.reps,
                "model": "mlp 8x128 relu, batch 128, log_every 10",
            }
            results["bandwidth"] = {
                "kb_per_s": round(kbps, 2),
                "target_kb_per_s": TARGET_KBPS,
                "meets_target": kbps <= TARGET_KBPS,
                "idle_kb_per_s": round(idle, 3),
                "per_run_kb_per_s": [round(r["bytes_per_s"] / 1024, 2) for r in tui],
                "windows_s": [round(r["window_s"], 2) for r in tui],
            }
            lines.append(
                f"TUI training speed: {speed:.3f}x headless (target >= {TARGET_SPEED}x: "
                f"{verdict(speed, TARGET_SPEED, higher_is_better=True)}); {t_med:.2f}s vs {h_med:.2f}s for "
                f"{args.speed_steps} steps"
            )
            print(lines[-1], flush=True)
            lines.append(
                f"terminal bandwidth while training: {kbps:.1f} KB/s = {kbps / TARGET_KBPS:.2f}x the "
                f"{TARGET_KBPS:.0f} KB/s budget ({verdict(kbps, TARGET_KBPS)}); idle {idle:.2f} KB/s"
            )
            print(lines[-1], flush=True)

        if "memory" in parts:
            r = tui_run(config(args.mem_steps, "tiny"), tmp, "memory", rss_marks=(args.early, args.mem_steps))
            early, late = r["rss_mb"][args.early], r["rss_mb"][args.mem_steps]
            growth = late - early
            results["memory"] = {
                "rss_growth_mb": round(growth, 2),
                "target_mb": TARGET_MB,
                "meets_target": growth <= TARGET_MB,
                "rss_early_mb": round(early, 2),
                "rss_late_mb": round(late, 2),
                "early_step": args.early,
                "steps": args.mem_steps,
                "elapsed_s": r["elapsed_s"],
                "kb_per_s": round(r["bytes_per_s"] / 1024, 2),
                "model": "mlp 4x32 relu, batch 32, log_every 10",
            }
            lines.append(
                f"TUI RSS growth {args.early} -> {args.mem_steps} steps: {growth:+.1f} MB = "
                f"{growth / TARGET_MB:.2f}x the {TARGET_MB:.0f} MB budget ({verdict(growth, TARGET_MB)}); "
                f"{early:.1f} -> {late:.1f} MB; {r['bytes_per_s'] / 1024:.1f} KB/s to the terminal"
            )
            print(lines[-1], flush=True)

    print()
    print("\n".join(lines))
    print(f"  load {load_before} -> {loadavg()}")
    path = write_results("bench_ui", results, args.results_dir)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
