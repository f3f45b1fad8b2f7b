"""tui_lab.watch measures the layers' outputs a group at a time (watch._Outputs): the numbers are each layer's
own, to float rounding, whatever the mix of shapes; an output changed in place after its layer ran is measured
before it changes, never after; and the op count does not grow with depth (README: Watch your own model)."""

from __future__ import annotations

import importlib
import math
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import tui_lab
from tui_lab.core.runlog import read_metrics

torch.set_num_threads(1)
watch_module = importlib.import_module("tui_lab.watch")
SAT = ("sat", 0.01, 0.99)


def measured(outputs: list[tuple[torch.Tensor, tuple]], waiting: bool) -> dict[tuple[int, str], float]:
    """The numbers _Outputs gives, per (output, field): every output waiting (stacked with its kind) or each
    measured alone, at once."""
    batch = watch_module._Outputs()
    for i, (t, kind) in enumerate(outputs):
        layer = types.SimpleNamespace(waits={"out": waiting, "dead": waiting, "sat": waiting})
        batch.add(i, layer, kind, t)
    batch.flush()
    values = torch.cat([v.double() for v in batch.vectors]).tolist()
    for j, by in batch.divide:
        values[j] /= by
    assert len(values) == len(batch.keys)
    return dict(zip(batch.keys, values))


def by_hand(t: torch.Tensor, kind: tuple) -> dict[str, float]:
    """One output's numbers, in float64, the lab's definitions."""
    v = t.double()
    numbers: dict[str, float] = {}
    if kind[0] == "out":
        numbers["act_mean"] = v.mean().item()
        numbers["act_std"] = v.std().item() if v.numel() > 1 else 0.0
    if kind in (("out", True), ("dead",)):
        top = v.amax((0, 2, 3)) if v.dim() == 4 else v.reshape(-1, v.shape[-1]).amax(0)
        numbers["dead_frac"] = (top <= 0).double().mean().item()
    if kind[0] == "sat":
        numbers["sat_frac"] = ((v < kind[1]) | (v > kind[2])).double().mean().item()
    return numbers


def mixed_outputs() -> list[tuple[torch.Tensor, tuple]]:
    torch.manual_seed(0)
    outs: list[tuple[torch.Tensor, tuple]] = []
    for n in range(5):  # one group of five, interleaved with the others below
        t = torch.randn(32, 16) + 0.1 * n
        t[:, : n + 1] = -t[:, : n + 1].abs()  # n + 1 units dead on every input
        outs.append((t, ("out", True)))
        if n < 3:
            maps = torch.randn(8, 4, 5, 5)
            maps[:, n] = -maps[:, n].abs()  # a channel dead everywhere
            outs.append((maps, ("out", True)))
        if n < 2:
            outs.append((torch.randn(4, 7, 12) * 3 + 1, ("out", False)))  # sequences
            outs.append((torch.relu(torch.randn(8, 4, 5, 5) - n), ("dead",)))
        if n < 4:
            outs.append((torch.sigmoid(torch.randn(32, 16) * (n + 1)), SAT))
            outs.append((torch.tanh(torch.randn(32, 16) * (n + 1)), ("sat", -0.99, 0.99)))
    outs.append((torch.randn(32, 3), ("out", False)))  # alone in its group
    outs.append((torch.randn(1), ("out", False)))  # one element: no spread
    outs += [((torch.randn(32, 16) * 2).bfloat16(), ("out", True)) for _ in range(3)]  # read in float32
    outs.append((torch.randn(600, 600), ("out", True)))  # over SMALL: measured at once, alone
    return outs


def test_batched_numbers_equal_each_layers_own_for_mixed_shapes():
    outputs = mixed_outputs()
    batched, alone = measured(outputs, waiting=True), measured(outputs, waiting=False)
    assert set(batched) == set(alone)
    for key, value in alone.items():
        assert batched[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # ... and each is the lab's definition, computed by hand in float64 (float32 sums: ~1e-6)
    for i, (t, kind) in enumerate(outputs):
        for field, value in by_hand(t, kind).items():
            assert batched[(i, field)] == pytest.approx(value, rel=1e-5, abs=1e-6), (i, field)
    assert batched[(0, "dead_frac")] == 1 / 16 and batched[(1, "dead_frac")] == 1 / 4


def test_the_op_count_does_not_grow_with_depth():
    def ops(depth: int) -> int:
        outputs = [(torch.randn(32, 16), ("out", True)) for _ in range(depth)]
        outputs += [(torch.sigmoid(torch.randn(32, 16)), SAT) for _ in range(depth)]
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            measured(outputs, waiting=True)
        # Views (a stack's unsqueeze of each input) are free of the fixed cost that matters: kernels.
        return sum(1 for e in prof.events() if e.name.startswith("aten::") and "unsqueeze" not in e.name)

    assert ops(4) == ops(32)


class Mixed(nn.Module):
    """Conv maps, a ReLU in place, a residual added in place, same-shape Linear layers, saturating activations,
    a norm: the shapes and cases of real models."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)  # changes conv1's output in place
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.fcs = nn.ModuleList([nn.Linear(4 * 36, 16)] + [nn.Linear(16, 16) for _ in range(3)])
        self.sig, self.tanh, self.norm = nn.Linear(16, 16), nn.Linear(16, 16), nn.LayerNorm(16)
        self.sigmoid, self.tanh_act = nn.Sigmoid(), nn.Tanh()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.conv1(x))
        r = torch.relu(self.conv2(h))  # a function: no activation module follows conv2
        h = self.conv3(r)
        h += r  # changes conv3's output in place
        h = h.flatten(1)
        for fc in self.fcs:
            h = nn.functional.relu(fc(h))
        h = self.sigmoid(self.sig(h))
        h = self.tanh_act(self.tanh(h))
        return self.head(self.norm(h))


def test_watched_numbers_are_each_layers_own_before_any_in_place_change(tmp_path: Path):
    torch.manual_seed(0)
    model = Mixed()
    with torch.no_grad():
        model.conv1.bias[0] = -100.0  # one channel of four dead
        model.fcs[1].bias[:5] = -100.0  # five units of 16
        model.sig.bias[:4] = 10.0  # four units of 16 saturated
        model.tanh.bias[:4] = 5.0
    x, y = torch.randn(16, 1, 6, 6), torch.randint(0, 3, (16,))
    # The outputs as each layer gave them, before anything changed them.
    kept: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda m, a, out, name=name: kept.__setitem__(name, out.detach().clone()))
        for name, m in model.named_modules()
        if name and any(True for _ in m.parameters(recurse=False))
    ]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay: every snapshot sees the same net
    with tui_lab.watch(model, opt, out=tmp_path / "mixed", every=2) as lab:
        for _ in range(9):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            lab.log(loss=loss)
    records = read_metrics(tmp_path / "mixed")[0]
    assert len(records) == 5  # the first learns which outputs may wait; the later ones let them
    follows = {"conv1": ("out", True), "sig": SAT, "tanh": ("sat", -0.99, 0.99)}
    for record in records:
        layers = {layer["name"]: layer for layer in record["layers"]}
        for name, out in kept.items():
            want = by_hand(out, ("out", False))
            if name in follows and follows[name][0] == "sat":
                act = torch.sigmoid(out) if name == "sig" else torch.tanh(out)
                want.update(by_hand(act, follows[name]))
            elif name == "conv1":
                want.update(by_hand(out, ("out", True)))
            for field, value in want.items():
                assert layers[name][field] == pytest.approx(value, rel=1e-5, abs=1e-6), (record["step"], name, field)
        assert layers["conv1"]["dead_frac"] == 1 / 4 and layers["conv3"]["dead_frac"] is None
        assert layers["sig"]["sat_frac"] > 0 and layers["tanh"]["sat_frac"] > 0
        assert math.isfinite(layers["norm"]["act_std"])


class Sometimes(nn.Module):
    """Changes its Linear's output in place once `bump` is set: after the watch has learned it does not."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.head, self.bump = nn.Linear(8, 16), nn.Linear(16, 3), False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.bump:
            h.mul_(2.0)
        return self.head(torch.relu(h))


def test_an_output_changed_in_place_after_it_waited_is_left_out_then_measured_at_once(tmp_path: Path):
    torch.manual_seed(0)
    model = Sometimes()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    with torch.no_grad():
        want = model.fc(x).mean().item()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with tui_lab.watch(model, opt, out=tmp_path / "bump", every=2) as lab:
        for step in range(7):
            model.bump = step >= 4  # the third capture (step 4) on
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            lab.log(loss=loss)
    fc = [record["layers"][0] for record in read_metrics(tmp_path / "bump")[0]]
    assert [layer["name"] for layer in fc] == ["fc"] * 4
    assert fc[0]["act_mean"] == pytest.approx(want, rel=1e-5) and fc[1]["act_mean"] == pytest.approx(want, rel=1e-5)
    assert fc[2]["act_mean"] is None and fc[2]["act_std"] is None  # the doubled tensor's numbers: not guessed
    assert fc[3]["act_mean"] == pytest.approx(want, rel=1e-5)  # measured when its layer ran, as it ran
    assert fc[2]["grad_norm"] > 0  # the rest of the snapshot is there
