"""The trainer: the lessons' headline numbers, determinism, divergence, failures, Control, the run directory."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from tui_lab.core.config import load_config, with_overrides
from tui_lab.core.diagnosis import grad_ratio
from tui_lab.core.errors import UserError
from tui_lab.core.presets import bundled_dir
from tui_lab.core.run import Control, Snapshot
from tui_lab.core.runlog import RunLog, read_metrics, read_summary
from tui_lab.core.trainer import Trainer, resolve_device

from support import config


def run(*overrides: str, run_dir: Path | None = None, control: Control | None = None):
    snaps: list[Snapshot] = []
    sinks = [snaps.append] + ([RunLog(run_dir)] if run_dir else [])
    result = Trainer(config(*overrides), control=control, sinks=sinks).run()
    return result, snaps


def test_deep_sigmoid_vanishes_while_relu_he_and_tanh_xavier_stay_level():
    _, sig = run("train.steps=1", "model.depth=10", "model.activation=sigmoid", "model.init=default")
    assert 1e-10 < grad_ratio(sig[0].layers) < 1e-6  # about 1e-8
    assert "vanishing" in {f.kind for f in sig[0].findings}
    for act, init in (("relu", "he_normal"), ("tanh", "xavier_normal")):
        _, snaps = run("train.steps=1", "model.depth=20", f"model.activation={act}", f"model.init={init}")
        assert 0.1 < grad_ratio(snaps[0].layers) < 10, (act, init)


@pytest.mark.slow
def test_thirty_relu_layers_train_with_he_and_stall_with_xavier():
    common = ("train.steps=400", "model.depth=30", "model.activation=relu", "optim.lr=0.01", "train.eval_every=400")
    he, he_snaps = run(*common, "model.init=he_normal")
    xa, xa_snaps = run(*common, "model.init=xavier_normal")
    assert he_snaps[-1].val_acc > 0.8
    assert xa_snaps[-1].val_acc < 0.5 and xa_snaps[-1].loss > 1.0
    assert "fading_signal" in {f.kind for f in xa_snaps[0].findings}


def test_runs_are_deterministic_for_a_seed():
    _, a = run("train.steps=30", "model.depth=3", "model.dropout=0.1", "seed=7")
    _, b = run("train.steps=30", "model.depth=3", "model.dropout=0.1", "seed=7")
    _, c = run("train.steps=30", "model.depth=3", "model.dropout=0.1", "seed=8")
    strip = lambda snaps: [(s.step, s.loss, [layer.grad_norm for layer in s.layers]) for s in snaps]
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_a_non_finite_loss_ends_the_run_as_diverged_with_strict_json(tmp_path):
    result, snaps = run(
        "train.steps=200",
        "model.activation=relu",
        "model.init=normal",
        "model.init_scale=3",
        "optim.lr=50",
        run_dir=tmp_path / "run",
    )
    assert result.status == "diverged"
    assert snaps[-1].nonfinite and snaps[-1].findings[0].kind == "nonfinite"
    text = (tmp_path / "run" / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert summary["status"] == "diverged" and summary["diverged_at"] is not None
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


EXPLODES = ("train.steps=50", "model.activation=relu", "model.init=normal", "model.init_scale=0.5", "optim.lr=0.01",
            "model.depth=8", "train.log_every=10")  # fmt: skip


def test_a_diverged_runs_last_metrics_line_shows_every_layer_and_where_it_broke(tmp_path):
    result, snaps = run(*EXPLODES, run_dir=tmp_path / "run")
    assert result.status == "diverged"
    last = read_metrics(tmp_path / "run")[0][-1]
    assert [layer["name"] for layer in last["layers"]] == [f"L{i}" for i in range(1, 9)] + ["out"]
    assert last["lr"] == 0.01 and last["loss"] is None
    assert all(set(layer["nonfinite"]) == {"weights", "grads", "acts"} for layer in last["layers"])
    summary = read_summary(tmp_path / "run")
    where = summary["divergence"]
    assert where["step"] == last["step"] and where["quantity"] in ("weights", "activations", "gradients")
    broken = next(layer for layer in last["layers"] if layer["name"] == where["layer"])
    key = {"weights": "weights", "activations": "acts", "gradients": "grads"}[where["quantity"]]
    assert broken["nonfinite"][key] == where["count"] > 0
    assert f"at step {where['step']}" in snaps[-1].findings[0].message
    assert where["layer"] in summary["message"]


def test_on_a_gpu_the_divergence_found_at_a_snapshot_is_located_too(tmp_path, monkeypatch):
    """Where the loss is summed on the device (a GPU), a divergence shows at the next snapshot, after the step:
    the weights are put back as the step found them and the step is taken again with every probe on."""
    import tui_lab.core.trainer as trainer

    class DeviceSums(trainer.Interval):
        def __init__(self, on_host: bool):
            super().__init__(on_host=False)

    monkeypatch.setattr(trainer, "Interval", DeviceSums)
    result, snaps = run(*EXPLODES, run_dir=tmp_path / "run")
    assert result.status == "diverged" and "by step" in result.message
    summary = read_summary(tmp_path / "run")
    assert summary["divergence"]["quantity"] in ("weights", "activations", "gradients")
    assert all(layer.nonfinite is not None for layer in snaps[-1].layers)


def test_gradient_norms_do_not_underflow():
    """A 1e-30 gradient reads 1e-30 (in float32 its square underflows to 0); an exact zero reads 0."""
    import torch

    from tui_lab.core.models import build_model
    from tui_lab.core.probes import Probes

    model = build_model(config("model.depth=2", "model.width=8"), (2,), 3)
    probes = Probes(model)
    xb = probes.start(torch.randn(4, 2))
    out = model(xb)
    (out.sum() * 1e-30).backward()
    model.blocks[0].layer.weight.grad.zero_()
    probes.after_backward(out)
    layers = probes.read().layers
    assert layers[0].grad_norm == 0.0
    assert 1e-32 < layers[1].grad_norm < 1e-28 and 1e-32 < layers[-1].grad_norm < 1e-28


def test_an_exception_ends_the_run_as_failed_with_the_message(tmp_path, monkeypatch):
    import tui_lab.core.trainer as trainer

    def broken(cfg, params):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x2 and 3x64)")

    monkeypatch.setattr(trainer, "make_optimizer", broken)
    result, _ = run("train.steps=5", run_dir=tmp_path / "run")
    assert result.status == "failed" and "shapes cannot be multiplied" in result.message
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "failed" and "shapes" in summary["message"]
    assert (tmp_path / "run" / "config.toml").is_file()


def test_run_directory_shape(tmp_path):
    result, snaps = run(
        "train.steps=25", "model.depth=3", "train.log_every=5", "train.eval_every=10", run_dir=tmp_path / "run"
    )
    d = tmp_path / "run"
    assert result.status == "completed" and result.steps == 25
    assert load_config(d / "config.toml") == config(
        "train.steps=25", "model.depth=3", "train.log_every=5", "train.eval_every=10"
    )
    records, _ = read_metrics(d)
    assert [r["step"] for r in records] == [0, 5, 10, 15, 20, 24]
    for r in records:
        assert {
            "step",
            "epoch",
            "time_s",
            "loss",
            "acc",
            "val_loss",
            "val_acc",
            "lr",
            "samples_per_s",
            "layers",
        } <= set(r)
        assert [layer["name"] for layer in r["layers"]] == ["L1", "L2", "L3", "out"]
        assert {"grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_frac", "sat_frac"} <= set(
            r["layers"][0]
        )
    assert records[0]["val_acc"] is not None and records[1]["val_acc"] is None  # evaluated every 10 steps
    summary = read_summary(d)
    assert summary["status"] == "completed" and summary["steps"] == 25 and summary["final"]["step"] == 24
    assert isinstance(summary["findings"], list) and summary["findings"]


def test_recurrent_runs_record_time_grad_norm(tmp_path):
    _, snaps = run(
        "model.arch=gru",
        "data.name=adding",
        "data.seq_len=15",
        "model.depth=2",
        "model.width=16",
        "train.steps=3",
        run_dir=tmp_path / "run",
    )
    assert len(snaps[0].time_grad_norm) == 15
    records, _ = read_metrics(tmp_path / "run")
    assert len(records[0]["time_grad_norm"]) == 15


def test_control_pause_step_and_stop_from_another_thread():
    control = Control()
    control.pause()
    seen: list[int] = []
    result_box = {}
    thread = threading.Thread(
        target=lambda: result_box.setdefault(
            "r",
            Trainer(
                config("train.steps=100000", "model.depth=2"), control=control, sinks=[lambda s: seen.append(s.step)]
            ).run(),
        )
    )
    thread.start()
    thread.join(0.5)
    assert seen == []  # paused before the first step
    control.step_once()
    control.step_once()
    for _ in range(100):
        if len(seen) >= 2:
            break
        thread.join(0.05)
    assert seen == [0, 1]  # each single step produces a snapshot
    control.resume()
    thread.join(0.3)
    control.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert result_box["r"].status == "stopped" and 2 < result_box["r"].steps < 100000


def test_histogram_on_request():
    control = Control()
    control.histogram_layer = 1
    _, snaps = run("train.steps=1", "model.depth=3", control=control)
    h = snaps[0].histogram
    assert h.layer == "L2" and len(h.edges) == len(h.counts) + 1
    assert sum(h.counts) == 64 * 64  # every weight of the 64x64 layer is counted


def test_a_missing_device_is_a_clear_user_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto").type in ("cpu", "mps")


PRESETS = sorted(bundled_dir().glob("*.toml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_runs_headless_for_a_few_steps(path, tmp_path):
    cfg = with_overrides(load_config(path), ["train.steps=3", "train.log_every=1", "data.samples=200"])
    result = Trainer(cfg, sinks=[RunLog(tmp_path / "run")]).run()
    assert result.status in ("completed", "diverged"), result.message
    assert read_summary(tmp_path / "run")["status"] == result.status
    assert len(read_metrics(tmp_path / "run")[0]) >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_has_no_per_step_host_sync():
    import warnings

    cfg = config(
        "train.steps=300",
        "train.log_every=100",
        "train.eval_every=1000",
        "train.device=cuda",
        "model.depth=8",
        "model.width=128",
        "train.batch_size=128",
    )
    Trainer(with_overrides(cfg, ["train.steps=2"])).run()  # warm up (lazy CUDA init syncs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = Trainer(cfg).run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert result.status == "completed"
    assert len(syncs) < 60, f"{len(syncs)} host syncs in 300 steps: probes must sync only per snapshot"


def test_summary_names_the_preset_and_device(tmp_path):
    cfg = config("train.steps=2")
    Trainer(cfg, sinks=[RunLog(tmp_path / "run")], preset="deep-sigmoid").run()
    summary = read_summary(tmp_path / "run")
    assert summary["preset"] == "deep-sigmoid" and summary["device"] == "cpu"
    assert summary["layers"][-1] == "out"


def test_paused_time_is_not_counted_in_samples_per_second():
    control = Control()
    control.pause()
    snaps: list[Snapshot] = []
    cfg = config("train.steps=40", "train.log_every=20", "model.depth=2", "model.width=8")
    thread = threading.Thread(target=lambda: Trainer(cfg, control=control, sinks=[snaps.append]).run())
    thread.start()
    control.step_once()  # step 0, then 1.5 s paused before the rest runs
    thread.join(1.5)
    control.resume()
    thread.join(30)
    rates = [s.samples_per_s for s in snaps if s.step > 0]
    # 19 steps of 64 samples on a tiny model: far above the ~800/s that counting the pause would give.
    assert rates and min(rates) > 3000, rates


# ---------------------------------------------------------------------------------------------------------
# The optimisers: torch.optim's arithmetic, without importing torch._dynamo (core/optim.py: eager).


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_optimisers_step_exactly_as_torch_optim(name):
    import inspect

    from tui_lab.core.optim import make_optimizer

    cfg = config(f"optim.name={name}", "optim.lr=0.05", "optim.weight_decay=0.01")

    def train(make):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
        )
        opt = make(model.parameters())
        x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
        for step in range(6):
            if step == 3:
                opt.param_groups[0]["lr"] = 0.2  # a change mid-run, as the config panel makes
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()], opt

    ours, opt = train(lambda params: make_optimizer(cfg, params))
    stock = type(opt).__mro__[1]  # the torch.optim class it calls
    assert stock.__module__.startswith("torch.optim")
    accepted = inspect.signature(stock).parameters  # AdamW's defaults hold a flag its constructor sets itself
    theirs, _ = train(lambda params: stock(params, **{k: v for k, v in opt.defaults.items() if k in accepted}))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert not any(p.grad is not None and p.grad.requires_grad for p in opt.param_groups[0]["params"])


def test_a_run_never_imports_the_compiler():
    # torch._dynamo takes 1-3 s to import here: a stock torch.optim optimiser would import it on its first use.
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tui_lab.core.trainer import Trainer\n"
        "from support import config\n"
        "for name in ('sgd', 'adam', 'rmsprop'):\n"
        "    r = Trainer(config('train.steps=3', f'optim.name={name}', 'optim.clip_norm=1.0')).run()\n"
        "    assert r.status == 'completed', r.message\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": f"{tests.parent}{os.pathsep}{tests}"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False"]
