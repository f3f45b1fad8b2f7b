"""Models, data sets and initialisation: shapes, probe points, seeds, the init schemes' statistics, and the
registries that build them by name (each holds exactly the names the configuration allows)."""

from __future__ import annotations

import math

import pytest
import torch

from tui_lab.core import choices
from tui_lab.core.choices import UnknownChoice
from tui_lab.core.data import DATASETS, build_dataset
from tui_lab.core.models import ACTIVATIONS, ARCHITECTURES, INITS, build_model
from tui_lab.core.optim import OPTIMIZERS

from support import config


@pytest.mark.parametrize(
    ("registry", "kind"),
    [(ARCHITECTURES, "arch"), (ACTIVATIONS, "activation"), (INITS, "init"), (DATASETS, "data"), (OPTIMIZERS, "optim")],
)
def test_every_registry_holds_exactly_the_configs_choices(registry, kind):
    assert tuple(registry) == choices.CHOICES[kind]


def test_a_registry_miss_is_a_clear_error_not_a_default():
    with pytest.raises(UnknownChoice, match=r"unknown optimizer 'adamx' \(did you mean adam\?\); known: sgd"):
        OPTIMIZERS["adamx"]
    with pytest.raises(UnknownChoice, match="unknown architecture 'transformer'"):
        ARCHITECTURES["transformer"]


def test_every_activation_has_its_traits_and_the_config_takes_them_all():
    assert tuple(choices.ACTIVATIONS) == choices.CHOICES["activation"]
    assert [name for name, t in choices.ACTIVATIONS.items() if t.dies_at_zero] == ["relu"]
    assert {name for name, t in choices.ACTIVATIONS.items() if t.saturation} == {"sigmoid", "tanh"}
    for name in choices.CHOICES["activation"]:
        assert config(f"model.activation={name}").model.activation == name


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
    cfg = config(
        f"model.arch={arch}",
        f"data.name={data}",
        "model.depth=3",
        "model.width=8",
        "data.seq_len=12",
        "data.classes=4" if data == "copy" else "data.classes=3",
    )
    ds = build_dataset(cfg)
    assert ds.input_shape == shape
    model = build_model(cfg, ds.input_shape, ds.n_outputs)
    out = model(ds.x_train[:5])
    assert out.shape == (5, n_out)
    assert [p.name for p in model.probe_points()] == ["L1", "L2", "L3", "out"]
    if arch in ("rnn", "lstm", "gru"):
        assert all(len(p.weights) == 2 for p in model.probe_points()[:-1])  # input and recurrent weights


def test_data_sets_are_seeded_and_split():
    a = build_dataset(config("data.name=moons", "seed=3"))
    b = build_dataset(config("data.name=moons", "seed=3"))
    c = build_dataset(config("data.name=moons", "seed=4"))
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert len(a.x_val) == pytest.approx(0.2 * 2000, abs=1)
    for name in ("spiral", "circles", "xor", "gaussians"):
        ds = build_dataset(config(f"data.name={name}", "data.samples=300"))
        assert ds.task == "classify" and ds.x_train.shape[1] == 2 and torch.isfinite(ds.x_train).all()


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    ds = build_dataset(config("model.arch=lstm", "data.name=adding", "data.seq_len=10", "data.samples=50"))
    x, y = ds.x_train, ds.y_train
    assert torch.allclose((x[:, :, 0] * x[:, :, 1]).sum(1, keepdim=True), y)
    assert (x[:, :, 1].sum(1) == 2).all()


def hidden_weight_stds(init: str, width: int = 256, depth: int = 3) -> list[float]:
    torch.manual_seed(0)
    cfg = config(f"model.init={init}", f"model.width={width}", f"model.depth={depth}")
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
    model = build_model(config("model.init=normal", "model.init_scale=0.5", "model.width=256"), (2,), 3)
    assert model.blocks[1].layer.weight.std().item() == pytest.approx(0.5, rel=0.03)
    assert all((b.layer.bias == 0).all() for b in model.blocks)
    model = build_model(config("model.init=default"), (2,), 3)
    assert any((b.layer.bias != 0).any() for b in model.blocks)  # PyTorch's own init keeps random biases


def test_orthogonal_init_makes_recurrent_gate_blocks_orthogonal():
    cfg = config("model.arch=lstm", "data.name=adding", "model.init=orthogonal", "model.width=16", "model.depth=1")
    model = build_model(cfg, (10, 2), 1)
    hh = model.layers[0].weight_hh_l0.detach()
    for block in hh.split(16):
        assert torch.allclose(block @ block.T, torch.eye(16), atol=1e-5)
