"""The one table of names a configuration may choose: architectures, activations, inits, norms, data sets and
optimisers, with the aliases a user would type (Keras and PyTorch spellings) and what the lab knows of each.

Everything else derives from here: the config's allowed values and error messages, and the registries that
build things by name (`models.ACTIVATIONS`, `models.INITS`, `models.ARCHITECTURES`, `data.DATASETS`,
`optim.OPTIMIZERS`), each checked by a test to hold exactly these keys. Imports neither torch nor pydantic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from tui_lab.core.errors import did_you_mean


@dataclass(frozen=True)
class Activation:
    """What an activation does to the signal, as probes and diagnosis need to know it."""

    dies_at_zero: bool = False  # a unit that is <= 0 on every input passes no gradient (relu)
    saturation: tuple[float, float] | None = None  # outputs below/above these sit on the flat ends
    max_slope: float = 1.0  # the largest derivative: below 1, every layer shrinks the gradient


@dataclass(frozen=True)
class Arch:
    data_kinds: tuple[str, ...]  # the kinds of data set (see DATASETS) it takes
    recurrent: bool = False
    gated: bool = False  # a cell whose gates can learn to carry the gradient across time (lstm, gru)
    residual: bool = False
    spatial: bool = False  # takes images as channels x height x width (else flattened)


@dataclass(frozen=True)
class Optimizer:
    adaptive: bool = False  # divides each weight's step by its own gradient size: steps of about lr
    decaying: bool = False  # its steps shrink as it goes (Adagrad's sum of squares only grows)


ARCHS: dict[str, Arch] = {
    "mlp": Arch(("points", "images")),
    "resmlp": Arch(("points", "images"), residual=True),
    "cnn": Arch(("images",), spatial=True),
    "rnn": Arch(("sequences",), recurrent=True),
    "lstm": Arch(("sequences",), recurrent=True, gated=True),
    "gru": Arch(("sequences",), recurrent=True, gated=True),
}

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(saturation=(0.01, 0.99), max_slope=0.25),
    "tanh": Activation(saturation=(-0.99, 0.99)),
    "relu": Activation(dies_at_zero=True),
    "leaky_relu": Activation(),
    "elu": Activation(),
    "gelu": Activation(max_slope=1.13),
    "selu": Activation(max_slope=1.76),
    "linear": Activation(),
}

INITS = (
    "default",
    "normal",
    "uniform",
    "xavier_uniform",
    "xavier_normal",
    "he_normal",
    "he_uniform",
    "orthogonal",
    "lecun_normal",
)
NORMS = ("none", "batch_pre", "batch_post", "layer")

# Data set -> its kind: what shape of input it gives, and so which architectures take it.
DATASETS: dict[str, str] = {
    "spiral": "points",
    "moons": "points",
    "circles": "points",
    "xor": "points",
    "gaussians": "points",
    "digits": "images",
    "adding": "sequences",
    "copy": "sequences",
}

OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(),
    "momentum": Optimizer(),
    "nesterov": Optimizer(),
    "adagrad": Optimizer(adaptive=True, decaying=True),
    "rmsprop": Optimizer(adaptive=True),
    "adam": Optimizer(adaptive=True),
    "adamw": Optimizer(adaptive=True),
}

# Config field kind -> its choices, in the order the README lists them.
CHOICES: dict[str, tuple[str, ...]] = {
    "arch": tuple(ARCHS),
    "activation": tuple(ACTIVATIONS),
    "init": INITS,
    "norm": NORMS,
    "data": tuple(DATASETS),
    "optim": tuple(OPTIMIZERS),
}

ALIASES: dict[str, dict[str, str]] = {
    "arch": {
        "vanilla_rnn": "rnn",
        "simple_rnn": "rnn",
        "simplernn": "rnn",
        "resnet": "resmlp",
        "residual": "resmlp",
        "conv": "cnn",
        "dense": "mlp",
    },
    "activation": {
        "logistic": "sigmoid",
        "leakyrelu": "leaky_relu",
        "lrelu": "leaky_relu",
        "identity": "linear",
        "none": "linear",
    },
    "init": {
        "glorot_uniform": "xavier_uniform",
        "glorot_normal": "xavier_normal",
        "kaiming_normal": "he_normal",
        "kaiming_uniform": "he_uniform",
        "lecun": "lecun_normal",
        "random_normal": "normal",
        "random_uniform": "uniform",
        "xavier": "xavier_normal",
        "glorot": "xavier_normal",
        "he": "he_normal",
        "kaiming": "he_normal",
        "pytorch": "default",
    },
    "norm": {
        "off": "none",
        "batchnorm": "batch_pre",
        "batch_norm": "batch_pre",
        "bn": "batch_pre",
        "batch": "batch_pre",
        "layernorm": "layer",
        "layer_norm": "layer",
        "ln": "layer",
    },
    "data": {"two_moons": "moons", "adding_problem": "adding", "memory": "copy", "blobs": "gaussians"},
    "optim": {"gd": "sgd", "nag": "nesterov", "sgd_momentum": "momentum", "adam_w": "adamw"},
}


def canonical(kind: str, value: str) -> str:
    """'Glorot-Uniform' -> 'xavier_uniform': case, '-' and spaces folded, then the aliases."""
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES[kind].get(key, key)


def hidden_activation(arch: str, activation: str) -> str:
    """The activation the hidden layers really apply: a recurrent cell uses its own (tanh; a vanilla RNN may
    use relu instead)."""
    if not ARCHS[arch].recurrent:
        return activation
    return "relu" if arch == "rnn" and activation == "relu" else "tanh"


def data_for(arch: str) -> tuple[str, ...]:
    """The data sets an architecture takes, in table order."""
    kinds = ARCHS[arch].data_kinds
    return tuple(name for name, kind in DATASETS.items() if kind in kinds)


class UnknownChoice(LookupError):
    """A registry was asked for a name it does not have: a bug (the config only allows known names)."""

    def __str__(self) -> str:
        return str(self.args[0])


T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Things built by name. A miss raises UnknownChoice naming what exists, never a silent default."""

    def __init__(self, kind: str, entries: Mapping[str, T]):
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            raise UnknownChoice(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; known: {known}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
