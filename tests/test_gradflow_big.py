"""The per-layer panels on a real model's run (hundreds of layers named by module path): rows grouped under their
block's header, scrolled with PgUp/PgDn (or, focused, ↑/↓, Home, End), collapsed to one row per block with z;
and the pure grouping of ui/components/layer_rows.py. The runs are written with the run directory's own writer
(core/runlog.py), no training: what `tui-lab show` opens after `tui_lab.watch`."""

from __future__ import annotations

import math
from pathlib import Path

from tui_lab.core.run import LayerStats, RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import RunLog
from tui_lab.core.watched import KIND, MODEL_FILE, dumps_description, stand_in_config
from tui_lab.ui.app import LabApp
from tui_lab.ui.components.axes import sci as short
from tui_lab.ui.components.gradflow import GradFlowPanel, LayersPanel
from tui_lab.ui.components.layer_rows import flat, has_blocks, joint, layer_rows, shorten, split, worst

from pilot import aio, on_screen, wait_for

LEAVES = ("ln_1", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "ln_2", "mlp.fc_in", "mlp.fc_out")
BLOCKS = 37  # 37 blocks of 8, an embedding, a final norm and a head: 299 layers


def model_names(blocks: int = BLOCKS, prefix: str = "blocks") -> list[str]:
    return ["embed", *(f"{prefix}.{b}.{leaf}" for b in range(blocks) for leaf in LEAVES), "ln_f", "head"]


def grad_of(i: int, name: str) -> float:
    """Level gradients, but blocks.5's attn.q_proj vanishes (1e-9 of the head's)."""
    if name.endswith("blocks.5.attn.q_proj"):
        return 1e-10
    return 0.1 * (1 + i % 5)


class _ModelLog(RunLog):
    """A watched run's directory: model.toml where a lab run has config.toml (as tui_lab.watch writes it)."""

    def __init__(self, directory: Path, desc: dict):
        self.desc = desc
        super().__init__(directory)

    def description(self, meta: RunMeta) -> tuple[str, str]:
        return MODEL_FILE, dumps_description(self.desc)


def write_run(directory: Path, names: list[str], snapshots: int = 2) -> Path:
    desc = {
        "kind": KIND,
        "name": "big",
        "model": "Big",
        "every": 10,
        "optim": "sgd",
        "lr": 0.1,
        "layers": [{"name": n, "type": "Linear", "shape": "16x16"} for n in names],
    }
    log = _ModelLog(directory, desc)
    log.on_start(RunMeta(config=stand_in_config(desc), preset="big", layers=names))
    snap = None
    for k in range(snapshots):
        layers = [
            LayerStats(n, grad_norm=grad_of(i, n), weight_norm=1.0, update_ratio=1e-3 * (1 + i % 3), act_std=0.5)
            for i, n in enumerate(names)
        ]
        snap = Snapshot(step=10 * k, total_steps=0, epoch=0.0, time_s=float(k), loss=1.0, layers=layers)
        log(snap)
    log.on_finish(RunResult("completed", 10 * snapshots, last=snap))
    return directory


def body_lines(panel) -> list[str]:
    return panel.body.render().plain.split("\n")


# -- the grouping itself --------------------------------------------------------------------------------------


class TestGrouping:
    def test_a_layer_belongs_to_its_repeated_container_else_its_parent(self):
        assert split("blocks.3.attn.q_proj") == ("blocks.3", "attn.q_proj")
        assert split("layer2.0.conv1") == ("layer2.0", "conv1")
        assert split("model.encoder.layers.11.self_attn.k") == ("model.encoder.layers.11", "self_attn.k")
        assert split("2.conv1") == ("2", "conv1")  # a Sequential of blocks
        assert split("encoder.layers.0") == ("encoder", "layers.0")  # an index at the end names a layer
        assert split("encoder.norm") == ("encoder", "norm")
        for alone in ("fc1", "hidden.3", "L7", "out", "0"):
            assert split(alone) == ("", alone)

    def test_consecutive_layers_of_a_group_go_under_one_header_the_prefix_said_once(self):
        names = ["tokens", "blocks.0.attn", "blocks.0.attn.out_proj", "blocks.0.mlp.0", "blocks.1.attn", "head"]
        rows = layer_rows(names)
        assert [(r.kind, r.text) for r in rows] == [
            ("layer", "tokens"),
            ("header", "blocks.0"),
            ("layer", "  attn"),
            ("layer", "  attn.out_proj"),
            ("layer", "  mlp.0"),
            ("layer", "blocks.1.attn"),  # alone in its group: its whole name, no header for one row
            ("layer", "head"),
        ]
        assert [r.layers for r in rows if r.kind == "layer"] == [(0,), (1,), (2,), (3,), (4,), (5,)]
        assert not flat(rows)

    def test_the_labs_own_names_stay_a_flat_list(self):
        for names in (["L1", "L2", "L3", "out"], ["fc1", "hidden.3", "hidden.4", "out"], [f"{i}" for i in range(9)]):
            rows = layer_rows(names)
            assert flat(rows) and [r.text for r in rows] == names
            assert layer_rows(names, blocks=True) == rows and not has_blocks(names)

    def test_collapsed_one_row_a_block_first_and_last_layers_kept(self):
        names = model_names(4)
        rows = layer_rows(names, blocks=True)
        assert [(r.kind, r.label) for r in rows] == [
            ("layer", "embed"),
            *(("block", f"blocks.{b}") for b in range(4)),
            ("layer", "ln_f"),
            ("layer", "head"),
        ]
        assert rows[1].layers == tuple(range(1, 9))
        # A model whose first and last layers sit in blocks: they keep rows of their own all the same.
        inner = [f"layers.{b}.{leaf}" for b in range(3) for leaf in ("conv1", "conv2", "conv3")]
        rows = layer_rows(inner, blocks=True)
        assert rows[0].label == "layers.0.conv1" and rows[0].layers == (0,)
        assert rows[1].layers == (1, 2) and rows[-1].layers == (8,) and rows[-2].layers == (6, 7)

    def test_shorten_cuts_from_the_left_and_keeps_the_leaf(self):
        long = "model.encoder.layers.11.self_attention.query_projection"
        assert shorten("blocks.3", 20) == "blocks.3"
        cut = shorten(long, 24)
        assert len(cut) == 24 and cut.startswith("…") and cut.endswith("self_attention.query_projection"[-23:])
        assert shorten(long, 24, "...") == "..." + long[-21:]
        assert shorten("query_projection", 8).endswith("jection") and len(shorten("query_projection", 8)) == 8

    def test_joint_norm_and_the_worst_layer(self):
        assert math.isclose(joint([3.0, 4.0]), 5.0)
        assert joint([1.0, None]) is None and math.isnan(joint([1.0, math.nan]))
        assert worst([0.1, 1e-9, 200.0], ["level", "vanishing", "high"], ref=0.1) == 1  # an alarm first
        assert worst([0.1, 0.005, 5.0], ["level", "low", "high"], ref=0.1) == 2  # then the furthest: 50x > 1/20
        assert worst([0.1, 0.0], ["level", "vanishing"], ref=0.1) == 1  # exactly zero: as far as it gets
        assert worst([0.1, 0.2], ["", ""], ref=None) is None


# -- the panels on a 299-layer run ---------------------------------------------------------------------------


async def _opened(pilot, app, selector: str, text: str) -> str:
    await wait_for(pilot, lambda: text in on_screen(app, selector), timeout=20)
    return on_screen(app, selector)


class TestBigModel:
    @aio
    async def test_rows_under_block_headers_and_pgdn_reaches_the_last_layer(self, tmp_path):
        names = model_names()
        run = write_run(tmp_path / "big", names)
        app = LabApp(show_dir=run)
        async with app.run_test(size=(80, 24)) as pilot:
            shown = await _opened(pilot, app, "#p-flow", "blocks.0")
            assert "│   attn.q_proj " in shown and "blocks.0.attn" not in shown  # indented, prefix said once
            panel = app.query_one(GradFlowPanel)
            assert len(body_lines(panel)) <= panel.size.height  # only the rows that fit are drawn
            total = len(layer_rows(names))
            assert f"of {total}: PgUp/PgDn" in shown and "z: one row per block" in shown
            for _ in range(100):
                if "head " in on_screen(app, "#p-flow"):
                    break
                await pilot.press("pagedown")
                await pilot.pause(0.05)
            shown = on_screen(app, "#p-flow")
            assert "head " in shown and f"-{total} of {total}" in shown
            assert "blocks.36" in shown  # the last block's header stays above its rows
            for _ in range(100):
                await pilot.press("pageup")
            await pilot.pause(0.1)
            assert "embed " in on_screen(app, "#p-flow") and "rows 1-" in on_screen(app, "#p-flow")

    @aio
    async def test_focused_layers_panel_scrolls_with_end_home_and_arrows(self, tmp_path):
        run = write_run(tmp_path / "big", model_names())
        app = LabApp(show_dir=run)
        async with app.run_test(size=(80, 24)) as pilot:
            await _opened(pilot, app, "#p-flow", "blocks.0")
            await pilot.press("4")
            await _opened(pilot, app, "#p-layers", "act std")
            app.query_one(LayersPanel).focus()
            await pilot.press("end")
            shown = await _opened(pilot, app, "#p-layers", "head ")
            assert "ln_f " in shown and "act std" in shown  # the column heads stay on top
            await pilot.press("home")
            await _opened(pilot, app, "#p-layers", "embed ")
            await pilot.press("down", "down")
            await pilot.pause(0.1)
            shown = on_screen(app, "#p-layers")  # two rows down: blocks.0's header held above its third row
            assert "embed " not in shown and "│ blocks.0 " in shown and "rows 4-" in shown
            assert app.lab.run.cursor is None  # Home/End went to the panel, not to the snapshots

    @aio
    async def test_z_collapses_to_one_row_per_block_with_the_joint_norm(self, tmp_path):
        names = model_names()
        run = write_run(tmp_path / "big", names)
        app = LabApp(show_dir=run)
        async with app.run_test(size=(120, 36)) as pilot:
            await _opened(pilot, app, "#p-flow", "blocks.0")
            await pilot.press("z")
            shown = await _opened(pilot, app, "#p-flow", "blocks.0 ×8")
            panel = app.query_one(GradFlowPanel)
            lines = body_lines(panel)
            assert [line.split()[0] for line in lines[:3]] == ["embed", "blocks.0", "blocks.1"]  # no headers
            assert f"of {BLOCKS + 3}: PgUp/PgDn · z: every layer ({len(names)})" in shown
            # blocks.0's bar is the joint norm of its eight layers' ||grad W||.
            block0 = [grad_of(i, n) for i, n in enumerate(names) if n.startswith("blocks.0.")]
            expected = short(math.sqrt(sum(g * g for g in block0)), 1)
            row = next(line for line in lines if line.startswith("blocks.0 "))
            assert expected in row
            # blocks.5 holds a vanishing layer: its joint norm is level, its worst layer is named and marked.
            for _ in range(10):
                if "blocks.5 " in on_screen(app, "#p-flow"):
                    break
                await pilot.press("pagedown")
                await pilot.pause(0.05)
            row = next(line for line in on_screen(app, "#p-flow").splitlines() if "blocks.5 " in line)
            assert "attn.q_proj" in row and "↓↓" in row
            # The layers table collapses with it: one row a block, each column its worst layer's.
            layers = on_screen(app, "#p-layers")
            assert "blocks.0 ×8" in layers and "3e-3" in next(x for x in layers.splitlines() if "blocks.0 " in x)
            await pilot.press("z")
            await _opened(pilot, app, "#p-flow", "attn.q_proj")
            assert "×8" not in on_screen(app, "#p-flow")

    @aio
    async def test_z_keeps_the_scrolled_place(self, tmp_path):
        run = write_run(tmp_path / "big", model_names())
        app = LabApp(show_dir=run)
        async with app.run_test(size=(80, 24)) as pilot:
            await _opened(pilot, app, "#p-flow", "blocks.0")
            for _ in range(12):
                await pilot.press("pagedown")
            await pilot.pause(0.1)
            first = app.query_one(GradFlowPanel)._first
            block = app.lab.view().meta.layers[first].split(".")[1]
            await pilot.press("z")
            shown = await _opened(pilot, app, "#p-flow", "×8")
            assert shown.splitlines()[1].split()[1] == f"blocks.{block}"

    @aio
    async def test_80x24_long_paths_fit_and_keep_their_leaf(self, tmp_path):
        names = model_names(30, prefix="model.encoder.transformer_layers")
        names = [n.replace("attn.", "self_attention.") for n in names]
        run = write_run(tmp_path / "big", names)
        app = LabApp(show_dir=run)
        async with app.run_test(size=(80, 24)) as pilot:
            await _opened(pilot, app, "#p-flow", "transformer_layers.0")
            for view, selector in (("2", "#p-flow"), ("4", "#p-layers")):
                await pilot.press(view)
                await _opened(pilot, app, selector, "embed")
                panel = app.query_one(selector)
                for blocks in (False, True):
                    width = panel.body.size.width
                    lines = body_lines(panel)
                    assert lines and all(len(line) <= width for line in lines), (selector, blocks)
                    shown = on_screen(app, selector)
                    if blocks:  # cut from the left: the block's own index stays, and how many layers it holds
                        assert "…" in shown and "transformer_layers.3 ×8" in shown
                    else:
                        assert "│ model.encoder.transformer_layers.0 " in shown  # a header has its own line
                        assert "│   self_attention.out_proj " in shown
                    await pilot.press("z")
                    await _opened(pilot, app, selector, "" if blocks else "×8")
                    await pilot.pause(0.1)

    @aio
    async def test_a_lab_net_has_no_blocks_to_collapse(self, tmp_path):
        run = write_run(tmp_path / "flat", ["L1", "L2", "L3", "out"])
        app = LabApp(show_dir=run)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            shown = await _opened(pilot, app, "#p-flow", "L1 ")
            await pilot.press("z")
            await pilot.pause(0.2)
            assert not app.lab.blocks and on_screen(app, "#p-flow") == shown
            assert any("no blocks here" in n.message for n in app._notifications)
            assert "PgUp/PgDn" not in shown and "z:" not in shown  # a lab net's panel is what it was
