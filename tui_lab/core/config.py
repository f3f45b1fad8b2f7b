"""The lab configuration: schema, TOML load/dump, dotted overrides, and error messages that teach.

The schema is the preset/config file contract of DESIGN.md §4. Validation is strict (a string is never
silently read as a number, unknown keys are refused) so that a typo in a file is reported, not ignored.
Command-line overrides (`--set model.depth=20`) are parsed as TOML values and pass the same validation.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tui_lab.core.errors import ConfigError, UserError, did_you_mean

# ---------------------------------------------------------------------------------------------------------
# Choices and the aliases a user would type (Keras and PyTorch spellings).

Arch = Literal["mlp", "resmlp", "cnn", "rnn", "lstm", "gru"]
Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "selu", "linear"]
Init = Literal[
    "default", "normal", "uniform", "xavier_uniform", "xavier_normal",
    "he_normal", "he_uniform", "orthogonal", "lecun_normal",
]  # fmt: skip
Norm = Literal["none", "batch_pre", "batch_post", "layer"]
DataName = Literal["spiral", "moons", "circles", "xor", "gaussians", "digits", "adding", "copy"]
OptimName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]

ARCHS: tuple[str, ...] = get_args(Arch)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
INITS: tuple[str, ...] = get_args(Init)
NORMS: tuple[str, ...] = get_args(Norm)
DATASETS: tuple[str, ...] = get_args(DataName)
OPTIMIZERS: tuple[str, ...] = get_args(OptimName)

RECURRENT_ARCHS = ("rnn", "lstm", "gru")
SEQUENCE_DATASETS = ("adding", "copy")
POINT_DATASETS = ("spiral", "moons", "circles", "xor", "gaussians")

ALIASES: dict[str, dict[str, str]] = {
    "arch": {"vanilla_rnn": "rnn", "simple_rnn": "rnn", "simplernn": "rnn", "resnet": "resmlp",
             "residual": "resmlp", "conv": "cnn", "dense": "mlp"},
    "activation": {"logistic": "sigmoid", "leakyrelu": "leaky_relu", "lrelu": "leaky_relu",
                   "identity": "linear", "none": "linear"},
    "init": {"glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal",
             "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform", "lecun": "lecun_normal",
             "random_normal": "normal", "random_uniform": "uniform", "xavier": "xavier_normal",
             "glorot": "xavier_normal", "he": "he_normal", "kaiming": "he_normal", "pytorch": "default"},
    "norm": {"off": "none", "batchnorm": "batch_pre", "batch_norm": "batch_pre", "bn": "batch_pre",
             "batch": "batch_pre", "layernorm": "layer", "layer_norm": "layer", "ln": "layer"},
    "data": {"two_moons": "moons", "adding_problem": "adding", "memory": "copy", "blobs": "gaussians"},
    "optim": {"gd": "sgd", "nag": "nesterov", "sgd_momentum": "momentum", "adam_w": "adamw"},
}  # fmt: skip


def _choice(kind: str):
    """A before-validator that folds case, '-' and aliases into the canonical choice name."""

    def normalise(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        return ALIASES[kind].get(key, key)

    return BeforeValidator(normalise)


def _device(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    dev = value.strip().lower()
    if dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit()):
        return dev
    raise ValueError("device")


# ---------------------------------------------------------------------------------------------------------
# The schema. Defaults are the documented ones (DESIGN.md §4); the ranges are what the lab can train.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, frozen=False)


class ModelConfig(_Section):
    arch: Annotated[Arch, _choice("arch")] = "mlp"
    depth: Annotated[int, Field(ge=1, le=200)] = 10
    width: Annotated[int, Field(ge=1, le=4096)] = 64
    activation: Annotated[Activation, _choice("activation")] = "sigmoid"
    init: Annotated[Init, _choice("init")] = "default"
    init_scale: Annotated[float, Field(gt=0, le=100)] = 0.01
    norm: Annotated[Norm, _choice("norm")] = "none"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class DataConfig(_Section):
    name: Annotated[DataName, _choice("data")] = "spiral"
    samples: Annotated[int, Field(ge=16, le=1_000_000)] = 2000
    noise: Annotated[float, Field(ge=0, le=10)] = 0.1
    classes: Annotated[int, Field(ge=2, le=10)] = 3
    seq_len: Annotated[int, Field(ge=2, le=1000)] = 50
    val_fraction: Annotated[float, Field(ge=0.05, le=0.5)] = 0.2


class OptimConfig(_Section):
    name: Annotated[OptimName, _choice("optim")] = "sgd"
    lr: Annotated[float, Field(gt=0, le=100)] = 0.1
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0
    l1: Annotated[float, Field(ge=0, le=10)] = 0.0
    clip_norm: Annotated[float, Field(ge=0, le=1e6)] = 0.0


class TrainConfig(_Section):
    steps: Annotated[int, Field(ge=1, le=100_000_000)] = 2000
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 64
    log_every: Annotated[int, Field(ge=1, le=100_000)] = 10
    eval_every: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    device: Annotated[str, BeforeValidator(_device)] = "auto"


class Translation(_Section):
    title: str = ""
    lesson: str = ""


class LabConfig(_Section):
    title: str = ""
    lesson: str = ""
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    # Title and lesson in other languages, keyed by language code: [translations.pt]
    translations: dict[str, Translation] = Field(default_factory=dict)

    @property
    def recurrent(self) -> bool:
        return self.model.arch in RECURRENT_ARCHS

    def title_for(self, lang: str = "en") -> str:
        tr = self.translations.get(lang)
        return (tr.title if tr and tr.title else "") or self.title

    def lesson_for(self, lang: str = "en") -> str:
        tr = self.translations.get(lang)
        return (tr.lesson if tr and tr.lesson else "") or self.lesson


SECTIONS: dict[str, type[_Section]] = {
    "model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "train": TrainConfig,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Loading, validating and dumping.


def default_config() -> LabConfig:
    return LabConfig()


def parse_config(data: dict[str, Any], source: str | None = None) -> LabConfig:
    """Validate a raw mapping (from TOML) merged over the defaults; raise ConfigError naming `source`."""
    try:
        cfg = LabConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, data), source) from None
    problems = _cross_checks(cfg)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def loads_config(text: str, source: str | None = None) -> LabConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source) from None
    return parse_config(data, source)


def load_config(path: str | Path) -> LabConfig:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a TOML file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"], str(path)) from None
    return loads_config(text, str(path))


def config_to_dict(cfg: LabConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="python")


def with_overrides(cfg: LabConfig, overrides: list[str], source: str = "--set") -> LabConfig:
    """Apply `section.key=value` overrides; values are TOML literals, bare words are strings."""
    if not overrides:
        return cfg
    data = config_to_dict(cfg)
    for item in overrides:
        key, value = parse_override(item)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if part in node:
                    raise ConfigError([f"{key}: {part} is not a table"], source)
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return parse_config(data, source)


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.depth=20")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: relu, he_normal, cuda:1
    return key, value


def dumps_config(cfg: LabConfig) -> str:
    """The configuration as TOML, every key written; `loads_config(dumps_config(c)) == c`."""
    data = config_to_dict(cfg)
    lines: list[str] = []
    for key in ("title", "lesson", "seed"):
        lines.append(f"{key} = {_toml_value(data[key])}")
    for section in SECTIONS:
        lines.append("")
        lines.append(f"[{section}]")
        width = max(len(k) for k in data[section])
        for key, value in data[section].items():
            lines.append(f"{key:<{width}} = {_toml_value(value)}")
    for lang, tr in data["translations"].items():
        lines.append("")
        lines.append(f"[translations.{_toml_key(lang)}]")
        for key, value in tr.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    return _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_multiline(value) if "\n" in value else _toml_string(value)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\f": "\\f", "\r": "\\r"}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\u{ord(ch):04x}"
    return ch


def _toml_string(text: str) -> str:
    return '"' + "".join("\\n" if c == "\n" else _escape(c) for c in text) + '"'


def _toml_multiline(text: str) -> str:
    # The newline right after the opening quotes is trimmed by TOML readers.
    return '"""\n' + "".join("\n" if c == "\n" else _escape(c) for c in text) + '"""'


# ---------------------------------------------------------------------------------------------------------
# Cross-field rules: things each key allows alone but not together.

ARCH_DATA = {
    "mlp": POINT_DATASETS + ("digits",),
    "resmlp": POINT_DATASETS + ("digits",),
    "cnn": ("digits",),
    "rnn": SEQUENCE_DATASETS,
    "lstm": SEQUENCE_DATASETS,
    "gru": SEQUENCE_DATASETS,
}


def _cross_checks(cfg: LabConfig) -> list[str]:
    problems = []
    allowed = ARCH_DATA[cfg.model.arch]
    if cfg.data.name not in allowed:
        problems.append(
            f'data.name = "{cfg.data.name}" does not fit model.arch = "{cfg.model.arch}"; '
            f"{cfg.model.arch} takes {', '.join(allowed)}"
        )
    if cfg.model.norm.startswith("batch") and cfg.train.batch_size < 2:
        problems.append(
            f'model.norm = "{cfg.model.norm}" needs train.batch_size >= 2 (BatchNorm learns batch statistics); '
            f"got {cfg.train.batch_size}"
        )
    if cfg.recurrent and cfg.model.norm.startswith("batch"):
        problems.append(
            f'model.norm = "{cfg.model.norm}" is not available for recurrent models; use none or layer'
        )
    return problems


# ---------------------------------------------------------------------------------------------------------
# Turning pydantic's errors into one line per problem that names the key, the value and what is allowed.


def _explain(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        value = _lookup(data, loc, err.get("input"))  # what the user wrote, before alias folding
        problems.append(_explain_one(err["type"], loc, value, err.get("ctx") or {}))
    return list(dict.fromkeys(problems))  # keep order, drop repeats


def _lookup(data: Any, loc: list[str], fallback: Any) -> Any:
    for part in loc:
        if not isinstance(data, dict) or part not in data:
            return fallback
        data = data[part]
    return data


def _field_info(loc: list[str]):
    """The (model class, field name) a location points at, or (None, None)."""
    if len(loc) == 3 and loc[0] == "translations":  # translations.<lang>.<key>
        return Translation, loc[2] if loc[2] in Translation.model_fields else None
    model: Any = LabConfig
    for i, part in enumerate(loc):
        if model is None or part not in model.model_fields:
            if model is LabConfig and i == 0:
                return None, None
            return model, None
        if i == len(loc) - 1:
            return model, part
        model = SECTIONS.get(part) if model is LabConfig else None
    return None, None


def _allowed(model: Any, name: str) -> str:
    info = model.model_fields[name]
    choices = _choices(model, name)
    if choices:
        return "one of " + ", ".join(choices)
    if name == "device":
        return "auto, cpu, cuda, cuda:N or mps"
    if info.annotation is str:
        return "a string"
    kind = "an integer" if info.annotation is int else "a number"
    bounds = []
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            bounds.append(f">= {_num(meta.ge)}")
        elif isinstance(meta, annotated_types.Gt):
            bounds.append(f"> {_num(meta.gt)}")
        elif isinstance(meta, annotated_types.Le):
            bounds.append(f"<= {_num(meta.le)}")
        elif isinstance(meta, annotated_types.Lt):
            bounds.append(f"< {_num(meta.lt)}")
    return kind + (" " + " and ".join(bounds) if bounds else "")


def _choices(model: Any, name: str) -> tuple[str, ...]:
    """The allowed strings of a Literal field (pydantic keeps the Literal, the Annotated metadata apart)."""
    args = get_args(model.model_fields[name].annotation)
    return args if args and all(isinstance(a, str) for a in args) else ()


def _num(x: float) -> str:
    if isinstance(x, int) and abs(x) >= 100_000:
        return f"{x:,}".replace(",", "_")
    return f"{x:g}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float):
        return _toml_value(value)
    return str(value)


def _explain_one(kind: str, loc: list[str], value: Any, ctx: dict[str, Any]) -> str:
    key = ".".join(loc) or "(top level)"
    model, name = _field_info(loc)
    if kind == "extra_forbidden":
        parent = loc[:-1]
        siblings = _siblings(parent)
        hint = did_you_mean(loc[-1], siblings) if siblings else ""
        where = f"in [{'.'.join(parent)}]" if parent else "at the top level"
        return f"unknown key {key} {where}{hint}; allowed: {', '.join(siblings)}"
    if len(loc) == 2 and loc[0] == "translations":
        return f"{key} must be a table with title and lesson ([{key}]), got {_show(value)}"
    if model is None or name is None:
        return f"{key}: {ctx.get('error') or kind}"
    allowed = _allowed(model, name)
    if kind == "literal_error":
        hint = did_you_mean(value, _choices(model, name)) if isinstance(value, str) else ""
        return f"{key} = {_show(value)} is not {allowed}{hint}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{key} must be a table ([{key}]), got {_show(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{key} = {_show(value)} is out of range; allowed: {allowed}"
    if kind == "finite_number":
        return f"{key} = {_show(value)} is not finite; allowed: {allowed}"
    if kind == "value_error":
        return f"{key} = {_show(value)} is not {allowed}"
    # int_type, float_type, string_type, int_from_float, bool_type, ...
    return f"{key} = {_show(value)} has the wrong type; allowed: {allowed}"


def _siblings(parent: list[str]) -> list[str]:
    if not parent:
        return list(LabConfig.model_fields)
    if len(parent) == 1 and parent[0] in SECTIONS:
        return list(SECTIONS[parent[0]].model_fields)
    if len(parent) == 2 and parent[0] == "translations":
        return list(Translation.model_fields)
    return []
