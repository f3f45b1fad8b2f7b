"""SVG snapshots of a paused, deterministic state at 80x24 and 160x48.

No training here: a fixed, synthetic sequence of snapshots (a 4-layer sigmoid MLP whose gradients shrink
toward the input) is fed to the app's bridge, paused, so every number on screen is fixed. Regenerate with
`pytest tests/test_ui_snapshots.py --snapshot-update` after an intended change to the screen.
"""

from __future__ import annotations

import math

from tui_lab.core.config import LabConfig, with_overrides
from tui_lab.core.diagnosis import diagnose
from tui_lab.core.run import Change, Histogram, Learned, RunMeta, RunResult, Snapshot
from tui_lab.ui.app import LabApp
from tui_lab.ui.runs import LiveRun

NAMES = ["L1", "L2", "L3", "L4", "out"]


def fixture_config(**extra: str):
    over = ["model.depth=4", "model.width=16", "train.steps=200", "train.device=cpu", *extra.values()]
    return with_overrides(LabConfig(), over)


def fixture_snapshots(cfg, steps: int = 21) -> list[Snapshot]:
    snaps: list[Snapshot] = []
    for i in range(steps):
        step = min(i * 10, 199)  # the last snapshot is the last step, as the trainer does
        layers = []
        for j, name in enumerate(NAMES):
            g = 10 ** (-7.5 + 1.6 * j + 0.15 * math.sin(i / 3 + j))
            layers.append(
                {
                    "name": name,
                    "grad_norm": g,
                    "weight_norm": 4.0 + j,
                    "update_ratio": 10 ** (-6 + j),
                    "act_mean": 0.5,
                    "act_std": 0.2 / (j + 1),
                    "dead_frac": 0.0,
                    "sat_frac": 0.1 * j,
                    "act_grad_norm": g * 3,
                }
            )
        d = {
            "step": step,
            "epoch": step / 25,
            "time_s": step / 100,
            "loss": 1.1 - 0.002 * i + 0.01 * math.sin(i),
            "acc": 0.33 + 0.004 * i,
            "lr": 0.1,
            "samples_per_s": 2500.0,
            "layers": layers,
        }
        if i % 5 == 0:
            d["val_loss"], d["val_acc"] = 1.1 - 0.002 * i, 0.33 + 0.003 * i
        snap = Snapshot.from_dict(d, total_steps=200)
        snap.eta_s = (200 - step) / 100
        snap.findings = diagnose(snap, snaps[-20:], cfg)
        snaps.append(snap)
    counts = [int(200 * math.exp(-(((k - 15) / 4) ** 2))) for k in range(31)]
    snaps[-1].histogram = Histogram(layer="L1", edges=[-3e-8 + 2e-9 * k for k in range(32)], counts=counts)
    return snaps


def regions(step: int) -> Learned:
    """A synthetic decision map: three wedges around the centre, and a ring of points, one per class."""
    size = 24
    grid, conf = [], []
    for r in range(size):
        y = 1 - 2 * r / (size - 1)
        row = [int(((math.atan2(y, -1 + 2 * c / (size - 1)) + math.pi) / (2 * math.pi)) * 3) % 3 for c in range(size)]
        grid.append("".join(map(str, row)))
        conf.append("".join(str(min(9, int(4 * math.hypot(y, -1 + 2 * c / (size - 1))) + 1)) for c in range(size)))
    points = [(0.8 * math.cos(a / 5), 0.8 * math.sin(a / 5), int(((a / 5) % (2 * math.pi)) / (2 * math.pi) * 3))
              for a in range(0, 31, 2)]  # fmt: skip
    return Learned(step, "regions", classes=3, task="spiral", bounds=(-1, 1, -1, 1), grid=grid, confidence=conf,
                   points=points)  # fmt: skip


def diverged_snapshots(cfg) -> list[Snapshot]:
    """The fixture run with an lr change at step 100, ending in a divergence at step 120 (L3's output)."""
    snaps = fixture_snapshots(cfg, steps=13)[:-1]
    snaps[10].changes = [Change(101, "optim.lr", 0.1, 0.5)]
    broken = Snapshot.from_dict(snaps[-1].to_dict(), total_steps=200)
    broken.step, broken.loss, broken.acc, broken.nonfinite = 120, None, None, True
    for j, layer in enumerate(broken.layers):
        layer.grad_norm = float("nan") if j >= 2 else layer.grad_norm
        layer.nonfinite = {"weights": 0, "grads": 16 if j >= 2 else 0, "acts": 320 if j >= 2 else 0}
    broken.findings = diagnose(broken, snaps[-20:], cfg)
    return [*snaps, broken]


def paused_app(view_keys: str = "", baseline: bool = False, diverged: bool = False, learned: bool = False):
    cfg = fixture_config()
    app = LabApp(preset_name="fixture", cfg=cfg)
    meta = RunMeta(cfg, "fixture", device="cpu", device_name="cpu", layers=NAMES, total_steps=200)

    async def before(pilot):
        from tui_lab.ui.components.config_panel import ConfigPanel

        # The screen composes as the app starts; its config rows mount just after the first frame.
        while not (app.query(ConfigPanel) and app.query_one(ConfigPanel).ready):
            await pilot.pause(0.05)
        snaps = fixture_snapshots(cfg)
        if baseline:
            app.show_run(LiveRun.replay(cfg, "fixture", meta, snaps[:12]))
            app.action_pin()
            relu = with_overrides(cfg, ["model.activation=relu", "model.init=he_normal"])
            app.show_run(LiveRun.replay(relu, "fixture", meta, fixture_snapshots(relu)[:15]))
        elif diverged:
            run = LiveRun.replay(cfg, "fixture", meta, diverged_snapshots(cfg))
            run.bridge.finish(RunResult("diverged", 121, message="the loss became nan at step 120"))
            app.show_run(run)
        else:
            if learned:
                snaps[-1].learned = regions(snaps[-1].step)
            app.show_run(LiveRun.replay(cfg, "fixture", meta, snaps))
        app.clear_notifications()
        for key in view_keys:
            await pilot.press(key)
        await pilot.pause(1.0)  # a cold process takes longer to settle every panel

    return app, before


class TestPausedScreen:
    def test_80x24_config_view(self, snap_compare):
        app, before = paused_app()
        assert snap_compare(app, terminal_size=(80, 24), run_before=before)

    def test_80x24_gradients_view(self, snap_compare):
        app, before = paused_app("2")
        assert snap_compare(app, terminal_size=(80, 24), run_before=before)

    def test_80x24_curves_view(self, snap_compare):
        app, before = paused_app("3")
        assert snap_compare(app, terminal_size=(80, 24), run_before=before)

    def test_160x48_everything(self, snap_compare):
        app, before = paused_app()
        assert snap_compare(app, terminal_size=(160, 48), run_before=before)

    def test_160x48_with_baseline(self, snap_compare):
        app, before = paused_app(baseline=True)
        assert snap_compare(app, terminal_size=(160, 48), run_before=before)

    def test_80x24_diverged_gradients_view(self, snap_compare):
        """The last finite bars, where it broke, and the lr change marked on the curves (view 3 in the next)."""
        app, before = paused_app("2", diverged=True)
        assert snap_compare(app, terminal_size=(80, 24), run_before=before)

    def test_80x24_diverged_curves_view(self, snap_compare):
        app, before = paused_app("3", diverged=True)
        assert snap_compare(app, terminal_size=(80, 24), run_before=before)

    def test_120x36_scrubbed_to_the_first_snapshot(self, snap_compare):
        app, before = paused_app("2", learned=True)

        async def scrub(pilot):
            await before(pilot)
            await pilot.press("home", "right")
            await pilot.pause(1.0)  # a cold process takes longer to settle every panel

        assert snap_compare(app, terminal_size=(120, 36), run_before=scrub)

    def test_120x36_learned_view(self, snap_compare):
        app, before = paused_app("5", learned=True)
        assert snap_compare(app, terminal_size=(120, 36), run_before=before)
