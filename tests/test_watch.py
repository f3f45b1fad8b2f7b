"""tui_lab.watch on plain PyTorch loops: the run directory it writes, what the lab says about the model, how the
block ends, and `tui-lab show` on it (README: Watch your own model)."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import tui_lab
from tui_lab.core.run import Snapshot
from tui_lab.core.runlog import read_meta, read_metrics, read_run_config, read_summary

from pilot import aio, on_screen, status_text, wait_for

torch.set_num_threads(1)


def mlp(depth: int = 3, width: int = 32, act: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 3))


def data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def train(model, opt, lab, steps: int, x, y, manual_lr: float = 0.0) -> None:
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        if opt is not None:
            opt.zero_grad()
        else:
            model.zero_grad()
        loss.backward()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for p in model.parameters():
                    p -= manual_lr * p.grad
            lab.step()
        lab.log(loss=loss, acc=0.5, tokens=128)


def lines(run: Path) -> list[dict]:
    return read_metrics(run)[0]


class TestPlainLoop:
    def test_the_run_directory_is_the_labs(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "mine", every=10) as lab:
            train(model, opt, lab, 45, x, y)
        run = tmp_path / "mine"
        records = lines(run)
        assert [r["step"] for r in records] == [0, 10, 20, 30, 40]  # counted by the optimiser itself
        # Forward order, the modules' own names; the activations are not layers.
        assert [layer["name"] for layer in records[0]["layers"]] == ["0", "2", "4", "6"]
        first = Snapshot.from_dict(records[0])
        hidden = first.layers[0]
        assert hidden.grad_norm > 0 and hidden.weight_norm > 0 and 0 < hidden.update_ratio < 1
        assert hidden.act_grad_norm > 0 and hidden.act_std > 0
        assert hidden.dead_frac is not None  # a ReLU module follows it: dead units apply
        assert first.layers[-1].dead_frac is None  # the logits: no activation follows, nothing guessed
        # The loss logged after optimizer.step() belongs to its own step: step 0's snapshot has it.
        assert records[0]["loss"] == pytest.approx(nn.functional.cross_entropy(mlp()(x), y).item(), rel=1e-5)
        assert records[1]["loss"] < records[0]["loss"]
        assert records[0]["acc"] == 0.5 and records[0]["scalars"] == {"tokens": 128.0}
        summary = read_summary(run)
        assert summary["status"] == "completed" and summary["steps"] == 45
        assert summary["findings"] and summary["layers"] == ["0", "2", "4", "6"]
        # Readers of the lab read it: the model's description stands in for a config.
        cfg = read_run_config(run)
        assert cfg.optim.name == "sgd" and cfg.model.activation == "relu" and cfg.model.depth == 3
        meta, _ = read_meta(run)
        assert meta.device == "cpu" and meta.preset == "Sequential"
        assert not (run / "config.toml").exists() and 'kind = "watch"' in (run / "model.toml").read_text()

    def test_lab_step_counts_without_an_optimizer(self, tmp_path):
        model, (x, y) = mlp(), data()
        with tui_lab.watch(model, out=tmp_path / "manual", every=5, name="by-hand") as lab:
            train(model, None, lab, 12, x, y, manual_lr=0.1)
        records = lines(tmp_path / "manual")
        assert [r["step"] for r in records] == [0, 5, 10]
        assert records[0]["lr"] == 0.0 and records[0]["layers"][0]["update_ratio"] > 0
        assert read_summary(tmp_path / "manual")["preset"] == "by-hand"

    def test_an_adam_run_is_judged_as_adam(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        with tui_lab.watch(model, opt, out=tmp_path / "adam", every=5) as lab:
            train(model, opt, lab, 6, x, y)
        assert read_run_config(tmp_path / "adam").optim.name == "adam"

    def test_layers_by_name_pattern(self, tmp_path):
        torch.manual_seed(0)
        model = nn.Sequential()
        model.add_module("body", mlp(depth=2))
        model.add_module("head", nn.Linear(3, 3))
        x, y = data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "body", every=2, layers="body") as lab:
            train(model, opt, lab, 3, x, y)
        assert read_summary(tmp_path / "body")["layers"] == ["body.0", "body.2", "body.4"]
        with tui_lab.watch(model, opt, out=tmp_path / "glob", every=2, layers=["head", "body.[02]"]) as lab:
            train(model, opt, lab, 3, x, y)
        assert read_summary(tmp_path / "glob")["layers"] == ["body.0", "body.2", "head"]
        with pytest.raises(ValueError, match=r"layers = \['nope\*'\] matches no module with weights"):
            tui_lab.watch(model, opt, layers="nope*")

    def test_bad_arguments_are_one_line(self, tmp_path):
        model = mlp()
        with pytest.raises(ValueError, match=r"every = 0: allowed: an integer >= 1"):
            tui_lab.watch(model, every=0)
        with pytest.raises(TypeError, match="must be a torch.nn.Module"):
            tui_lab.watch("model")
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("mine")
        with pytest.raises(ValueError, match="not empty"), tui_lab.watch(model, out=tmp_path / "mine"):
            pass
        assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"

    def test_running_the_script_again_replaces_its_run(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for steps in (25, 5):
            with tui_lab.watch(model, opt, out=tmp_path / "again", every=10) as lab:
                train(model, opt, lab, steps, x, y)
        assert [r["step"] for r in lines(tmp_path / "again")] == [0]
        assert read_summary(tmp_path / "again")["steps"] == 5


class TestDiagnosis:
    def test_a_deep_sigmoid_net_is_found_vanishing(self, tmp_path):
        model, (x, y) = mlp(depth=10, act=nn.Sigmoid), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "sig", every=5) as lab:
            train(model, opt, lab, 11, x, y)
        summary = read_summary(tmp_path / "sig")
        kinds = [f["kind"] for f in summary["findings"]]
        assert "vanishing" in kinds, summary["findings"]
        vanishing = summary["findings"][kinds.index("vanishing")]
        assert vanishing["layers"][0] == "0" and "sigmoid" in vanishing["message"]
        assert lines(tmp_path / "sig")[0]["layers"][0]["sat_frac"] is not None  # sigmoid modules: saturation

    def test_a_huge_init_diverges_and_says_where(self, tmp_path):
        model, (x, y) = mlp(depth=6, width=64), data()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(200.0)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        with tui_lab.watch(model, opt, out=tmp_path / "boom", every=10) as lab:
            train(model, opt, lab, 20, x, y)
        summary = read_summary(tmp_path / "boom")
        assert summary["status"] == "diverged", summary
        assert summary["divergence"]["step"] <= 10 and summary["divergence"].get("layer")
        assert "step" in summary["message"]
        assert summary["findings"][0]["kind"] in ("nonfinite", "exploding")
        assert lines(tmp_path / "boom")[0]["layers"][0]["grad_norm"] > 0  # the finite snapshot before

    def test_a_huge_but_finite_init_is_found_exploding(self, tmp_path):
        model, (x, y) = mlp(depth=6, width=64), data()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(8.0)
        opt = torch.optim.SGD(model.parameters(), lr=1e-9)
        with tui_lab.watch(model, opt, out=tmp_path / "big", every=10) as lab:
            train(model, opt, lab, 1, x, y)
        kinds = [f["kind"] for f in read_summary(tmp_path / "big")["findings"]]
        assert "exploding" in kinds


class TestEndings:
    def test_an_exception_fails_the_run_with_its_message(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        crash = pytest.raises(RuntimeError, match="the data loader broke")
        with crash, tui_lab.watch(model, opt, out=tmp_path / "crash", every=5) as lab:
            train(model, opt, lab, 7, x, y)
            raise RuntimeError("the data loader broke\nsecond line")
        summary = read_summary(tmp_path / "crash")
        assert summary["status"] == "failed" and summary["message"] == "RuntimeError: the data loader broke"
        assert summary["steps"] == 7 and len(lines(tmp_path / "crash")) == 2

    def test_ctrl_c_stops_it(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with pytest.raises(KeyboardInterrupt), tui_lab.watch(model, opt, out=tmp_path / "stop", every=5) as lab:
            train(model, opt, lab, 3, x, y)
            raise KeyboardInterrupt
        summary = read_summary(tmp_path / "stop")
        assert summary["status"] == "stopped" and summary["reason"] == "user" and summary["steps"] == 3

    def test_hooks_are_gone_after_the_block(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "gone", every=1) as lab:
            train(model, opt, lab, 2, x, y)
        hooks = [m._forward_hooks or m._forward_pre_hooks for m in model.modules()]
        assert not any(hooks) and not opt._optimizer_step_post_hooks

    def test_a_failure_of_the_watch_never_breaks_the_loop(self, tmp_path, monkeypatch):
        module = importlib.import_module("tui_lab.watch")

        def broken(self):
            raise RuntimeError("probe exploded")

        monkeypatch.setattr(module.Watch, "_measure", broken)
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        warned = pytest.warns(RuntimeWarning, match="stopped measuring: RuntimeError: probe exploded")
        with warned, tui_lab.watch(model, opt, out=tmp_path / "broken", every=2) as lab:
            train(model, opt, lab, 5, x, y)
        summary = read_summary(tmp_path / "broken")
        assert summary["status"] == "completed" and summary["steps"] == 5
        assert summary["message"] == "the watch stopped measuring: RuntimeError: probe exploded"

    def test_only_rank_0_writes(self, tmp_path, monkeypatch):
        module = importlib.import_module("tui_lab.watch")
        monkeypatch.setattr(module, "_rank", lambda: 1)
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "rank1", every=1) as lab:
            train(model, opt, lab, 3, x, y)
        assert not (tmp_path / "rank1").exists() and lab.run_dir is None
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


class TestCost:
    """What keeps `watch` near the plain loop's speed (README: The cost), and that it loses nothing for it."""

    def test_steps_between_snapshots_run_without_any_hook(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        calls: list[int] = []  # per step: how many forward hooks the model's modules ran
        with tui_lab.watch(model, opt, out=tmp_path / "quiet", every=10) as lab:
            for _ in range(25):
                counted = [0]

                def counting(fn, counted=counted):
                    return lambda *a, **k: (counted.__setitem__(0, counted[0] + 1), fn(*a, **k))[1]

                for m in model.modules():  # wrap whatever hooks are on now: they are the ones this forward runs
                    for hooks in (m._forward_hooks, m._forward_pre_hooks):
                        for key, fn in list(hooks.items()):
                            hooks[key] = counting(fn)
                loss = nn.functional.cross_entropy(model(x), y)
                calls.append(counted[0])
                opt.zero_grad()
                loss.backward()
                opt.step()
                lab.log(loss=loss)
        hooked = [step for step, n in enumerate(calls) if n]
        # The capture steps (their layers' hooks), and the step after each (one pre-hook on the model, that reads
        # the capture when its loss is in); nothing on the 19 others.
        assert hooked == [0, 1, 10, 11, 20, 21], calls
        assert calls[10] >= 4 and calls[11] == 1
        assert [r["step"] for r in lines(tmp_path / "quiet")] == [0, 10, 20]

    def test_every_snapshot_and_the_findings_are_on_disk_when_the_block_ends(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "all", every=1) as lab:
            train(model, opt, lab, 60, x, y)
        records = lines(tmp_path / "all")
        assert [r["step"] for r in records] == list(range(60)) and lab.snapshots == 60
        summary = read_summary(tmp_path / "all")
        assert summary["status"] == "completed" and summary["findings"]
        assert summary["final"]["step"] == 59
        # The findings are those of the last snapshot judged against the ones before it, as the lab judges it.
        from tui_lab.core.diagnosis import diagnose

        snaps = [Snapshot.from_dict(r) for r in records]
        expected = diagnose(snaps[-1], snaps[-33:-1], lab.cfg, initial=snaps[0])
        assert [f["kind"] for f in summary["findings"]] == [f.kind for f in expected]

    def test_dead_units_and_spread_are_the_layers_own(self, tmp_path):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 25, 16),
                              nn.ReLU(), nn.Linear(16, 3))  # fmt: skip
        with torch.no_grad():
            model[0].bias[:2] = -100.0  # two channels dead on every input
            model[3].bias[:5] = -100.0  # five of 16 units
        x, y = torch.randn(32, 1, 5, 5), torch.randint(0, 3, (32,))
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay: every snapshot sees the same net
        with tui_lab.watch(model, opt, out=tmp_path / "dead", every=2) as lab:
            for _ in range(5):
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                lab.log(loss=loss)
        records = lines(tmp_path / "dead")
        with torch.no_grad():
            conv = model[0](x)
            hidden = model[3](model[2](model[1](conv)))
        # The first capture reads the ReLU's output; the later ones the layer's own (the same units).
        for record in records:
            conv_stats, fc_stats = record["layers"][0], record["layers"][1]
            assert conv_stats["dead_frac"] == pytest.approx(2 / 6) and fc_stats["dead_frac"] == pytest.approx(5 / 16)
            assert conv_stats["act_std"] == pytest.approx(conv.std().item(), rel=1e-5)
            assert fc_stats["act_mean"] == pytest.approx(hidden.mean().item(), rel=1e-5, abs=1e-7)
        assert len(records) == 3

    def test_a_write_that_fails_stops_the_watch_not_the_loop(self, tmp_path, monkeypatch):
        module = importlib.import_module("tui_lab.watch")

        def full(self, snapshot):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(module._WatchLog, "__call__", full)
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        warned = pytest.warns(RuntimeWarning, match="stopped measuring: OSError")
        with warned as record, tui_lab.watch(model, opt, out=tmp_path / "full", every=2) as lab:
            train(model, opt, lab, 12, x, y)
        assert len([w for w in record if "stopped measuring" in str(w.message)]) == 1  # said once
        summary = read_summary(tmp_path / "full")
        assert summary["status"] == "completed" and summary["steps"] == 12
        assert "No space left on device" in summary["message"]


class TestModels:
    def test_conv_layer_norm_embedding_attention_rnn(self, tmp_path):
        class Mixed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Embedding(50, 16)
                self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
                self.norm = nn.LayerNorm(16)
                self.rnn = nn.GRU(16, 16, batch_first=True)
                self.conv = nn.Conv1d(16, 8, 3, padding=1)
                self.act = nn.ReLU()
                self.head = nn.Linear(8, 50)

            def forward(self, tokens: torch.Tensor) -> torch.Tensor:
                h = self.embed(tokens)
                h = self.norm(h + self.attn(h, h, h, need_weights=False)[0])
                h, _ = self.rnn(h)
                h = self.act(self.conv(h.transpose(1, 2))).transpose(1, 2)
                return self.head(h)

        torch.manual_seed(0)
        model = Mixed()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        tokens = torch.randint(0, 50, (8, 12))
        with tui_lab.watch(model, opt, out=tmp_path / "mixed", every=2) as lab:
            for _ in range(3):
                logits = model(tokens)
                loss = nn.functional.cross_entropy(logits.reshape(-1, 50), tokens.reshape(-1))
                opt.zero_grad()
                loss.backward()
                opt.step()
                lab.log(loss=loss)
        first = lines(tmp_path / "mixed")[0]["layers"]
        names = [layer["name"] for layer in first]
        # Forward order; out_proj runs inside attention (no forward of its own): right after it.
        assert names == ["embed", "attn", "attn.out_proj", "norm", "rnn", "conv", "head"]
        assert read_summary(tmp_path / "mixed")["layers"] == names
        assert "norm" in (tmp_path / "mixed" / "model.toml").read_text().split('name = "rnn"')[0]
        by = {layer["name"]: layer for layer in first}
        assert by["conv"]["dead_frac"] is not None and by["rnn"]["dead_frac"] is None
        assert by["attn.out_proj"]["act_std"] is None and by["attn.out_proj"]["grad_norm"] > 0
        assert all(by[n]["grad_norm"] > 0 for n in names)
        assert read_run_config(tmp_path / "mixed").optim.name == "adamw"

    def test_a_grad_scaler_is_read_unscaled(self, tmp_path):
        model, (x, y) = mlp(), data()
        norms = {}
        for scaled in (False, True):
            model = mlp()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            scaler = torch.amp.GradScaler("cpu", init_scale=1024.0) if scaled else None
            with tui_lab.watch(model, opt, out=tmp_path / f"amp{scaled}", every=5, scaler=scaler) as lab:
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                lab.log(loss=loss)
            first = lines(tmp_path / f"amp{scaled}")[0]["layers"][0]
            norms[scaled] = (first["grad_norm"], first["act_grad_norm"])
        assert norms[True] == pytest.approx(norms[False], rel=1e-4)

    def test_a_compiled_model_is_watched_through_its_original(self, tmp_path):
        model, (x, y) = mlp(depth=2), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)

        class Compiled(nn.Module):  # what torch.compile returns: the model as _orig_mod
            def __init__(self, inner: nn.Module) -> None:
                super().__init__()
                self._orig_mod = inner

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self._orig_mod(x)

        wrapped = Compiled(model)
        with tui_lab.watch(wrapped, opt, out=tmp_path / "compiled", every=5) as lab:
            train(wrapped, opt, lab, 6, x, y)
        records = lines(tmp_path / "compiled")
        assert [layer["name"] for layer in records[0]["layers"]] == ["0", "2", "4"]
        assert records[0]["layers"][0]["grad_norm"] > 0 and records[0]["layers"][0]["act_std"] is None


def test_import_tui_lab_does_not_import_torch():
    code = "import sys, tui_lab; assert 'torch' not in sys.modules; print(callable(tui_lab.watch))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_submodule_imported_by_name_is_callable_too(tmp_path):
    module = importlib.import_module("tui_lab.watch")
    model = mlp(depth=1)
    with tui_lab.watch(model, out=tmp_path / "w") as lab, module(model, out=tmp_path / "v") as other:
        assert isinstance(other, module.Watch) and lab.run_dir != other.run_dir


class TestShow:
    @aio
    async def test_show_follows_a_watched_run(self, tmp_path):
        from tui_lab.ui.app import LabApp

        model, (x, y) = mlp(depth=4, act=nn.Sigmoid), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = tmp_path / "mine"
        lab = tui_lab.watch(model, opt, out=run, every=5)
        lab.__enter__()
        train(model, opt, lab, 11, x, y)
        # The next step's backward begins: the capture of step 10 is written (the writer's turn: _Writer.hold).
        nn.functional.cross_entropy(model(x), y).backward()
        app = LabApp(show_dir=run)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: len(app.lab.run.records) == 3, 10)
            assert app.lab.state == "following"
            # The modules' own names, input side to output layer (the panel lays its rows out as it fills).
            rows = lambda: [line.split()[1] for line in on_screen(app, "#p-flow").splitlines()[1:-1] if line.split()]
            await wait_for(pilot, lambda: rows()[:5] == ["0", "2", "4", "6", "8"], 10)
            assert on_screen(app, "#p-findings")
            assert not app.query_one("#p-config").display and not app.query_one("#p-learned").display
            assert "step 11" in status_text(app) and "step 11/" not in status_text(app)
            for key in ("1", "5"):  # views of the lab's config and data: what applies instead
                await pilot.press(key)
                await pilot.pause(0.1)
                assert not app.query_one("#p-config").display and not app.query_one("#p-learned").display
            train(model, opt, lab, 10, x, y)
            lab.__exit__(None, None, None)
            await wait_for(pilot, lambda: app.lab.state == "completed", 10)
            assert len(app.lab.run.records) == 5
            # Judged as the watch judged it: the last snapshot's findings are the summary's.
            shown = app.lab.run.findings(app.lab.run.bridge.read())
            assert [f.message for f in shown] == [f["message"] for f in read_summary(run)["findings"]]

    def test_tui_lab_show_accepts_a_watched_run(self, tmp_path, monkeypatch):
        from tui_lab import cli

        model, (x, y) = mlp(), data()
        with tui_lab.watch(model, out=tmp_path / "mine") as lab:
            train(model, None, lab, 2, x, y, manual_lr=0.1)
        calls = []
        monkeypatch.setattr("tui_lab.ui.app.run_app", lambda **kw: calls.append(kw) or 0)
        assert cli.main(["show", str(tmp_path / "mine")]) == 0
        assert calls and calls[0]["show_dir"] == tmp_path / "mine"


class TestExport:
    def test_csv_one_row_per_snapshot_and_layer(self, tmp_path):
        model, (x, y) = mlp(), data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with tui_lab.watch(model, opt, out=tmp_path / "mine", every=5) as lab:
            train(model, opt, lab, 11, x, y)
        proc = subprocess.run(
            [sys.executable, "-m", "tui_lab", "export", str(tmp_path / "mine"), "--format", "csv"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert proc.stdout.strip() == str(tmp_path / "mine" / "metrics.csv")
        rows = list(csv.DictReader((tmp_path / "mine" / "metrics.csv").open()))
        assert len(rows) == 3 * 4  # steps 0, 5, 10 x four layers
        assert [r["layer"] for r in rows[:4]] == ["0", "2", "4", "6"] and rows[4]["step"] == "5"
        first = lines(tmp_path / "mine")[0]
        assert float(rows[0]["grad_norm"]) == first["layers"][0]["grad_norm"]
        assert float(rows[0]["loss"]) == first["loss"] and rows[3]["dead_frac"] == ""  # not measured: empty

    def test_tensorboard_or_one_line_saying_what_is_missing(self, tmp_path):
        model, (x, y) = mlp(), data()
        with tui_lab.watch(model, out=tmp_path / "mine", every=5) as lab:
            train(model, None, lab, 6, x, y, manual_lr=0.1)
        cmd = [sys.executable, "-m", "tui_lab", "export", str(tmp_path / "mine"), "--format", "tensorboard"]
        proc = subprocess.run([*cmd, "--out", str(tmp_path / "tb")], capture_output=True, text=True)
        if importlib.util.find_spec("tensorboard") is None:
            assert proc.returncode == 2 and "Traceback" not in proc.stderr
            assert "needs the tensorboard package (pip install tensorboard)" in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
        else:
            assert proc.returncode == 0, proc.stderr
            assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())

    def test_not_a_run_directory(self, tmp_path):
        proc = subprocess.run(
            [sys.executable, "-m", "tui_lab", "export", str(tmp_path), "--format", "csv"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and "not a run directory (no metrics.jsonl)" in proc.stderr
