"""Probes against a direct computation: every statistic equals what autograd and plain tensor maths give."""

from __future__ import annotations

import pytest
import torch

from tui_lab.core.models import build_model
from tui_lab.core.probes import STACK_LIMIT, Probes

from support import config


def test_probe_numbers_equal_a_direct_autograd_computation():
    torch.manual_seed(0)
    cfg = config("model.depth=3", "model.width=16", "model.activation=tanh")
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
    reading = probes.read()
    layers, tgn = reading.layers, reading.time_grad_norm

    # The same activations recomputed by hand from the pre-step weights.
    h, acts = x, []
    for i, block in enumerate(model.blocks):
        h = torch.tanh(torch.nn.functional.linear(h, before[i], block.layer.bias + 0.1 * block.layer.bias.grad))
        acts.append(h)
    assert tgn is None
    for i, layer in enumerate(layers):
        w_after = model.probe_points()[i].weights[0].detach()
        assert layer.grad_norm == pytest.approx(expected_grad[i], rel=1e-5)
        assert layer.weight_norm == pytest.approx(before[i].norm().item(), rel=1e-5)
        assert layer.update_ratio == pytest.approx(((w_after - before[i]).norm() / before[i].norm()).item(), rel=1e-4)
        # For plain SGD, ||dW|| = lr * ||grad||.
        assert layer.update_ratio == pytest.approx(0.1 * expected_grad[i] / before[i].norm().item(), rel=1e-4)
        if i < 3:
            assert layer.act_mean == pytest.approx(acts[i].mean().item(), abs=1e-5)
            assert layer.act_std == pytest.approx(acts[i].std().item(), rel=1e-4)


def test_recurrent_time_grad_norm_is_the_input_gradient_per_step():
    torch.manual_seed(0)
    cfg = config("model.arch=rnn", "data.name=adding", "model.depth=1", "model.width=8", "data.seq_len=6")
    model = build_model(cfg, (6, 2), 1)
    probes = Probes(model)
    x, y = torch.rand(4, 6, 2), torch.rand(4, 1)
    xb = probes.start(x)
    out = model(xb)
    torch.nn.functional.mse_loss(out, y).backward()
    expected = xb.grad.norm(dim=(0, 2)).tolist()
    probes.after_backward(out)
    probes.after_step()
    tgn = probes.read().time_grad_norm
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
    return probes.read().layers


def test_dead_fraction_on_a_hand_made_layer():
    cfg = config("model.depth=1", "model.width=4", "model.activation=relu")
    model = build_model(cfg, (2,), 2)
    with torch.no_grad():
        layer = model.blocks[0].layer
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([-1.0, -1.0, -1.0, 1.0]))  # three units never fire
    layers = probe_once(model, torch.randn(16, 2))
    assert layers[0].dead_frac == pytest.approx(0.75)
    assert layers[0].sat_frac == 0.0


def test_leaky_relu_units_are_never_counted_dead():
    cfg = config("model.depth=1", "model.width=4", "model.activation=leaky_relu")
    model = build_model(cfg, (2,), 2)
    with torch.no_grad():
        model.blocks[0].layer.weight.zero_()
        model.blocks[0].layer.bias.fill_(-1.0)
    assert probe_once(model, torch.randn(16, 2))[0].dead_frac == 0.0


@pytest.mark.parametrize(
    "activation,bias,expected", [("sigmoid", 10.0, 1.0), ("sigmoid", 0.0, 0.0), ("tanh", -5.0, 1.0), ("tanh", 0.0, 0.0)]
)
def test_saturated_fraction_on_hand_made_layers(activation, bias, expected):
    cfg = config("model.depth=1", "model.width=4", f"model.activation={activation}")
    model = build_model(cfg, (2,), 2)
    with torch.no_grad():
        model.blocks[0].layer.weight.zero_()
        model.blocks[0].layer.bias.fill_(bias)
    assert probe_once(model, torch.randn(16, 2))[0].sat_frac == pytest.approx(expected)


@pytest.mark.parametrize(
    "overrides",
    [
        ("model.activation=relu",),
        ("model.activation=sigmoid",),
        ("model.activation=tanh", "model.norm=layer"),
        ("model.arch=cnn", "data.name=digits", "model.activation=relu", "model.width=4"),
        ("model.arch=rnn", "data.name=adding", "model.activation=relu", "data.seq_len=5"),
    ],
)
def test_layer_by_layer_reductions_equal_the_stacked_ones(monkeypatch, overrides):
    """Activations too large to stack are reduced one layer at a time, by the same definitions."""
    cfg = config("model.depth=3", "model.width=8", *overrides)
    torch.manual_seed(0)
    model = build_model(cfg, (1, 8, 8) if cfg.model.arch == "cnn" else (5, 2) if cfg.recurrent else (2,), 3)
    x = (
        torch.randn(16, 1, 8, 8)
        if cfg.model.arch == "cnn"
        else torch.randn(16, 5, 2)
        if cfg.recurrent
        else torch.randn(16, 2)
    )
    stacked = probe_once(model, x)
    monkeypatch.setattr("tui_lab.core.probes.STACK_LIMIT", 0)
    model.zero_grad()
    each = probe_once(model, x)
    assert STACK_LIMIT > 0 and len(stacked) == len(each) == 4
    for a, b in zip(stacked, each):
        for field in ("grad_norm", "weight_norm", "act_mean", "act_std", "dead_frac", "sat_frac", "act_grad_norm"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-5, abs=1e-7), (a.name, field)
