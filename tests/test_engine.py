"""The engine: models and probe points, init schemes, probe numbers against autograd, diagnosis, trainer."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch

from tui_lab.core.config import default_config, load_config, with_overrides
from tui_lab.core.data import build_dataset
from tui_lab.core.diagnosis import diagnose
from tui_lab.core.errors import UserError
from tui_lab.core.models import build_model
from tui_lab.core.probes import Probes
from tui_lab.core.runlog import RunLog, read_metrics, read_summary
from tui_lab.core.trainer import Control, LayerStats, Snapshot, Trainer, resolve_device


def cfg_with(*overrides: str):
    return with_overrides(default_config(), list(overrides))


def run(*overrides: str, run_dir: Path | None = None, control: Control | None = None):
    cfg = cfg_with(*overrides)
    snaps: list[Snapshot] = []
    sinks = [snaps.append] + ([RunLog(run_dir)] if run_dir else [])
    result = Trainer(cfg, control=control, sinks=sinks).run()
    return result, snaps


def ratio_first_last(snap: Snapshot) -> float:
    hidden = [layer for layer in snap.layers if layer.name != "out"]
    return hidden[0].grad_norm / hidden[-1].grad_norm


# ---------------------------------------------------------------------------------------------------------
# Models, data and probe points.

ARCH_CASES = [
    ("mlp", "spiral", (2,), 3),
    ("resmlp", "moons", (2,), 2),
    ("cnn", "digits", (1, 8, 8), 10),
    ("rnn", "adding", (12, 2), 1),
    ("lstm", "copy", (12, 4), 4),
    ("gru", "adding", (12, 2), 1),
]


@pytest.mark.parametrize("arch,data,shape,n_out", ARCH_CASES)
def test_every_architecture_builds_with_named_probe_points(arch, data, shape, n_out):
    cfg = cfg_with(f"model.arch={arch}", f"data.name={data}", "model.depth=3", "model.width=8",
                   "data.seq_len=12", "data.classes=4" if data == "copy" else "data.classes=3")  # fmt: skip
    ds = build_dataset(cfg)
    assert ds.input_shape == shape
    model = build_model(cfg, ds.input_shape, ds.n_outputs)
    out = model(ds.x_train[:5])
    assert out.shape == (5, n_out)
    assert [p.name for p in model.probe_points()] == ["L1", "L2", "L3", "out"]
    if arch in ("rnn", "lstm", "gru"):
        assert all(len(p.weights) == 2 for p in model.probe_points()[:-1])  # input and recurrent weights


def test_data_sets_are_seeded_and_split():
    a = build_dataset(cfg_with("data.name=moons", "seed=3"))
    b = build_dataset(cfg_with("data.name=moons", "seed=3"))
    c = build_dataset(cfg_with("data.name=moons", "seed=4"))
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert len(a.x_val) == pytest.approx(0.2 * 2000, abs=1)
    for name in ("spiral", "circles", "xor", "gaussians"):
        ds = build_dataset(cfg_with(f"data.name={name}", "data.samples=300"))
        assert ds.task == "classify" and ds.x_train.shape[1] == 2 and torch.isfinite(ds.x_train).all()


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    ds = build_dataset(cfg_with("model.arch=lstm", "data.name=adding", "data.seq_len=10", "data.samples=50"))
    x, y = ds.x_train, ds.y_train
    assert torch.allclose((x[:, :, 0] * x[:, :, 1]).sum(1, keepdim=True), y)
    assert (x[:, :, 1].sum(1) == 2).all()


# ---------------------------------------------------------------------------------------------------------
# Initialisation.


def hidden_weight_stds(init: str, width: int = 256, depth: int = 3) -> list[float]:
    torch.manual_seed(0)
    cfg = cfg_with(f"model.init={init}", f"model.width={width}", f"model.depth={depth}")
    model = build_model(cfg, (2,), 3)
    return [p.weights[0].std().item() for p in model.probe_points()[1:-1]]  # square width x width layers


def test_he_normal_std_is_sqrt_2_over_fan_in():
    for std in hidden_weight_stds("he_normal"):
        assert std == pytest.approx(math.sqrt(2 / 256), rel=0.03)


def test_xavier_normal_std_is_sqrt_2_over_fan_in_plus_fan_out():
    for std in hidden_weight_stds("xavier_normal"):
        assert std == pytest.approx(math.sqrt(2 / (256 + 256)), rel=0.03)


def test_plain_normal_uses_init_scale_and_named_schemes_zero_biases():
    torch.manual_seed(0)
    model = build_model(cfg_with("model.init=normal", "model.init_scale=0.5", "model.width=256"), (2,), 3)
    assert model.blocks[1].layer.weight.std().item() == pytest.approx(0.5, rel=0.03)
    assert all((b.layer.bias == 0).all() for b in model.blocks)
    model = build_model(cfg_with("model.init=default"), (2,), 3)
    assert any((b.layer.bias != 0).any() for b in model.blocks)  # PyTorch's own init keeps random biases


def test_orthogonal_init_makes_recurrent_gate_blocks_orthogonal():
    cfg = cfg_with("model.arch=lstm", "data.name=adding", "model.init=orthogonal", "model.width=16", "model.depth=1")
    model = build_model(cfg, (10, 2), 1)
    hh = model.layers[0].weight_hh_l0.detach()
    for block in hh.split(16):
        assert torch.allclose(block @ block.T, torch.eye(16), atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Probes against a direct computation.


def test_probe_numbers_equal_a_direct_autograd_computation():
    torch.manual_seed(0)
    cfg = cfg_with("model.depth=3", "model.width=16", "model.activation=tanh")
    model = build_model(cfg, (2,), 3)
    probes = Probes(model)
    x, y = torch.randn(32, 2), torch.randint(0, 3, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    xb = probes.start(x)
    logits = model(xb)
    torch.nn.functional.cross_entropy(logits, y).backward()
    expected_grad = [p.weights[0].grad.norm().item() for p in model.probe_points()]
    before = [p.weights[0].detach().clone() for p in model.probe_points()]
    probes.after_backward(logits)
    opt.step()
    probes.after_step()
    layers, tgn, _ = probes.read()

    # The same activations recomputed by hand from the pre-step weights.
    h, acts = x, []
    for i, block in enumerate(model.blocks):
        h = torch.tanh(torch.nn.functional.linear(h, before[i], block.layer.bias + 0.1 * block.layer.bias.grad))
        acts.append(h)
    assert tgn is None
    for i, layer in enumerate(layers):
        w_after = model.probe_points()[i].weights[0].detach()
        assert layer["grad_norm"] == pytest.approx(expected_grad[i], rel=1e-5)
        assert layer["weight_norm"] == pytest.approx(before[i].norm().item(), rel=1e-5)
        assert layer["update_ratio"] == pytest.approx(((w_after - before[i]).norm() / before[i].norm()).item(), rel=1e-4)
        # For plain SGD, ||dW|| = lr * ||grad||.
        assert layer["update_ratio"] == pytest.approx(0.1 * expected_grad[i] / before[i].norm().item(), rel=1e-4)
        if i < 3:
            assert layer["act_mean"] == pytest.approx(acts[i].mean().item(), abs=1e-5)
            assert layer["act_std"] == pytest.approx(acts[i].std().item(), rel=1e-4)


def test_recurrent_time_grad_norm_is_the_input_gradient_per_step():
    torch.manual_seed(0)
    cfg = cfg_with("model.arch=rnn", "data.name=adding", "model.depth=1", "model.width=8", "data.seq_len=6")
    model = build_model(cfg, (6, 2), 1)
    probes = Probes(model)
    x, y = torch.rand(4, 6, 2), torch.rand(4, 1)
    xb = probes.start(x)
    out = model(xb)
    torch.nn.functional.mse_loss(out, y).backward()
    expected = xb.grad.norm(dim=(0, 2)).tolist()
    probes.after_backward(out)
    probes.after_step()
    _, tgn, _ = probes.read()
    assert tgn == pytest.approx(expected, rel=1e-5)

    # The same number from a fresh autograd pass on a copy of the input.
    x2 = x.clone().requires_grad_(True)
    torch.nn.functional.mse_loss(model(x2), y).backward()
    assert x2.grad[:, 0].norm().item() == pytest.approx(expected[0], rel=1e-5)


def probe_once(model, x):
    probes = Probes(model)
    xb = probes.start(x)
    out = model(xb)
    out.sum().backward()
    probes.after_backward(out)
    probes.after_step()
    return probes.read()[0]


def test_dead_fraction_on_a_hand_made_layer():
    cfg = cfg_with("model.depth=1", "model.width=4", "model.activation=relu")
    model = build_model(cfg, (2,), 2)
    with torch.no_grad():
        layer = model.blocks[0].layer
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([-1.0, -1.0, -1.0, 1.0]))  # three units never fire
    layers = probe_once(model, torch.randn(16, 2))
    assert layers[0]["dead_frac"] == pytest.approx(0.75)
    assert layers[0]["sat_frac"] == 0.0


def test_leaky_relu_units_are_never_counted_dead():
    cfg = cfg_with("model.depth=1", "model.width=4", "model.activation=leaky_relu")
    model = build_model(cfg, (2,), 2)
    with torch.no_grad():
        model.blocks[0].layer.weight.zero_()
        model.blocks[0].layer.bias.fill_(-1.0)
    assert probe_once(model, torch.randn(16, 2))[0]["dead_frac"] == 0.0


@pytest.mark.parametrize("activation,bias,expected", [("sigmoid", 10.0, 1.0), ("sigmoid", 0.0, 0.0),
                                                       ("tanh", -5.0, 1.0), ("tanh", 0.0, 0.0)])  # fmt: skip
def test_saturated_fraction_on_hand_made_layers(activation, bias, expected):
    cfg = cfg_with("model.depth=1", "model.width=4", f"model.activation={activation}")
    model = build_model(cfg, (2,), 2)
    with torch.no_grad():
        model.blocks[0].layer.weight.zero_()
        model.blocks[0].layer.bias.fill_(bias)
    assert probe_once(model, torch.randn(16, 2))[0]["sat_frac"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------------------
# Diagnosis on synthetic snapshots.


def synthetic(grads, dead=0.0, sat=0.0, loss=1.0, tgn=None, step=5, update=1e-3):
    layers = [LayerStats(f"L{i + 1}", grad_norm=g, weight_norm=1.0, update_ratio=update, act_std=1.0,
                         dead_frac=dead, sat_frac=sat) for i, g in enumerate(grads)]  # fmt: skip
    layers.append(LayerStats("out", grad_norm=1.0, weight_norm=1.0, update_ratio=update))
    return Snapshot(step=step, total_steps=10, epoch=0, time_s=0, loss=loss, layers=layers, time_grad_norm=tgn)


def kinds(snap, cfg=None, history=()):
    return {f.kind: f for f in diagnose(snap, history, cfg)}


def test_diagnosis_names_vanishing_with_the_ratio_and_a_remedy():
    found = kinds(synthetic([1e-9, 1e-6, 1e-3, 1.0]), cfg_with("model.activation=sigmoid"))
    f = found["vanishing"]
    assert f.severity == "error" and f.layers == ["L1", "L4"] and f.value == pytest.approx(1e-9)
    assert "L1 gets 1e-9 of L4" in f.message and "relu" in f.remedy and "batch" in f.remedy


def test_diagnosis_exploding_dead_saturated_updates_nonfinite_and_time():
    assert "exploding" in kinds(synthetic([1e5, 1e3, 10, 1.0]))
    assert kinds(synthetic([1, 1, 1, 1], dead=0.95))["dead"].severity == "error"
    assert "leaky" in kinds(synthetic([1, 1, 1, 1], dead=0.95))["dead"].remedy
    assert "saturated" in kinds(synthetic([1, 1, 1, 1], sat=0.8), cfg_with("model.activation=sigmoid"))
    assert "update_ratio" in kinds(synthetic([1, 1, 1, 1], update=1e-7))
    assert "update_ratio" in kinds(synthetic([1, 1, 1, 1], update=0.5))
    nonfinite = Snapshot(step=3, total_steps=10, epoch=0, time_s=0, loss=None, nonfinite=True)
    assert list(kinds(nonfinite)) == ["nonfinite"]
    time_cfg = cfg_with("model.arch=rnn", "data.name=adding")
    assert "lstm" in kinds(synthetic([1, 1], tgn=[1e-8, 1e-4, 1.0]), time_cfg)["vanishing_time"].remedy
    assert list(kinds(synthetic([1, 1, 1, 1]))) == ["healthy"]


def test_diagnosis_sees_a_jump_in_the_total_gradient_norm():
    history = [synthetic([1, 1, 1, 1]) for _ in range(10)]
    assert "exploding" in kinds(synthetic([300, 300, 300, 300]), history=history)
    assert "exploding" not in kinds(synthetic([2, 2, 2, 2]), history=history)


# ---------------------------------------------------------------------------------------------------------
# The trainer: the lessons' headline numbers, determinism, divergence, control, the run directory.


def test_deep_sigmoid_vanishes_while_relu_he_and_tanh_xavier_stay_level():
    _, sig = run("train.steps=1", "model.depth=10", "model.activation=sigmoid", "model.init=default")
    assert 1e-10 < ratio_first_last(sig[0]) < 1e-6  # about 1e-8
    assert "vanishing" in {f.kind for f in sig[0].findings}
    for act, init in (("relu", "he_normal"), ("tanh", "xavier_normal")):
        _, snaps = run("train.steps=1", "model.depth=20", f"model.activation={act}", f"model.init={init}")
        assert 0.1 < ratio_first_last(snaps[0]) < 10, (act, init)


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
    strip = lambda snaps: [(s.step, s.loss, [layer.grad_norm for layer in s.layers]) for s in snaps]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_a_non_finite_loss_ends_the_run_as_diverged_with_strict_json(tmp_path):
    result, snaps = run("train.steps=200", "model.activation=relu", "model.init=normal", "model.init_scale=3",
                        "optim.lr=50", run_dir=tmp_path / "run")  # fmt: skip
    assert result.status == "diverged"
    assert snaps[-1].nonfinite and snaps[-1].findings[0].kind == "nonfinite"
    text = (tmp_path / "run" / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert summary["status"] == "diverged" and summary["diverged_at"] is not None
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


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
    result, snaps = run("train.steps=25", "model.depth=3", "train.log_every=5", "train.eval_every=10",
                        run_dir=tmp_path / "run")  # fmt: skip
    d = tmp_path / "run"
    assert result.status == "completed" and result.steps == 25
    assert load_config(d / "config.toml") == cfg_with("train.steps=25", "model.depth=3", "train.log_every=5",
                                                      "train.eval_every=10")  # fmt: skip
    records, _ = read_metrics(d)
    assert [r["step"] for r in records] == [0, 5, 10, 15, 20, 24]
    for r in records:
        assert {"step", "epoch", "time_s", "loss", "acc", "val_loss", "val_acc", "lr", "samples_per_s", "layers"} <= set(r)
        assert [layer["name"] for layer in r["layers"]] == ["L1", "L2", "L3", "out"]
        assert {"grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_frac", "sat_frac"} <= set(r["layers"][0])
    assert records[0]["val_acc"] is not None and records[1]["val_acc"] is None  # evaluated every 10 steps
    summary = read_summary(d)
    assert summary["status"] == "completed" and summary["steps"] == 25 and summary["final"]["step"] == 24
    assert isinstance(summary["findings"], list) and summary["findings"]


def test_recurrent_runs_record_time_grad_norm(tmp_path):
    _, snaps = run("model.arch=gru", "data.name=adding", "data.seq_len=15", "model.depth=2", "model.width=16",
                   "train.steps=3", run_dir=tmp_path / "run")  # fmt: skip
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
            "r", Trainer(cfg_with("train.steps=100000", "model.depth=2"), control=control, sinks=[lambda s: seen.append(s.step)]).run()
        )
    )  # fmt: skip
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


PRESETS = sorted(Path(__file__).resolve().parent.parent.joinpath("presets").glob("*.toml"))


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

    cfg = cfg_with("train.steps=300", "train.log_every=100", "train.eval_every=1000", "train.device=cuda",
                   "model.depth=8", "model.width=128", "train.batch_size=128")  # fmt: skip
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
    cfg = cfg_with("train.steps=2")
    Trainer(cfg, sinks=[RunLog(tmp_path / "run")], preset="deep-sigmoid").run()
    summary = read_summary(tmp_path / "run")
    assert summary["preset"] == "deep-sigmoid" and summary["device"] == "cpu"
    assert summary["layers"][-1] == "out"


def test_paused_time_is_not_counted_in_samples_per_second():
    control = Control()
    control.pause()
    snaps: list[Snapshot] = []
    cfg = cfg_with("train.steps=40", "train.log_every=20", "model.depth=2", "model.width=8")
    thread = threading.Thread(target=lambda: Trainer(cfg, control=control, sinks=[snaps.append]).run())
    thread.start()
    control.step_once()  # step 0, then 1.5 s paused before the rest runs
    thread.join(1.5)
    control.resume()
    thread.join(30)
    rates = [s.samples_per_s for s in snaps if s.step > 0]
    # 19 steps of 64 samples on a tiny model: far above the ~800/s that counting the pause would give.
    assert rates and min(rates) > 3000, rates
