"""Calibration of the diagnosis: how often an alarm means a network that will not train (precision), and how
often a network that will not train raises one (recall).

Every case below is a labelled network: healthy (it trains: its validation accuracy closes at least 70% of the
gap between chance and 100%, or, for regression, its validation loss is at most 30% of the loss of guessing
the mean) or sick, with the kind of sickness (it does not: at most 40% of the gap closed, or it diverges).
The label is checked against the run's own outcome every time the script runs; a case whose outcome falls
in between, or disagrees with its label, is reported and counts against the suite.

Each network is judged twice, at initialisation (its step-0 snapshot) and at the end of training (its last
snapshot). A judgment *alarms* when a finding is a warning or an error, or advises changing something.
Precision = alarms on sick networks / all alarms; recall = sick judgments that alarm / all sick judgments.
Some sicknesses cannot be seen at step 0: a learning rate too high for Adam or momentum on ReLU (units die,
or the run diverges, only as it trains) and a plateau. Those cases say so (`visible_at_start=False`); they
still count in the figures.

    python benchmarks/calibrate.py                    # every case, 2 processes
    python benchmarks/calibrate.py --only dead-relu   # some cases
    python benchmarks/calibrate.py --smoke            # a few cases, a few steps (the suite runs this)

tests/test_calibration.py runs the fast part: every case's judgment at initialisation (one step each).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import loadavg, write_results

HEALTHY_SKILL, SICK_SKILL = 0.7, 0.4
TARGET = 0.95


@dataclass(frozen=True)
class Case:
    name: str
    label: str  # healthy, or the kind of sickness
    settings: tuple[str, ...]  # --set overrides on the preset (or on the defaults)
    preset: str | None = None
    visible_at_start: bool = True  # a sick network the step-0 snapshot can show

    @property
    def sick(self) -> bool:
        return self.label != "healthy"


def case(name: str, label: str, *settings: str, preset: str | None = None, visible_at_start: bool = True) -> Case:
    return Case(name, label, tuple(settings), preset, visible_at_start)


MLP = ("train.steps=800", "train.log_every=10", "train.eval_every=50")
RELU_HE = ("model.activation=relu", "model.init=he_normal")
ADDING = ("data.name=adding", "model.depth=1", "model.width=32")

CASES: list[Case] = [
    # The lessons, as shipped, and their classic variants.
    case("relu-he", "healthy", preset="relu-he"),
    case("deep-sigmoid", "vanishing", preset="deep-sigmoid"),
    case("batchnorm-rescue", "healthy", preset="batchnorm-rescue"),
    case("xavier-tanh", "healthy", preset="xavier-tanh"),
    case("small-random-init", "vanishing", preset="small-random-init"),
    case("he-vs-xavier-deep", "fading", preset="he-vs-xavier-deep"),
    case("he-vs-xavier-deep-he", "healthy", "model.init=he_normal", preset="he-vs-xavier-deep"),
    case("dead-relu", "dead", preset="dead-relu", visible_at_start=False),
    case("leaky-relu-fix", "healthy", preset="leaky-relu-fix"),
    case("exploding", "exploding", "train.log_every=10", preset="exploding"),
    case("exploding-clipped", "healthy", preset="exploding-clipped"),
    case("residual-deep", "healthy", preset="residual-deep"),
    case("optimizers", "healthy", preset="optimizers"),
    case("cnn-digits", "healthy", preset="cnn-digits"),
    case("cnn-sigmoid", "vanishing", "model.activation=sigmoid", "model.init=default", "model.depth=6",
         preset="cnn-digits"),
    case("rnn-vanishing", "time-vanishing", preset="rnn-vanishing"),
    case("lstm-remembers", "healthy", preset="lstm-remembers"),
    case("gru", "healthy", preset="gru"),
    case("rnn-relu-he", "healthy", "model.activation=relu", "model.init=he_normal", preset="rnn-vanishing"),
    case("adam-sigmoid", "vanishing", "optim.name=adam", "optim.lr=1e-3", preset="deep-sigmoid"),
    case("relu-lr-tiny", "lr-too-low", "optim.lr=1e-5", preset="relu-he"),
    case("relu-lr-huge", "lr-too-high", "optim.lr=3.0", preset="relu-he"),
    case("momentum", "healthy", "optim.name=momentum", "optim.lr=0.01", preset="relu-he"),
    case("nesterov", "healthy", "optim.name=nesterov", "optim.lr=0.01", preset="relu-he"),
    case("adagrad", "healthy", "optim.name=adagrad", "optim.lr=0.05", preset="relu-he"),
    case("rmsprop-tanh", "healthy", "optim.name=rmsprop", "optim.lr=1e-3", preset="xavier-tanh"),
    case("adamw-gelu", "healthy", "model.activation=gelu", "optim.name=adamw", "optim.lr=1e-3", preset="relu-he"),
    case("batch-post-relu", "healthy", "model.norm=batch_post", preset="relu-he"),
    case("dropout-relu", "healthy", "model.dropout=0.2", preset="relu-he"),
    case("lstm-orthogonal", "healthy", "model.init=orthogonal", preset="lstm-remembers"),
    case("cnn-adam", "healthy", "optim.name=adam", "optim.lr=1e-3", preset="cnn-digits"),
    # Point data sets, activation families, inits, norms and optimisers.
    case("gelu-moons", "healthy", *MLP, "model.activation=gelu", "model.init=he_normal", "data.name=moons",
         "model.depth=6", "optim.lr=0.05"),
    case("elu-circles", "healthy", *MLP, "model.activation=elu", "model.init=he_normal", "data.name=circles",
         "model.depth=6", "optim.lr=0.05"),
    case("selu-xor", "healthy", *MLP, "model.activation=selu", "model.init=lecun_normal", "data.name=xor",
         "model.depth=8", "optim.lr=0.02"),
    case("linear-gaussians", "healthy", *MLP, "model.activation=linear", "model.init=xavier_normal",
         "data.name=gaussians", "model.depth=3", "optim.lr=0.05"),
    case("sigmoid-large-init", "healthy", *MLP, "model.activation=sigmoid", "model.init=normal",
         "model.init_scale=5", "model.depth=5"),
    case("tanh-large-init", "exploding", *MLP, "model.activation=tanh", "model.init=normal", "model.init_scale=2",
         "model.depth=8"),
    case("layernorm-tanh", "healthy", *MLP, "model.activation=tanh", "model.init=xavier_normal", "model.norm=layer",
         "model.depth=20", "optim.lr=0.05"),
    case("relu-uniform-large", "exploding", *MLP, *RELU_HE[:1], "model.init=uniform", "model.init_scale=1.0",
         "model.depth=10", "optim.lr=0.01"),
    case("resmlp-relu-default", "healthy", *MLP, "model.arch=resmlp", "model.activation=relu", "model.depth=20",
         "optim.lr=0.05"),
    case("mlp-digits", "healthy", *MLP, *RELU_HE, "data.name=digits", "model.depth=3", "optim.lr=0.05"),
    case("tanh-moons", "healthy", *MLP, "model.activation=tanh", "data.name=moons", "model.depth=3", "optim.lr=0.1"),
    case("linear-large-init", "exploding", *MLP, "model.activation=linear", "model.init=normal",
         "model.init_scale=0.5", "model.depth=10", "optim.lr=0.01"),
    case("sigmoid-xavier-4", "vanishing", "train.steps=1000", "model.activation=sigmoid",
         "model.init=xavier_normal", "model.depth=4", "optim.lr=0.5"),
    case("relu-moons", "healthy", *MLP, *RELU_HE, "model.depth=5", "model.width=32", "data.name=moons",
         "optim.lr=0.1"),
    case("tanh-circles", "healthy", *MLP, "model.activation=tanh", "model.init=xavier_normal", "model.depth=6",
         "data.name=circles", "optim.lr=0.1"),
    case("elu-adam", "healthy", *MLP, "model.activation=elu", "model.init=he_normal", "model.depth=8",
         "optim.name=adam", "optim.lr=1e-3"),
    case("gelu-gaussians-momentum", "healthy", *MLP, "model.activation=gelu", "model.init=he_normal",
         "model.depth=4", "data.name=gaussians", "optim.name=momentum", "optim.lr=0.05"),
    case("selu-spiral", "healthy", *MLP, "model.activation=selu", "model.init=lecun_normal", "model.depth=10",
         "optim.lr=0.05"),
    case("relu-batchnorm-15", "healthy", *MLP, *RELU_HE, "model.depth=15", "model.norm=batch_pre", "optim.lr=0.1"),
    case("sigmoid-batchnorm-moons", "healthy", *MLP, "model.activation=sigmoid", "model.depth=6",
         "model.norm=batch_pre", "data.name=moons", "optim.lr=0.5"),
    case("tanh-layernorm-adam", "healthy", *MLP, "model.activation=tanh", "model.depth=10", "model.norm=layer",
         "optim.name=adam", "optim.lr=1e-3"),
    case("resmlp-40", "healthy", *MLP, "model.arch=resmlp", *RELU_HE, "model.depth=40", "optim.lr=0.05"),
    case("tanh-digits-adam", "healthy", *MLP, "model.activation=tanh", "model.init=xavier_normal",
         "model.depth=4", "data.name=digits", "optim.name=adam", "optim.lr=1e-3"),
    case("leaky-rmsprop", "healthy", *MLP, "model.activation=leaky_relu", "model.init=he_normal",
         "model.depth=12", "optim.name=rmsprop", "optim.lr=1e-3"),
    case("relu-xor-nesterov", "healthy", *MLP, *RELU_HE, "model.depth=8", "data.name=xor", "optim.name=nesterov",
         "optim.lr=0.02"),
    case("linear-1-layer", "healthy", *MLP, "model.activation=linear", "model.depth=1", "data.name=gaussians",
         "optim.lr=0.1"),
    case("relu-adagrad-20", "healthy", *MLP, *RELU_HE, "model.depth=20", "optim.name=adagrad", "optim.lr=0.02"),
    case("relu-default-adam", "healthy", *MLP, "model.activation=relu", "model.depth=4", "optim.name=adam",
         "optim.lr=1e-2"),
    case("relu-circles-adamw", "healthy", *MLP, "model.activation=relu", "model.init=he_uniform", "model.depth=6",
         "data.name=circles", "optim.name=adamw", "optim.lr=3e-3", "seed=4"),
    case("tanh-xor-rmsprop", "healthy", *MLP, "model.activation=tanh", "model.init=xavier_uniform",
         "model.depth=5", "data.name=xor", "optim.name=rmsprop", "optim.lr=3e-3"),
    case("elu-dropout-momentum", "healthy", *MLP, "model.activation=elu", "model.init=he_normal", "model.depth=6",
         "model.dropout=0.1", "optim.name=momentum", "optim.lr=0.02"),
    case("relu-weight-decay", "healthy", *MLP, *RELU_HE, "model.depth=6", "optim.weight_decay=1e-4",
         "optim.lr=0.1", "seed=5"),
    case("relu-l1", "healthy", *MLP, *RELU_HE, "model.depth=6", "optim.l1=1e-5", "optim.lr=0.1"),
    case("sigmoid-batch-post", "healthy", *MLP, "model.activation=sigmoid", "model.depth=6",
         "model.norm=batch_post", "optim.lr=0.5", "data.name=moons"),
    case("resmlp-tanh-20", "healthy", *MLP, "model.arch=resmlp", "model.activation=tanh", "model.depth=20",
         "optim.lr=0.05", "data.name=moons"),
    case("selu-digits", "healthy", *MLP, "model.activation=selu", "model.init=lecun_normal", "model.depth=6",
         "data.name=digits", "optim.lr=0.05"),
    case("relu-orthogonal", "healthy", *MLP, "model.activation=relu", "model.init=orthogonal", "model.depth=8",
         "optim.lr=0.05", "data.name=gaussians"),
    case("leaky-uniform-nesterov", "healthy", *MLP, "model.activation=leaky_relu", "model.init=he_uniform",
         "model.depth=10", "optim.name=nesterov", "optim.lr=0.01"),
    case("gelu-layernorm", "healthy", *MLP, "model.activation=gelu", "model.norm=layer", "model.depth=12",
         "optim.lr=0.05"),
    case("sigmoid-15-moons", "vanishing", *MLP, "model.activation=sigmoid", "model.depth=15", "data.name=moons",
         "optim.lr=0.1"),
    case("tanh-small-init-12", "vanishing", *MLP, "model.activation=tanh", "model.init=normal",
         "model.init_scale=0.02", "model.depth=12", "data.name=circles", "optim.lr=0.1"),
    case("relu-xavier-40", "fading", *MLP, "model.activation=relu", "model.init=xavier_normal", "model.depth=40",
         "data.name=moons", "optim.lr=0.01"),
    case("relu-large-normal-12", "exploding", *MLP, "model.activation=relu", "model.init=normal",
         "model.init_scale=0.3", "model.depth=12", "optim.lr=0.01"),
    case("relu-adam-0.1", "lr-too-high", *MLP, *RELU_HE, "model.depth=8", "optim.name=adam", "optim.lr=0.1",
         "seed=3", visible_at_start=False),
    case("relu-lr-1e-6", "lr-too-low", *MLP, *RELU_HE, "model.depth=6", "data.name=moons", "optim.lr=1e-6"),
    case("tanh-large-normal-12", "exploding", *MLP, "model.activation=tanh", "model.init=normal",
         "model.init_scale=1.5", "model.depth=12", "optim.lr=0.1"),
    case("sigmoid-20-digits-adam", "vanishing", *MLP, "model.activation=sigmoid", "model.depth=20",
         "data.name=digits", "optim.name=adam", "optim.lr=1e-3"),
    case("gelu-large-normal", "exploding", *MLP, "model.activation=gelu", "model.init=normal",
         "model.init_scale=1.0", "model.depth=10", "optim.lr=0.05"),
    case("relu-sgd-5-moons", "lr-too-high", *MLP, *RELU_HE, "model.depth=6", "data.name=moons", "optim.lr=5"),
    case("elu-rmsprop-0.5", "lr-too-high", *MLP, "model.activation=elu", "model.init=he_normal", "model.depth=6",
         "optim.name=rmsprop", "optim.lr=0.5"),
    case("linear-normal-0.4", "exploding", *MLP, "model.activation=linear", "model.init=normal",
         "model.init_scale=0.4", "model.depth=8", "data.name=circles", "optim.lr=0.01"),
    case("relu-momentum-1", "lr-too-high", *MLP, *RELU_HE, "model.depth=10", "optim.name=momentum",
         "optim.lr=1.0"),
    case("sigmoid-he-12", "vanishing", *MLP, "model.activation=sigmoid", "model.init=he_normal", "model.depth=12",
         "optim.lr=0.1"),
    case("tanh-default-20", "vanishing", *MLP, "model.activation=tanh", "model.depth=20", "optim.lr=0.05",
         "data.name=circles"),
    case("sigmoid-small-uniform", "vanishing", *MLP, "model.activation=sigmoid", "model.init=uniform",
         "model.init_scale=0.05", "model.depth=8", "data.name=xor", "optim.lr=0.2"),
    case("relu-uniform-0.6", "exploding", *MLP, "model.activation=relu", "model.init=uniform",
         "model.init_scale=0.6", "model.depth=10", "data.name=circles", "optim.lr=0.01"),
    case("elu-normal-0.8", "exploding", *MLP, "model.activation=elu", "model.init=normal", "model.init_scale=0.8",
         "model.depth=10", "optim.lr=0.05"),
    case("relu-adam-12", "lr-too-high", *MLP, *RELU_HE, "model.depth=12", "optim.name=adam", "optim.lr=0.05",
         "seed=1", visible_at_start=False),
    case("relu-sgd-2", "lr-too-high", *MLP, *RELU_HE, "model.depth=4", "data.name=gaussians", "optim.lr=2.0"),
    case("linear-normal-0.6", "exploding", *MLP, "model.activation=linear", "model.init=normal",
         "model.init_scale=0.6", "model.depth=6", "data.name=gaussians", "optim.lr=0.05"),
    case("relu-sgd-3e-6", "lr-too-low", *MLP, *RELU_HE, "model.depth=4", "data.name=xor", "optim.lr=3e-6"),
    case("tanh-tiny-init-adam", "vanishing", *MLP, "model.activation=tanh", "model.init=normal",
         "model.init_scale=0.005", "model.depth=10", "optim.name=adam", "optim.lr=1e-3"),
    case("relu-default-10", "vanishing", *MLP, "model.activation=relu", "model.depth=10", "optim.lr=0.1"),
    case("relu-momentum-0.3", "lr-too-high", *MLP, *RELU_HE, "model.depth=6", "optim.name=momentum",
         "optim.lr=0.3"),
    case("relu-adam-0.05-deep", "lr-too-high", *MLP, *RELU_HE, "model.depth=10", "optim.name=adam",
         "optim.lr=0.05", visible_at_start=False),
    case("relu-adam-0.02-default", "healthy", *MLP, "model.activation=relu", "model.depth=10", "optim.name=adam",
         "optim.lr=0.02"),
    case("relu-adam-0.03-wide", "healthy", *MLP, *RELU_HE, "model.depth=6", "model.width=128", "optim.name=adam",
         "optim.lr=0.03"),
    case("relu-adam-0.05-shallow", "healthy", *MLP, *RELU_HE, "model.depth=6", "optim.name=adam",
         "optim.lr=0.05", "seed=1"),
    case("relu-adam-0.03-deep", "lr-too-high", *MLP, *RELU_HE, "model.depth=10", "optim.name=adam",
         "optim.lr=0.03", visible_at_start=False),
    case("relu-sgd-0.3-deep", "healthy", *MLP, *RELU_HE, "model.depth=10", "optim.lr=0.3"),
    case("relu-momentum-0.1", "lr-too-high", *MLP, *RELU_HE, "model.depth=6", "optim.name=momentum",
         "optim.lr=0.1", visible_at_start=False),
    case("relu-xavier-20-circles", "healthy", *MLP, "model.activation=relu", "model.init=xavier_normal",
         "model.depth=20", "model.width=32", "data.name=circles", "optim.lr=0.01"),
    case("relu-glorot-30-gaussians", "fading", *MLP, "model.activation=relu", "model.init=xavier_uniform",
         "model.depth=30", "data.name=gaussians", "optim.lr=0.01"),
    # Convolutions.
    case("cnn-small-adam", "healthy", "train.steps=500", "model.arch=cnn", "data.name=digits", *RELU_HE,
         "model.depth=3", "model.width=8", "optim.name=adam", "optim.lr=3e-3"),
    case("cnn-tanh-momentum", "healthy", "train.steps=500", "model.arch=cnn", "data.name=digits",
         "model.activation=tanh", "model.init=xavier_normal", "model.depth=2", "model.width=8",
         "optim.name=momentum", "optim.lr=0.05"),
    case("cnn-elu-adam", "healthy", "train.steps=400", "model.arch=cnn", "data.name=digits", "model.activation=elu",
         "model.init=he_normal", "model.depth=3", "model.width=12", "optim.name=adam", "optim.lr=2e-3"),
    case("cnn-sigmoid-8", "vanishing", "train.steps=500", "model.arch=cnn", "data.name=digits",
         "model.activation=sigmoid", "model.init=xavier_normal", "model.depth=8", "model.width=8",
         "optim.lr=0.05"),
    case("cnn-sigmoid-momentum", "vanishing", "train.steps=400", "model.arch=cnn", "data.name=digits",
         "model.activation=sigmoid", "model.depth=5", "model.width=12", "optim.name=momentum", "optim.lr=0.02"),
    # Recurrent networks.
    case("lstm-copy", "healthy", *MLP, "model.arch=lstm", "data.name=copy", "data.classes=4", "data.seq_len=15",
         "model.depth=1", "model.width=64", "optim.name=adam", "optim.lr=0.01"),
    case("gru-copy", "healthy", *MLP, "model.arch=gru", "data.name=copy", "data.classes=4", "data.seq_len=15",
         "model.depth=1", "model.width=64", "optim.name=adam", "optim.lr=0.01"),
    case("rnn-short", "healthy", *MLP, "model.arch=rnn", *ADDING, "data.seq_len=5", "model.activation=tanh",
         "optim.name=adam", "optim.lr=0.01"),
    case("lstm-adding-20", "healthy", *MLP, "model.arch=lstm", *ADDING, "data.seq_len=20", "optim.name=adam",
         "optim.lr=1e-2", "optim.clip_norm=1"),
    case("gru-copy-10", "healthy", *MLP, "model.arch=gru", "data.name=copy", "data.seq_len=10", "data.classes=5",
         "model.depth=1", "model.width=32", "optim.name=adam", "optim.lr=1e-2"),
    case("rnn-adding-8", "healthy", *MLP, "model.arch=rnn", *ADDING, "data.seq_len=8", "optim.name=adam",
         "optim.lr=1e-2"),
    case("gru-adding-40", "healthy", "train.steps=1200", "model.arch=gru", "data.name=adding", "data.seq_len=40",
         "model.depth=1", "model.width=48", "optim.name=adam", "optim.lr=5e-3", "optim.clip_norm=1"),
    case("rnn-adding-60", "time-vanishing", *MLP, "model.arch=rnn", *ADDING, "data.seq_len=60", "optim.name=adam",
         "optim.lr=1e-2", "optim.clip_norm=1"),
    case("rnn-relu-60", "exploding", *MLP, "model.arch=rnn", *ADDING, "data.seq_len=60", *RELU_HE,
         "optim.name=adam", "optim.lr=1e-2"),
    case("lstm-lr-1e-5", "lr-too-low", *MLP, "model.arch=lstm", *ADDING, "data.seq_len=30", "optim.name=adam",
         "optim.lr=1e-5"),
    case("gru-lr-1e-5", "lr-too-low", *MLP, "model.arch=gru", *ADDING, "data.seq_len=20", "optim.name=adam",
         "optim.lr=1e-5"),
    case("rnn-copy-30", "time-vanishing", *MLP, "model.arch=rnn", "data.name=copy", "data.seq_len=30",
         "data.classes=4", "model.depth=1", "model.width=32", "optim.name=adam", "optim.lr=5e-3",
         "optim.clip_norm=1"),
    case("rnn-copy-40-momentum", "time-vanishing", *MLP, "model.arch=rnn", "data.name=copy", "data.seq_len=40",
         "data.classes=3", "model.depth=1", "model.width=64", "optim.name=momentum", "optim.lr=0.01",
         "optim.clip_norm=1"),
    case("rnn-adding-45-wide", "time-vanishing", *MLP, "model.arch=rnn", "data.name=adding", "data.seq_len=45",
         "model.depth=1", "model.width=64", "optim.name=adam", "optim.lr=3e-3", "optim.clip_norm=1"),
    case("lstm-2-copy-plateau", "stuck", *MLP, "model.arch=lstm", "data.name=copy", "data.seq_len=12",
         "data.classes=4", "model.depth=2", "model.width=32", "optim.name=adam", "optim.lr=5e-3",
         visible_at_start=False),
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Running a case.


def configure(c: Case, *extra: str):
    from tui_lab.core.config import LabConfig, with_overrides
    from tui_lab.core.presets import load_preset

    base = load_preset(c.preset)[1] if c.preset else LabConfig()
    return with_overrides(base, ["train.device=cpu", *c.settings, *extra])


def alarmed(findings) -> list[str]:
    from tui_lab.core.diagnosis import alarms

    return [f.kind for f in findings if alarms(f)]


@dataclass
class Outcome:
    name: str
    label: str
    visible_at_start: bool
    status: str
    skill: float | None
    start: list[str] = field(default_factory=list)  # what alarmed at initialisation
    end: list[str] = field(default_factory=list)  # ... and at the end
    seconds: float = 0.0

    @property
    def observed(self) -> str:
        if self.status == "diverged":
            return "sick"
        if self.skill is None:
            return "unknown"
        return "healthy" if self.skill >= HEALTHY_SKILL else "sick" if self.skill <= SICK_SKILL else "in between"


def run_case(c: Case, extra: tuple[str, ...] = ()) -> Outcome:
    """Train the case and judge it at its first and last snapshots."""
    from tui_lab.core.trainer import Trainer

    t0 = time.perf_counter()
    snaps = []
    trainer = Trainer(configure(c, *extra), sinks=[snaps.append])
    result = trainer.run()
    evals = [s for s in snaps if s.val_loss is not None and not s.nonfinite]
    final = evals[-1] if evals else None
    skill = None
    if final is not None:
        if final.val_acc is not None:
            chance = _chance_accuracy(trainer.cfg)
            skill = (final.val_acc - chance) / (1 - chance)
        elif trainer.meta.chance_loss:
            skill = 1 - final.val_loss / trainer.meta.chance_loss
    return Outcome(
        c.name, c.label, c.visible_at_start, result.status, skill,
        alarmed(snaps[0].findings) if snaps else [], alarmed(snaps[-1].findings) if snaps else [],
        time.perf_counter() - t0,
    )  # fmt: skip


def _chance_accuracy(cfg) -> float:
    """The accuracy of always guessing the most frequent validation class."""
    import torch

    from tui_lab.core.data import build_dataset

    y = build_dataset(cfg).y_val
    return float(torch.bincount(y).max()) / len(y)


def judge_at_start(c: Case) -> list[str]:
    """The fast part: one step, the step-0 snapshot's alarms."""
    from tui_lab.core.trainer import Trainer

    snaps = []
    Trainer(configure(c, "train.steps=1"), sinks=[snaps.append]).run()
    return alarmed(snaps[0].findings)


# ---------------------------------------------------------------------------------------------------------
# Scoring.


def score(outcomes: list[Outcome], phase: str | None = None) -> dict[str, float | int]:
    tp = fp = fn = tn = 0
    for o in outcomes:
        for when in ("start", "end") if phase is None else (phase,):
            alarm = bool(getattr(o, when))
            if o.label != "healthy":
                tp, fn = tp + alarm, fn + (not alarm)
            else:
                fp, tn = fp + alarm, tn + (not alarm)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": round(precision, 4), "recall": round(recall, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="three cases, 60 steps each")
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    load_before = loadavg()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    extra: tuple[str, ...] = ()
    if args.smoke:
        cases = [c for c in CASES if c.name in ("relu-he", "deep-sigmoid", "exploding")]
        extra = ("train.steps=60", "train.eval_every=30")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        outcomes = list(pool.map(run_case, cases, [extra] * len(cases)))
    print(f"{'case':26} {'label':15} {'outcome':10} {'skill':>6}  at the start         at the end")
    disagree = []
    for o in outcomes:
        agrees = o.observed == ("healthy" if o.label == "healthy" else "sick")
        if not agrees:
            disagree.append(o.name)
        skill = "-" if o.skill is None else f"{o.skill:.2f}"
        mark = "" if agrees or args.smoke else "  <- label disagrees with the outcome"
        print(f"{o.name:26} {o.label:15} {o.observed:10} {skill:>6}  {','.join(o.start) or '-':20} "
              f"{','.join(o.end) or '-'}{mark}")  # fmt: skip
    both, start, end = score(outcomes), score(outcomes, "start"), score(outcomes, "end")
    families = len(outcomes)
    print()
    print(f"results: precision {both['precision']:.3f}, recall {both['recall']:.3f} over {2 * families} judgments "
          f"of {families} networks (target >= {TARGET}); at initialisation {start['precision']:.3f} / "
          f"{start['recall']:.3f}, at the end {end['precision']:.3f} / {end['recall']:.3f}; "
          f"{len(disagree)} labels disagree with their outcome; {time.perf_counter() - t0:.0f}s")  # fmt: skip
    results = {
        "_load_before": load_before, "smoke": args.smoke, "cases": families, "target": TARGET, **both,
        "at_start": start, "at_end": end, "meets_target": both["precision"] >= TARGET and both["recall"] >= TARGET,
        "labels_disagree": disagree,
        "outcomes": [{**vars(o), "observed": o.observed} for o in outcomes],
    }  # fmt: skip
    print(f"results: {write_results('calibrate', results, args.results_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
