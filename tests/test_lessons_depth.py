"""The lessons about depth, proven with their own numbers on the presets as shipped (CPU): deep-sigmoid,
relu-he, batchnorm-rescue, xavier-tanh, small-random-init, he-vs-xavier-deep, residual-deep, cnn-digits and
optimizers. Each assertion keeps a margin from the value measured on the shipped seed, given in a trailing
comment (with the spread over other seeds where it was checked)."""

from __future__ import annotations

import math
import statistics

import pytest

from tui_lab.core.config import with_overrides
from tui_lab.core.diagnosis import alarms

from lessons import LN3, depth_ratio, differences, init_forward, per_layer, preset, run, slow, trained


def _eval_at(r, step: int):
    return next(s for s in r.evals if s.step == step)


def _snap_at(r, step: int):
    return next(s for s in r.snaps if s.step == step and s.layers)


# -- deep-sigmoid ----------------------------------------------------------------------------------------


@slow
def test_deep_sigmoid_lesson_numbers():
    r = run("deep-sigmoid")
    ratio = depth_ratio(r.first)
    assert 3e-9 < ratio < 3e-8  # "L1 gets about 1e-8 of what L10 gets" (measured 7e-9; seeds 1, 2: 5e-9, 8e-9)
    assert round(-math.log10(ratio)) == 8  # "eight orders of magnitude less" (measured 8.2)
    # "keeps the lines that far apart for the whole run" (measured 3e-9 .. 9e-8 over the 101 snapshots)
    assert all(1e-10 < depth_ratio(s) < 1e-6 for s in r.snaps if s.layers)
    assert abs(r.final_val_loss - LN3) < 0.05  # "loss sits near ln 3 = 1.10" (measured 1.11)
    assert abs(r.last.loss - LN3) < 0.05  # measured 1.106
    assert all(s.val_acc < 0.45 for s in r.evals)  # "accuracy near chance (1/3)" (measured 0.27 .. 0.38)
    for snap in (r.first, r.last):  # "the findings panel reports vanishing gradients and names the remedy"
        vanishing = [f for f in snap.findings if f.kind == "vanishing"]
        assert vanishing and alarms(vanishing[0])
        assert "relu-he" in vanishing[0].remedy and "batchnorm-rescue" in vanishing[0].remedy


@slow
def test_deep_sigmoid_lesson_arithmetic():
    r = run("deep-sigmoid")
    assert 0.5e-6 < 0.25**10 < 2e-6  # "0.25^10 ~ 1e-6" (9.5e-7)
    hidden = r.first.layers[1:-1]  # L2 .. L10: 64 x 64
    for layer in hidden:  # "PyTorch's default weights (about 0.6 per layer here)": sqrt(64) * std(w)
        assert 0.5 < layer.weight_norm / math.sqrt(64) < 0.7  # measured 0.57 (U(+-1/sqrt(64)): 1/sqrt(3))
    assert 3e-9 < (0.25 * 0.6) ** 10 < 3e-8  # "push it down to ~1e-8" (5.8e-9)
    # What the backward pass does per layer: sigmoid' (~0.245 here) times the weights' 0.58.
    back = per_layer([layer.act_grad_norm for layer in r.first.layers[:-1]])
    assert 0.1 < back < 0.2  # measured 0.14
    # "The first layers barely move": the step changes L1 and L2 by less than 1e-8 of their size.
    assert all(max(s.layers[0].update_ratio, s.layers[1].update_ratio) < 1e-8 for s in r.snaps if s.layers)
    # measured: L1 0 (below float32's resolution), L2 <= 4e-11


# -- relu-he ---------------------------------------------------------------------------------------------


@slow
def test_relu_he_lesson_numbers():
    r = run("relu-he")
    plain = run("deep-sigmoid")
    # "L1 gets about as much gradient as L10, within about a factor of ten, instead of 1e-8"
    assert all(0.05 < depth_ratio(s) < 20 for s in r.snaps if s.layers)  # measured 0.12 .. 0.86
    assert depth_ratio(r.first) > 1e5 * depth_ratio(plain.first)  # 0.12 against 7e-9
    for snap in (r.first, r.last):  # "L1 is the shortest"
        assert snap.layers[0].grad_norm == min(layer.grad_norm for layer in snap.layers)
    # "... because its input is the raw point, two numbers in [-1, 1]": the signal reaching L1 is not small.
    assert r.first.layers[0].act_grad_norm > 0.5 * r.first.layers[-2].act_grad_norm  # measured 0.099 vs 0.11
    # "Loss falls far below ln 3 = 1.10"
    assert r.last.loss < 0.01 * LN3  # measured 1e-4
    assert r.final_val_loss < 0.1 * LN3  # measured 0.002 (seed 1: 0.064)
    # "validation accuracy reaches about 100% within a few hundred steps"
    assert min(s.step for s in r.evals if s.val_acc >= 0.98) <= 300  # measured step 150
    assert r.final_val_acc >= 0.98  # measured 0.998
    # "Some units of the deeper layers are dead from the start (up to about a third of a layer ...)"
    dead0 = [layer.dead_frac for layer in r.first.layers[:-1]]
    assert 0.2 < max(dead0) < 0.5  # measured 0.36 (seeds 0..9: 0.22 .. 0.44)
    assert max(dead0[5:]) > max(dead0[:3])  # deeper layers: 0.36 against 0.08
    # "... and that fraction shrinks as it trains"
    dead1 = [layer.dead_frac for layer in r.last.layers[:-1]]
    assert max(dead1) < max(dead0) - 0.05  # measured 0.20 against 0.36
    assert sum(dead1) < 0.8 * sum(dead0)  # mean 0.09 against 0.17
    # "The findings panel has no vanishing warning."
    assert not any(f.kind == "vanishing" for s in r.snaps for f in s.findings)


def test_relu_he_lesson_why():
    import torch

    from tui_lab.core.data import build_dataset

    data = build_dataset(preset("relu-he"))
    assert float(data.x_train.abs().max()) <= 1.0  # the raw point: two numbers in [-1, 1]
    layers = init_forward("relu-he")
    for _, h in layers:  # "ReLU zeroes about half of the units"
        assert 0.4 < float((h == 0).float().mean()) < 0.6  # measured 0.45 .. 0.54
    first = run("relu-he", "train.steps=1").first
    for layer in first.layers[1:-1]:  # "He init draws weights with variance 2/fan_in"
        assert abs(layer.weight_norm / 64 / math.sqrt(2 / 64) - 1) < 0.1  # measured std 0.172 against 0.177
    # "Var(z) and the gradient keep their size from layer to layer"
    stds = [layer.act_std for layer in first.layers[:-1]]
    grads = [layer.act_grad_norm for layer in first.layers[:-1]]
    assert max(stds) / min(stds) < 3  # measured 1.4
    assert max(grads) / min(grads) < 2  # measured 1.3
    assert torch.relu(torch.tensor(1.0)).item() == 1.0  # relu'(z) = 1 for a positive input: the identity there


# -- batchnorm-rescue ------------------------------------------------------------------------------------


@slow
def test_batchnorm_rescue_lesson_numbers():
    bn = run("batchnorm-rescue")
    plain = run("deep-sigmoid")
    # "L1 now gets a usable share of the gradient instead of 1e-8", far more level than deep-sigmoid
    assert depth_ratio(bn.first) > 0.1  # measured 1.06
    assert all(depth_ratio(s) > 1e-2 for s in bn.snaps if s.layers)  # measured >= 0.19
    assert depth_ratio(bn.first) > 1e6 * depth_ratio(plain.first)
    assert bn.last.loss < 0.5 * LN3  # "Loss falls" (measured 0.16)
    # "validation accuracy climbs past 90% within a few hundred steps"
    past90 = min(s.step for s in bn.evals if s.val_acc >= 0.9)
    assert past90 <= 500  # measured 400 (seeds 1, 2: 450)
    assert bn.best_val_acc >= 0.97  # "and peaks near 99%" (measured 0.993; seeds 1, 2: 0.995, 0.998)
    assert plain.best_val_acc < 0.45  # "where deep-sigmoid stays at chance" (measured 0.38)
    # "The validation curve is jumpy ... one evaluation can drop far below the peak"
    later = [s.val_acc for s in bn.evals if s.step > past90]
    assert min(later) < bn.best_val_acc - 0.2  # measured 0.385 at step 550 (seeds 1, 2: 0.78, 0.62)
    assert bn.final_val_acc < bn.best_val_acc - 0.03  # "the last one included": seed 0, measured 0.915 vs 0.993
    # "The saturated fraction stays at about 0%" (the panel shows 0% below 0.5%)
    assert max(layer.sat_frac for s in bn.snaps for layer in s.layers[:-1]) < 0.005  # measured 0.0
    # "The per-layer factor no longer compounds toward zero": the signal d loss / d h even grows toward L1.
    assert per_layer([layer.act_grad_norm for layer in bn.first.layers[:-1]]) > 1  # measured 1.5, sigmoid 0.14


def test_batchnorm_rescue_lesson_why():
    layers = init_forward("batchnorm-rescue")
    for _, h in layers:  # "sigmoid'(z) about 0.2 on average"
        assert 0.18 < float((h * (1 - h)).mean()) < 0.23  # measured 0.204 .. 0.206 (N(0, 1) inputs: 0.207)
    for z, _ in layers[1:]:  # "The default weights make that std small (about 0.1 at the start)"
        std = float(z.std(0).mean())
        assert 0.07 < std < 0.15  # measured 0.106 .. 0.124 (L1, fed the raw points: 0.23)
        assert 7 < 1 / std < 14  # "so each layer gains about 10x"
    assert 10 * 0.2 * 0.6 >= 1  # "enough to make up for the 0.2 x 0.6"


# -- xavier-tanh -----------------------------------------------------------------------------------------


@slow
def test_xavier_tanh_lesson_numbers():
    r = run("xavier-tanh")
    for s in r.snaps:  # "The gradient-flow bars stay within about a decade of each other"
        if s.layers:
            grads = [layer.grad_norm for layer in s.layers]
            assert max(grads) / min(grads) < 20  # measured at most 9.8 over the run
    assert all(0.1 < depth_ratio(s) < 10 for s in r.snaps if s.layers)  # "move together" (0.14 .. 2.3)
    assert r.last.loss < 0.01 * LN3  # "Loss falls far below ln 3 = 1.10" (measured 0.0014)
    assert r.final_val_loss < 0.05 * LN3  # measured 0.002
    assert r.final_val_acc >= 0.98  # "validation accuracy reaches about 100%" (measured 1.0)
    assert r.evals[0].val_acc < 0.5  # "(chance is 1/3)": where it starts (measured 0.44)
    # "the saturated fraction: it stays low"
    assert max(layer.sat_frac for s in r.snaps for layer in s.layers[:-1]) < 0.1  # measured 0.019


@slow
def test_xavier_tanh_lesson_why_and_next():
    import torch

    z = torch.zeros(1, requires_grad=True)
    torch.tanh(z).backward()
    assert z.grad.item() == 1.0  # "tanh'(0) = 1"
    z = torch.zeros(1, requires_grad=True)
    torch.sigmoid(z).backward()
    assert z.grad.item() == 0.25  # "sigmoid'(0) is only 0.25"
    first = run("xavier-tanh").first
    # "Var(w) = 2/(fan_in + fan_out)": 2/128 for L2 .. L10, 2/66 for L1 (2 inputs, 64 units)
    for layer in first.layers[1:-1]:
        assert abs(layer.weight_norm / 64 / math.sqrt(2 / 128) - 1) < 0.1  # measured 0.125
    assert abs(first.layers[0].weight_norm / math.sqrt(128) / math.sqrt(2 / 66) - 1) < 0.15  # measured 1.9
    # "keeps Var(z) about the same in the forward pass and the gradient's variance about the same backward"
    stds = [layer.act_std for layer in first.layers[:-1]]
    grads = [layer.act_grad_norm for layer in first.layers[:-1]]
    assert max(stds) / min(stds) < 3  # measured 1.3
    assert max(grads) / min(grads) < 2  # measured 1.2
    # "set init = normal with init_scale = 0.01 and press n: ... (preset small-random-init)"
    small = with_overrides(preset("xavier-tanh"), ["model.init=normal", "model.init_scale=0.01"])
    assert not differences(small, preset("small-random-init"))
    # "Try init_scale = 1.0: tanh saturates and the saturated fraction jumps."
    big = run("xavier-tanh", "train.steps=10", "model.init=normal", "model.init_scale=1.0")
    assert max(layer.sat_frac for layer in big.first.layers[:-1]) > 0.5  # measured 0.75 (0 with Xavier)


# -- small-random-init -----------------------------------------------------------------------------------


@slow
def test_small_random_init_lesson_numbers():
    r = run("small-random-init")
    first = r.first.layers
    grads = [layer.grad_norm for layer in first]
    # "At the start every gradient-flow bar is tiny, around 1e-12, even though they are roughly level"
    assert all(3e-13 < g < 1e-11 for g in grads)  # measured 1.8e-12 .. 2.5e-12
    assert max(grads) / min(grads) < 3  # measured 1.4
    # "act_std drops by about 10x per layer, so the last layers output almost exactly zero"
    drop = per_layer([layer.act_std for layer in first[:-1]])
    assert 6 < drop < 20  # measured 12.4 (1/0.08 = 12.5)
    assert first[-2].act_std < 1e-9  # L10 measured 8e-13
    # "Within a few dozen steps the last bars (L9, L10, out) grow, out's to about 1e-4, and so does their
    # act_std"
    later = [s for s in r.snaps if s.layers and s.step >= 50]
    out = sorted(s.layers[-1].grad_norm for s in later)[len(later) // 2]
    assert 2e-5 < out < 2e-3  # median measured 3.3e-4 (seeds 1, 2: 1.7e-4, 1.4e-4)
    assert min(s.layers[-1].grad_norm for s in later) > 1e-6  # measured 5.5e-5
    assert sorted(s.layers[-2].grad_norm for s in later)[len(later) // 2] > 1e-8  # L10, measured 2e-6
    assert sorted(s.layers[-3].grad_norm for s in later)[len(later) // 2] > 1e-10  # L9, measured 1.5e-8
    assert sorted(s.layers[-2].act_std for s in later)[len(later) // 2] > 1e-6  # L10's act_std: 5e-4, from 8e-13
    # "L1 to L7 stay near 1e-12"
    assert max(layer.grad_norm for s in r.snaps if s.layers for layer in s.layers[:7]) < 1e-11  # measured 3.7e-12
    # "Loss stays flat at ln 3 = 1.10 and accuracy at chance (1/3)"
    assert all(abs(s.val_loss - LN3) < 0.05 for s in r.evals)  # measured 1.099 .. 1.106
    assert abs(r.last.loss - LN3) < 0.05  # measured 1.10
    assert all(s.val_acc < 0.45 for s in r.evals)  # measured 0.27 .. 0.44 (0.44 at step 0)


@slow
def test_small_random_init_lesson_arithmetic_and_next():
    r = run("small-random-init")
    assert math.isclose(0.01 * math.sqrt(64), 0.08)  # "0.01 * sqrt(64) = 0.08"
    assert 0.5e-11 < 0.08**10 < 2e-11  # "0.08^10 ~ 1e-11" (1.07e-11)
    layers = r.first.layers
    # "Forward, ten layers shrink it by 0.08^10; backward, the gradient shrinks the same way"
    assert 0.06 < per_layer([layer.act_grad_norm for layer in layers]) < 0.1  # measured 0.08 per layer
    assert 3e-12 < layers[0].act_grad_norm / layers[-1].act_grad_norm < 3e-11  # L1 / out: 1.1e-11
    assert 3e-11 < layers[-2].act_std / layers[0].act_std < 1e-9  # L10 / L1: 1.5e-10 (0.08^9 = 1.3e-10)
    # "set init = xavier_normal and press n: ... the net learns (preset xavier-tanh)"
    xavier = with_overrides(preset("small-random-init"), ["model.init=xavier_normal"])
    assert not differences(xavier, preset("xavier-tanh"))
    fixed = run("xavier-tanh")
    assert fixed.final_val_acc > 0.95 and fixed.final_val_loss < 0.1 * r.final_val_loss  # 1.0, 0.002 vs 1.10


# -- he-vs-xavier-deep ------------------------------------------------------------------------------------


@slow
def test_he_vs_xavier_deep_xavier_stalls_with_a_fading_signal():
    xavier = run("he-vs-xavier-deep")
    assert preset("he-vs-xavier-deep").model.init == "xavier_normal"
    # Loss stays near ln 3 and accuracy stays low.
    assert min(s.val_loss for s in xavier.evals) > LN3 - 0.05  # measured min 1.0986 (seeds 0-7: >= 1.075)
    assert xavier.best_val_acc < 0.5  # measured best 0.35, final 0.27 (seeds 0-7: final 0.27-0.54)
    # First snapshot: bars level but all short, between 1e-6 and 1e-5.
    grads = [layer.grad_norm for layer in xavier.first.layers]
    assert min(grads) > 3e-7 and max(grads) < 3e-5  # measured 1.1e-6 .. 6.3e-6 (seeds 0-7: 9e-7 .. 1.2e-5)
    assert max(grads) / min(grads) < 20  # measured 5.6
    assert 0.3 < depth_ratio(xavier.first) < 5  # measured 1.4 (level)
    # act_std: about 0.07 at L1, about 1e-6 at L30, some 3e-5 of L1's.
    layers = xavier.first.layers
    l1, l30 = layers[0], layers[-2]
    assert l30.name == "L30"
    assert 0.03 < l1.act_std < 0.15  # measured 0.060 (seeds 0-7: 0.060-0.069)
    assert 3e-7 < l30.act_std < 3e-6  # measured 7.5e-7 (seeds 0-7: 7.5e-7 .. 3.9e-6)
    assert 4e-6 < l30.act_std / l1.act_std < 1e-4  # measured 1.2e-5 (seeds 0-7: 1.2e-5 .. 6e-5)
    # Why: (1/2)^(30/2) ~ 3e-5, and the backward pass loses the same factor.
    assert math.isclose(0.5 ** (30 / 2), 3e-5, rel_tol=0.05)  # 3.05e-5
    assert 1e-5 < l1.act_grad_norm / l30.act_grad_norm < 1e-4  # measured 3.2e-5 (seed 2: 7e-5)
    # During the run the out bar grows; the input-side bars stay short (here they even sink).
    out_first, out_last = xavier.first.layers[-1].grad_norm, xavier.last.layers[-1].grad_norm
    assert out_last > 30 * out_first  # measured 1.1e-6 -> 1.7e-4 (x150)
    assert xavier.last.layers[0].grad_norm < xavier.first.layers[0].grad_norm / 30  # 2.1e-6 -> 5.1e-9
    assert max(layer.grad_norm for layer in xavier.last.layers[:20]) < 1e-6  # measured 8e-9


@slow
def test_he_vs_xavier_deep_dead_units_are_the_same_at_init_and_xavier_kills_the_last_layers():
    xavier = run("he-vs-xavier-deep")
    he = run("he-vs-xavier-deep", "model.init=he_normal")
    dead = [layer.dead_frac for layer in xavier.first.layers[:-1]]
    deep, shallow = statistics.mean(dead[15:]), statistics.mean(dead[:15])
    assert 0.25 < deep < 0.6  # a third to a half: measured 0.34 for L16-L30 (seeds 0-7: 0.34-0.44)
    assert deep > shallow  # grows with depth: measured 0.24 for L1-L15
    # He starts with exactly the same dead units: a ReLU's on/off pattern ignores the weights' scale.
    assert [layer.dead_frac for layer in he.first.layers[:-1]] == dead
    # Xavier: 70% or more of the last layers' units die during the run.
    last_three = max(layer.dead_frac for s in xavier.snaps if s.layers for layer in s.layers[27:30])
    assert last_three >= 0.7  # measured 0.95 (L30; seeds 0-7: 0.73-0.98)
    # He: the dead fraction falls as the net learns.
    he_deep_end = statistics.mean(layer.dead_frac for layer in he.last.layers[15:30])
    assert he_deep_end < 0.8 * deep  # measured 0.18 vs 0.34 at init (seeds 0-2: 0.18-0.23)


@slow
def test_he_vs_xavier_deep_bias_steps_outweigh_the_last_layers_signal():
    xavier = run("he-vs-xavier-deep")
    _, _, model = trained("he-vs-xavier-deep", "train.steps=10")
    signal = xavier.first.layers[-2].act_std  # L30's spread at init: measured 7.5e-7
    bias = model.blocks[-1].layer.bias.abs().mean().item()  # L30's bias after 10 SGD steps
    assert 3e-5 < bias < 5e-4  # about 1e-4: measured 1.3e-4 (1.1e-4 after one step)
    assert bias > 30 * signal  # measured x170


@slow
def test_he_vs_xavier_deep_he_trains():
    he = run("he-vs-xavier-deep", "model.init=he_normal")
    assert he.final_val_loss < 0.1  # close to 0: measured 8e-4 (seeds 0-2: up to 0.06)
    assert he.final_val_acc > 0.97  # about 100%: measured 1.0 (seeds 0-2: >= 0.995)
    assert he.final_val_loss < run("he-vs-xavier-deep").final_val_loss / 10  # clearly below the baseline


# -- residual-deep ----------------------------------------------------------------------------------------


@slow
def test_residual_deep_trains_with_level_bars_and_no_alarm():
    res = run("residual-deep")
    assert res.first.layers[-2].name == "L30"
    assert 0.5 < depth_ratio(res.first) < 5  # about 1.6: measured 1.6 (seeds 0-2: 1.4-1.9)
    assert res.final_val_acc > 0.97  # passes 99%: measured 0.998 (seeds 0-2: >= 0.995)
    assert res.final_val_loss < 0.1  # loss falls: measured 0.0085
    # The findings panel reports healthy gradients from the first snapshot to the last, and nothing alarms.
    for snap in (res.first, res.last):
        assert any(f.kind == "healthy" for f in snap.findings), snap.findings
    assert not [f for s in res.snaps for f in s.findings if alarms(f)]  # measured: only 'healthy' notes


@slow
def test_residual_deep_without_skips_vanishes_like_0_6_to_the_29():
    plain = run("residual-deep", "model.arch=mlp")
    assert math.isclose(0.6**29, 4e-7, rel_tol=0.1)  # 3.7e-7
    ratio = depth_ratio(plain.first)
    assert 5e-8 < ratio < 1e-6  # measured 1.9e-7 (seeds 0-2: 1.9e-7 .. 2.7e-7)
    assert 0.5 < ratio ** (1 / 29) < 0.7  # about 0.6 per layer: measured 0.59
    hidden = [layer.grad_norm for layer in plain.first.layers[:-1]]
    assert 6 < math.log10(max(hidden) / min(hidden)) < 8  # about seven orders: measured 6.7
    assert plain.first.layers[0].grad_norm < 3e-8  # ~1e-8 at L1: measured 6.9e-9 (seeds 0-2: 3e-9 .. 7.5e-9)
    assert 1e-2 < plain.first.layers[-2].grad_norm < 1e-1  # a few 1e-2 at L30: measured 3.6e-2
    assert min(s.val_loss for s in plain.evals) > LN3 - 0.05  # never leaves ln 3: measured min 1.097


@slow
def test_residual_deep_relu_with_he_trains_and_overflows_without_the_branch_scale():
    relu = run("residual-deep", "model.activation=relu", "model.init=he_normal")  # the preset's lr, 0.2
    assert relu.status == "completed" and relu.final_val_acc > 0.9  # measured 0.998 (seeds 0-2: >= 0.97)
    assert preset("residual-deep").model.depth == 30  # the scale is 1/sqrt(29)
    result, _, model = trained(
        "residual-deep", "train.steps=100", "model.activation=relu", "model.init=he_normal", branch_scale=1.0
    )
    assert model.branch_scale == 1.0
    assert result.status == "diverged" and result.steps <= 3  # NaN at step 1: a forward output overflows
    _, _, scaled = trained("residual-deep", "train.steps=1")
    assert math.isclose(scaled.branch_scale, 1 / math.sqrt(29))


# -- cnn-digits -------------------------------------------------------------------------------------------


def test_cnn_digits_data_and_he_fan_in():
    import torch

    from tui_lab.core.data import build_dataset
    from tui_lab.core.models import build_model

    cfg = preset("cnn-digits")
    data = build_dataset(cfg)
    assert len(data.x_train) + len(data.x_val) == 1797 and data.n_outputs == 10  # chance is 10%
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape, data.n_outputs)
    conv = model.blocks[1].layer.weight  # 16 -> 16 channels, 3x3: fan_in = 16 * 3 * 3
    assert math.isclose(conv.std().item(), math.sqrt(2 / (16 * 3 * 3)), rel_tol=0.1)


@slow
def test_cnn_digits_learns_with_level_bars_and_no_dead_channels():
    r = run("cnn-digits")
    for snap in (r.first, r.last):
        grads = [layer.grad_norm for layer in snap.layers]
        assert max(grads) / min(grads) < 30  # within about a decade: measured 14 at start, 8.5 at the end
    assert max(s.val_acc for s in r.evals if s.step <= 200) > 0.93  # passes 95%: 0.958 at step 100
    assert r.final_val_acc > 0.94  # around 97%: measured 0.975 (seeds 0-2: 0.958-0.989)
    assert r.max_dead() < 0.05  # near 0: measured 0.0


@slow
def test_cnn_digits_sigmoid_fans_out_and_batchnorm_brings_it_back():
    relu = run("cnn-digits")
    sig = run("cnn-digits", "model.activation=sigmoid", "model.init=default")
    bn = run("cnn-digits", "model.activation=sigmoid", "model.init=default", "model.norm=batch_pre")
    layers = sig.first.layers
    assert 3e-5 < layers[0].grad_norm / layers[-1].grad_norm < 3e-4  # about 1e-4: measured 9.8e-5
    assert sig.best_val_acc < 0.2 and sig.final_val_acc < 0.15  # near 10%: measured 0.111 best, 0.086 final
    assert bn.final_val_acc > 0.94  # about 97%: measured 0.972 (seeds 0-2: 0.955-0.989)
    assert abs(bn.final_val_acc - relu.final_val_acc) < 0.03  # as good as the ReLU net: 0.972 vs 0.975


# -- optimizers -------------------------------------------------------------------------------------------

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def _optim(name: str, *more: str):
    return run("optimizers", "train.steps=500", f"optim.name={name}", *more)  # 500 steps prove every claim


def _step_over_lr_grad(snap, lr: float = 0.01) -> float:
    """How many times lr * ||g|| the step moved the weights (median over layers): 1 for plain SGD."""
    return statistics.median(layer.update_ratio * layer.weight_norm / (lr * layer.grad_norm) for layer in snap.layers)


@slow
def test_optimizers_sgd_is_slow_but_steady_and_likes_a_higher_lr():
    cfg = preset("optimizers")
    assert cfg.optim.name == "sgd" and cfg.optim.lr == 0.01 and cfg.optim.momentum == 0.9
    sgd = _optim("sgd")
    assert 0.15 < sgd.final_val_loss < 0.6  # about 0.3 after 500 steps: measured 0.29 (seeds 0-2: 0.29-0.38)
    losses = [s.val_loss for s in sgd.evals]
    assert all(b < a for a, b in zip(losses, losses[1:]))  # steady: it never rises (seeds 0-2)
    assert _optim("sgd", "optim.lr=0.1").final_val_loss < sgd.final_val_loss / 3  # measured 0.011
    assert _optim("adam", "optim.lr=0.001").final_val_loss < 0.1  # measured 0.008


@slow
def test_optimizers_momentum_and_nesterov():
    assert math.isclose(1 / (1 - 0.9), 10)
    momentum, nesterov = _optim("momentum"), _optim("nesterov")
    assert _eval_at(momentum, 200).val_loss < 0.1  # measured 0.037 (seeds 0-2: 0.031-0.083)
    # Steps build up to at most ~10x lr * g: measured medians 2.3-8.7 over steps 10-70
    build_up = statistics.median(_step_over_lr_grad(_snap_at(momentum, step)) for step in range(10, 80, 10))
    assert 1.5 < build_up <= 10  # measured 3.2
    assert _step_over_lr_grad(_snap_at(_optim("sgd"), 10)) == pytest.approx(1.0, rel=1e-3)
    # Nesterov's curve nearly matches momentum's.
    for m, n in zip(momentum.evals[1:], nesterov.evals[1:]):
        assert 0.67 < n.val_loss / m.val_loss < 1.5, (m.step, m.val_loss, n.val_loss)  # measured 0.85-1.14


@slow
def test_optimizers_adaptive_methods():
    val50 = {name: _eval_at(_optim(name), 50).val_loss for name in OPTIMIZERS}
    # adagrad: fast from the start, with steps that shrink.
    adagrad = _optim("adagrad")
    assert val50["adagrad"] < val50["sgd"] / 2  # measured 0.20 vs 0.75
    assert _step_over_lr_grad(_snap_at(adagrad, 10)) > 1.5 * _step_over_lr_grad(_snap_at(adagrad, 70))  # 30 -> 12
    # rmsprop: the loss jumps at the start (above 4 at step 10), then falls fast.
    rmsprop = _optim("rmsprop")
    assert _snap_at(rmsprop, 10).loss > 2  # measured 4.3 (seeds 0-2: 4.2-8.5), from 1.09 at step 0
    assert _eval_at(rmsprop, 100).val_loss < 0.1  # measured 0.005
    # adam: the fastest here, below 0.05 within 50 steps.
    assert val50["adam"] < 0.05  # measured 0.016 (seeds 0-2: 0.012-0.043)
    assert val50["adam"] == min(val50.values()), val50  # lowest at step 50 on seeds 0-2


@slow
def test_optimizers_adaptive_bars_are_far_shorter_after_200_steps():
    sgd = _snap_at(_optim("sgd"), 200).layers
    for name in ("adam", "rmsprop"):
        other = _snap_at(_optim(name), 200).layers
        ratios = [a.grad_norm / b.grad_norm for a, b in zip(sgd, other)]
        assert min(ratios) > 10, (name, ratios)  # tens: measured >= 221 (seeds 0-2: >= 35)
        assert max(ratios) > 100, (name, ratios)  # to hundreds: measured 335-442
