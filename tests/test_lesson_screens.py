"""Every lesson shows on screen what its text tells the student to look at, at the moment it names.

Each test opens the app on the lesson's preset (so on the view its [screen] section names), puts the lesson's
run on screen (the cached run of tests/lessons.py replayed: the same snapshots the trainer made), presses the
keys the lesson names (a view's number, Home, End, →) and reads the panels as the terminal shows them, at
120x36 and at 80x24. The numbers themselves are proven in test_lessons_depth.py and its siblings; here the
question is whether the student can see them.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

import pytest

from tui_lab.core.config import VIEWS
from tui_lab.ui.app import LabApp
from tui_lab.ui.runs import LiveRun

from lessons import preset, run, slow
from pilot import aio, on_screen, panel_ready, status_text, wait_for

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]
VIEW_OF = {"config": "1", "gradients": "2", "curves": "3", "layers": "4", "learned": "5"}
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?![\w.])")

pytestmark = slow


class Screen:
    """The app with a lesson's run on it, seen as the student sees it."""

    def __init__(self, app: LabApp, pilot) -> None:
        self.app, self.pilot = app, pilot

    async def press(self, *keys: str) -> None:
        for key in keys:
            await self.pilot.press(key)
        await self.pilot.pause(0.1)
        self.app.main.refresh_panels()
        await self.pilot.pause(0.1)

    async def to_step(self, step: int) -> None:
        """From the first snapshot, → until the snapshot shown is at `step` or later (what 'by step N' asks)."""
        await self.press("home")
        while self.shown_step < step:
            await self.press("right")

    @property
    def shown_step(self) -> int:
        return self.app.lab.frame(self.app.lab.view()).snapshot.step

    @property
    def view(self) -> str:
        return VIEWS[self.app.main.view_index]

    def panel(self, selector: str) -> str:
        text = on_screen(self.app, selector)
        assert text, f"{selector} is not on screen in view {self.view}"
        return text

    def rows(self, selector: str) -> dict[str, str]:
        """A per-layer panel's rows on screen, by layer name ('L1', 'out'), border and margin stripped."""
        out = {}
        for line in self.panel(selector).splitlines()[1:-1]:
            body = line.strip("│ ").lstrip("✖ ")
            name = body.split(" ")[0]
            if re.fullmatch(r"L\d+|out", name):
                out[name] = body
        return out

    def bars(self) -> dict[str, float]:
        """The gradient-flow panel's value of each layer shown."""
        return {name: last_number(row) for name, row in self.rows("#p-flow").items()}

    def glyphs(self) -> dict[str, str]:
        """The gradient-flow panel's level glyphs (↓↓, ↓, ↑, ↑↑, '') of each layer shown."""
        return {name: row.rsplit(" ", 1)[-1].strip("0123456789.e-+") for name, row in self.rows("#p-flow").items()}

    def percents(self) -> dict[str, list[int]]:
        """The activations panel's (dead %, saturated %) of each layer shown."""
        return {name: [int(p) for p in re.findall(r"(\d+)%", row)] for name, row in self.rows("#p-layers").items()}

    def act_std(self) -> dict[str, float]:
        return {name: float(NUMBER.findall(row)[0]) for name, row in self.rows("#p-layers").items()}

    @property
    def findings(self) -> str:
        return " ".join(line.strip("│ ") for line in self.panel("#p-findings").splitlines())

    @property
    def status(self) -> str:
        return status_text(self.app)

    @property
    def learned(self):
        assert self.panel("#p-learned")
        return self.app.query_one("#p-learned").frame.learned


def last_number(row: str) -> float:
    return float(NUMBER.findall(row.replace("↓", " ").replace("↑", " "))[-1])


@asynccontextmanager
async def lesson(name: str, size: tuple[int, int]):
    cfg = preset(name)
    done = run(name)
    app = LabApp(preset_name=name, cfg=cfg)
    async with app.run_test(size=size) as pilot:
        await panel_ready(pilot, app)
        screen = Screen(app, pilot)
        assert screen.view == cfg.screen.view, f"{name} opens on view {cfg.screen.view}"
        assert app.lab.pace == cfg.screen.pace
        app.show_run(LiveRun.replay(cfg, name, done.meta, done.snaps, result=done.result))
        await wait_for(pilot, lambda: app.lab.view() is not None and app.lab.view().latest is not None)
        await screen.press("end")
        yield screen


def test_every_lesson_names_its_view_and_the_keys_that_get_around():
    for path_name in VIEW_OF:
        assert path_name in VIEWS
    from lessons import PRESET_NAMES

    for name in PRESET_NAMES:
        cfg = preset(name)
        assert cfg.screen.view in VIEW_OF, f"{name}: [screen] view"
        for lang, view_word in (("en", "view"), ("pt", "vista")):
            text = re.sub(r"\s+", " ", cfg.lesson_for(lang))
            assert f"{view_word} {VIEW_OF[cfg.screen.view]}" in text, f"{name} ({lang}) names the view it opens on"
            assert all(key in text for key in ("Home", "End", "←/→")), f"{name} ({lang}) names the scrub keys"


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_deep_sigmoid(size):
    async with lesson("deep-sigmoid", size) as s:
        bars = s.bars()
        assert bars["L1"] < 1e-6 * bars["L10"]  # about 1e-8 of what L10 gets
        assert s.glyphs()["L1"] == "↓↓"
        assert "vanishing gradients" in s.findings and "→ try" in s.findings
        await s.press("3")
        assert "guessing: 1.10" in s.panel("#p-loss") and "L1" in s.panel("#p-gradtime")
        await s.press("5")
        assert len(set("".join(s.learned.grid))) == 1  # one colour: every point called the same class


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_relu_he(size):
    async with lesson("relu-he", size) as s:
        assert not any(g.startswith("↓") for g in s.glyphs().values())  # level: within a factor of ten
        assert "vanishing" not in s.findings
        await s.press("5")
        grid = "".join(s.learned.grid)
        assert all(0.2 < grid.count(c) / len(grid) < 0.5 for c in "012")  # about a third each


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_batchnorm_rescue(size):
    async with lesson("batchnorm-rescue", size) as s:
        assert s.glyphs()["L1"] != "↓↓"
        assert "vanishing" not in s.findings
        await s.press("4")
        assert all(sat <= 2 for _dead, sat in s.percents().values())  # the saturated fraction stays ~0%
        await s.press("3")
        assert "acc" in s.panel("#p-loss")


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_xavier_tanh(size):
    async with lesson("xavier-tanh", size) as s:
        bars = s.bars()
        assert max(bars.values()) / min(bars.values()) < 10 * 3  # within about a decade
        await s.press("4")
        assert all(sat < 20 for _dead, sat in s.percents().values())  # low


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_small_random_init(size):
    async with lesson("small-random-init", size) as s:
        await s.press("home")
        assert s.shown_step == 0 and "snapshot 1/" in s.status
        assert all(value < 1e-10 for value in s.bars().values())  # every bar tiny, around 1e-12
        assert "vanishing gradients" in s.findings
        await s.press("4")
        std = s.act_std()
        assert std["L1"] > 100 * std["L10"]  # about 10x less per layer
        await s.press("2", "end")
        bars = s.bars()
        assert bars["out"] > 1e-5 and all(bars[f"L{i}"] < 1e-10 for i in range(1, 8) if f"L{i}" in bars)
        await s.press("5")
        assert len(set("".join(s.learned.grid))) == 1


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_he_vs_xavier_deep(size):
    async with lesson("he-vs-xavier-deep", size) as s:
        await s.press("home")
        bars = s.bars()
        assert "L1" in bars and "L30" in bars and "out" in bars  # 31 layers: the profile folds, both ends shown
        assert all(1e-7 < bars[name] < 1e-4 for name in bars if name != "out")  # short, between 1e-6 and 1e-5
        await s.press("4")
        std = s.act_std()
        assert std["L30"] < 1e-3 * std["L1"]  # some 3e-5 of L1's
        await s.press("end")
        assert max(dead for name, (dead, _sat) in s.percents().items() if name != "out") >= 70
        assert "▲" in s.panel("#p-layers")


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_exploding(size):
    async with lesson("exploding", size) as s:
        await s.press("home")
        assert all(value > 1e2 for value in s.bars().values())  # around 1e3
        assert "exploding gradients" in s.findings
        assert float(re.search(r"loss (\S+)", s.status).group(1)) > 100  # in the hundreds
        await s.press("end")
        assert "diverged" in s.status
        flow = s.panel("#p-flow")
        assert "✖ broke at step" in flow and "bars: step" in flow
        assert "overflowed" in " ".join(flow.split()) + s.findings


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_exploding_clipped(size):
    async with lesson("exploding-clipped", size) as s:
        await s.press("home")
        assert all(value > 1e2 for value in s.bars().values())
        assert "growing" in s.findings and "✖" not in s.findings  # the growth is seen, but only as a note
        await s.press("end")
        assert "completed" in s.status
        assert float(re.search(r"loss (\S+)", s.status).group(1)) < 1


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_dead_relu(size):
    async with lesson("dead-relu", size) as s:
        await s.press("home")
        assert all(dead < 50 for dead, _sat in s.percents().values())
        await s.press("2")
        assert "healthy" in s.findings
        await s.to_step(10)
        assert "dead ReLUs" in s.findings
        await s.press("4")
        assert sum(dead >= 50 for name, (dead, _sat) in s.percents().items() if name != "out") >= 3
        await s.press("2", "end")
        glyph_rows = s.rows("#p-flow")
        assert all("=0" in glyph_rows[f"L{i}"] or last_number(glyph_rows[f"L{i}"]) < 1e-6 for i in range(1, 5))


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_leaky_relu_fix(size):
    async with lesson("leaky-relu-fix", size) as s:
        assert all(dead == 0 for dead, _sat in s.percents().values())
        await s.press("2")
        assert "=0" not in s.panel("#p-flow") and "dead" not in s.findings


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_cnn_digits(size):
    async with lesson("cnn-digits", size) as s:
        bars = s.bars()
        assert max(bars.values()) / min(bars.values()) < 30  # within about a decade
        await s.press("5")
        panel = s.panel("#p-learned")
        assert all(a >= 0.9 for a in s.learned.accuracy)
        assert len(re.findall(r"\d+% of \d+", panel)) >= 10  # every class, on screen


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_residual_deep(size):
    async with lesson("residual-deep", size) as s:
        for moment in ("home", "end"):
            await s.press(moment)
            bars = s.bars()
            assert 1 / 3 < bars["L1"] / bars["L30"] < 3  # level: L1 gets about as much as L30
            assert "↓↓" not in s.glyphs().values()
            assert "healthy" in s.findings


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["rnn-vanishing", "rnn-vs-lstm"])
@aio
async def test_the_rnn_forgets(name, size):
    async with lesson(name, size) as s:
        assert "dloss/dx_t" in s.panel("#p-timegrad")  # view 4 holds the per-time-step panel
        await s.press("2")
        assert "vanishing" in s.findings and "through time" in s.findings
        await s.press("5")
        predictions = [p for p in s.learned.predictions if p is not None]
        assert max(predictions) - min(predictions) < 0.2 and abs(sum(predictions) / len(predictions) - 1) < 0.2


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["lstm-remembers", "gru"])
@aio
async def test_the_gated_cells_remember(name, size):
    async with lesson(name, size) as s:
        assert "dloss/dx_t" in s.panel("#p-timegrad")
        await s.press("2")
        assert "healthy" in s.findings
        await s.press("5")
        learned = s.learned
        assert all(abs(p - t) < 0.05 for p, t in zip(learned.predictions, learned.targets))


@pytest.mark.parametrize("size", SIZES)
@aio
async def test_optimizers(size):
    async with lesson("optimizers", size) as s:
        assert "g changes" in s.panel("#p-loss")  # the loss axis toggle the lesson names
        await s.press("2")
        assert s.bars()
