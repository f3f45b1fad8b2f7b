"""The lab configuration: schema, TOML load/dump, dotted overrides, and error messages that teach.

The schema is the preset/config file contract (README: Configuration files). Validation is strict (a string
is never silently read as a number, unknown keys are refused) so that a typo in a file is reported, not
ignored. Command-line overrides (`--set model.depth=20`) are parsed as TOML values and pass the same
validation. The allowed names and their aliases come from `choices`.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import annotated_types
import tomli_w
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tui_lab.core import choices
from tui_lab.core.errors import ConfigError, UserError, did_you_mean
from tui_lab.core.fmt import literal
from tui_lab.core.i18n import N_, _, ngettext

# Literal types built from the choice table, so pydantic checks them and error messages list them.
Arch = Literal[choices.CHOICES["arch"]]  # type: ignore[valid-type]
Activation = Literal[choices.CHOICES["activation"]]  # type: ignore[valid-type]
Init = Literal[choices.CHOICES["init"]]  # type: ignore[valid-type]
Norm = Literal[choices.CHOICES["norm"]]  # type: ignore[valid-type]
DataName = Literal[choices.CHOICES["data"]]  # type: ignore[valid-type]
OptimName = Literal[choices.CHOICES["optim"]]  # type: ignore[valid-type]
DEVICES = N_("auto, cpu, cuda, cuda:N or mps")  # shown through _()


def _choice(kind: str):
    """A before-validator that folds case, '-' and aliases into the canonical choice name."""
    return BeforeValidator(lambda value: choices.canonical(kind, value) if isinstance(value, str) else value)


def _device(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    dev = value.strip().lower()
    if dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit()):
        return dev
    raise ValueError("device")


# ---------------------------------------------------------------------------------------------------------
# The schema. Defaults are the documented ones (README: Configuration files); the ranges are what the lab
# can train. Sections are frozen: a configuration is shared between threads and never changed in place.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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


VIEWS = ("config", "gradients", "curves", "layers", "learned")  # the main screen's views (keys 1-5)


class ScreenConfig(_Section):
    """Where a lesson opens the screen and how fast it lets the run go; the training ignores it."""

    view: Literal["auto", "config", "gradients", "curves", "layers", "learned"] = "auto"  # auto: the first
    layer: str = ""  # the probe point the histogram shows first ("L1", "out"; "" = the input side)
    pace: Literal["slow", "normal", "max"] = "max"  # snapshots a second: 2, 8, as fast as it goes


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
    screen: ScreenConfig = Field(default_factory=ScreenConfig)
    # Title and lesson in other languages, keyed by language code: [translations.pt]
    translations: dict[str, Translation] = Field(default_factory=dict)

    @property
    def recurrent(self) -> bool:
        return choices.ARCHS[self.model.arch].recurrent

    def title_for(self, lang: str = "en") -> str:
        tr = self.translations.get(lang)
        return (tr.title if tr and tr.title else "") or self.title

    def lesson_for(self, lang: str = "en") -> str:
        tr = self.translations.get(lang)
        return (tr.lesson if tr and tr.lesson else "") or self.lesson


SECTIONS: dict[str, type[_Section]] = {  # what trains: the config panel's keys, a run's name
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}
ALL_SECTIONS: dict[str, type[_Section]] = {**SECTIONS, "screen": ScreenConfig}


# ---------------------------------------------------------------------------------------------------------
# Loading, validating and dumping.


MAX_FILE_BYTES = 1_000_000  # a preset or config file; the bundled lessons are ~3 kB
MAX_DEPTH = 16  # tables and arrays inside each other; the schema needs 3 ([translations.pt] title)
MAX_PROBLEMS = 5  # problems listed in one error; the rest are counted


def parse_config(data: dict[str, Any], source: str | None = None) -> LabConfig:
    """Validate a raw mapping (from TOML) merged over the defaults; raise ConfigError naming `source`."""
    deep = _too_deep(data)
    if deep:  # before pydantic and _explain, which walk the value recursively
        raise ConfigError([deep], source)
    try:
        cfg = LabConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_capped(_explain(exc, data)), source) from None
    problems = _cross_checks(cfg)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def loads_config(text: str, source: str | None = None) -> LabConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_("not valid TOML: {error}").format(error=exc)], source) from None
    except RecursionError:  # tomllib recurses once per level of [ or {
        raise ConfigError([_too_deep_message()], source) from None
    return parse_config(data, source)


def load_config(path: str | Path) -> LabConfig:
    path = Path(path)
    raw = read_limited(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_("not UTF-8 text (byte {byte})").format(byte=exc.start)], str(path)) from None
    return loads_config(text, str(path))


def read_limited(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else a UserError naming the path. Opened without
    blocking (a FIFO would wait for a writer forever) and checked on the open descriptor (a symlink to /dev/zero,
    a device or a directory is refused before a byte is read); at most limit + 1 bytes are ever read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UserError(_("{path}: no such file").format(path=path)) from None
    except IsADirectoryError:
        raise UserError(_("{path}: is a directory, not a TOML file").format(path=path)) from None
    except OSError as exc:
        raise UserError(_("{path}: cannot read ({error})").format(path=path, error=exc.strerror or exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(_("{path}: is a directory, not a TOML file").format(path=path))
        if not stat.S_ISREG(info.st_mode):
            kind = _("a FIFO") if stat.S_ISFIFO(info.st_mode) else _("a device or special file")
            raise UserError(_("{path}: is {kind}, not a regular file").format(path=path, kind=kind))
        if info.st_size > limit:
            raise UserError(_too_big(path, info.st_size, limit))
        chunks, size = [], 0
        while size <= limit:  # the file may grow while it is read
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UserError(_too_big(path, size, limit))
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(_("{path}: cannot read ({error})").format(path=path, error=exc.strerror or exc)) from None
    finally:
        os.close(fd)


def _too_big(path: Path, size: int, limit: int) -> str:
    message = _("{path}: {size}; a preset file is at most {limit}")
    return message.format(path=path, size=_megabytes(size), limit=_megabytes(limit))


def _megabytes(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000} MB"
    return f"{n / 1e6:.1f} MB" if n >= 1_100_000 else f"{n:,} bytes"  # never "1.0 MB; ... at most 1 MB"


def _too_deep_message(key: str = "") -> str:
    message = _("nested more than {depth} levels deep (tables or arrays inside each other)").format(depth=MAX_DEPTH)
    return f"{key}: {message}" if key else message


def _too_deep(data: Any) -> str:
    """The problem with a value nested deeper than MAX_DEPTH, or ''. Walked with a stack, not recursion."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            return _too_deep_message(key)
        if isinstance(value, dict):
            stack += [(v, depth + 1, f"{key}.{k}" if key else str(k)) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, depth + 1, key) for v in value]
    return ""


def _capped(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS problems, the rest counted: a file of 10 000 bad keys is still a short message."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS + 1
    more = ngettext("... and {count} more problem", "... and {count} more problems", rest).format(count=rest)
    return [*problems[: MAX_PROBLEMS - 1], more]


def config_to_dict(cfg: LabConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="python")


def with_overrides(cfg: LabConfig, overrides: list[str], source: str = "--set") -> LabConfig:
    """Apply `section.key=value` overrides; values are TOML literals, bare words are strings."""
    if not overrides:
        return cfg
    data = config_to_dict(cfg)
    for item in overrides:
        key, text = parse_key_value(item, "--set", "model.depth=20")
        problem = value_problem(text)
        if problem:
            raise ConfigError([f"{key}: {problem}"], source)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if part in node:
                    raise ConfigError([_("{key}: {part} is not a table").format(key=key, part=part)], source)
                child = node[part] = {}
            node = child
        node[parts[-1]] = parse_value(text)
    return parse_config(data, source)


def parse_key_value(item: str, flag: str, example: str, shape: str = "KEY=VALUE") -> tuple[str, str]:
    """'model.depth = 20' -> ('model.depth', '20'): a dotted key and the text after '=', for --set and --grid."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        message = _("{flag} {item}: expected {shape}, e.g. {flag} {example}")
        raise UserError(message.format(flag=flag, item=repr(item), shape=shape, example=example))
    return key, text.strip()


def value_problem(text: str) -> str:
    """Why `text` is not one value for `--set`/`--grid`, or '': a line break would let one value add keys of its
    own (`--steps $'3\\nseed=5'`), and a value nested past MAX_DEPTH is refused before it is parsed."""
    if "\n" in text or "\r" in text:
        return _("a value is one line; got {value}").format(value=_show(text[:60] + ("..." if len(text) > 60 else "")))
    depth, quote, escaped = 0, "", False
    for char in text:  # brackets outside strings; a value that does not parse is a bare word anyway
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return _too_deep_message()
        elif char in "]}":
            depth -= 1
    return ""


def parse_value(text: str) -> Any:
    """A TOML literal (20, 1e-3, true, "x"); anything else is a bare word kept as a string (relu, cuda:1).
    Exactly one value: text that parses into more than one key (a line break) stays a string."""
    try:
        data = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
    return data["v"] if len(data) == 1 else text


def differences(base: LabConfig, cfg: LabConfig) -> list[tuple[str, Any, Any]]:
    """(dotted key, base value, value) for every training key that differs, in file order (seed first); the
    device is where it runs, not what it trains, and is left out."""
    a, b = config_to_dict(base), config_to_dict(cfg)
    out = [("seed", a["seed"], b["seed"])] if a["seed"] != b["seed"] else []
    for section in SECTIONS:
        out += [(f"{section}.{k}", v, b[section][k]) for k, v in a[section].items() if v != b[section][k]]
    return [item for item in out if item[0] != "train.device"]


def short(key: str, value: Any) -> str:
    """A value as a run's name shows it: a choice by itself (relu), a number with its key (lr=0.01)."""
    name = key.rsplit(".", 1)[-1]
    if isinstance(value, str) and name != "device":
        return value
    if isinstance(value, float):
        return f"{name}={value:g}"
    return f"{name}={value}"


def run_name(preset: str, base: LabConfig | None, cfg: LabConfig, most: int = 4) -> str:
    """A run named after its preset and what was changed from it: 'deep-sigmoid+relu+he_normal'."""
    if base is None:
        return preset
    changed = [short(key, value) for key, _was, value in differences(base, cfg)]
    if len(changed) > most:
        changed = [*changed[: most - 1], f"{len(changed) - most + 1}more"]
    return "+".join([preset, *changed])


def dumps_config(cfg: LabConfig) -> str:
    """The configuration as TOML, every key written; `loads_config(dumps_config(c)) == c`."""
    data = config_to_dict(cfg)
    if not data["translations"]:
        del data["translations"]  # no empty [translations] table
    # Lessons read best as multi-line strings, but a TOML reader turns a CR LF inside one into LF: a text with
    # a CR is written with escapes instead, so that the file still loads back exactly.
    return tomli_w.dumps(data, multiline_strings=not _has_cr(data))


def _has_cr(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_cr(v) for v in value.values())
    return isinstance(value, str) and "\r" in value


# ---------------------------------------------------------------------------------------------------------
# Cross-field rules: things each key allows alone but not together.


def _cross_checks(cfg: LabConfig) -> list[str]:
    problems = []
    allowed = choices.data_for(cfg.model.arch)
    if cfg.data.name not in allowed:
        message = _('data.name = "{data}" does not fit model.arch = "{arch}"; {arch} takes {allowed}')
        problems.append(message.format(data=cfg.data.name, arch=cfg.model.arch, allowed=", ".join(allowed)))
    if cfg.model.norm.startswith("batch") and cfg.train.batch_size < 2:
        message = _('model.norm = "{norm}" needs train.batch_size >= 2 (BatchNorm learns batch statistics); got {size}')
        problems.append(message.format(norm=cfg.model.norm, size=cfg.train.batch_size))
    if cfg.recurrent and cfg.model.norm.startswith("batch"):
        message = _('model.norm = "{norm}" is not available for recurrent models; use none or layer')
        problems.append(message.format(norm=cfg.model.norm))
    return problems


# ---------------------------------------------------------------------------------------------------------
# Turning pydantic's errors into one line per problem that names the key, the value and what is allowed.


def _explain(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    problems = []
    unknown: dict[tuple[str, ...], list[str]] = {}  # unknown keys by their table: one problem per table
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "extra_forbidden":
            keys = unknown.setdefault(tuple(loc[:-1]), [])
            if not keys:
                problems.append(tuple(loc[:-1]))  # its place in the order; filled in below
            keys.append(loc[-1])
            continue
        value = _lookup(data, loc, err.get("input"))  # what the user wrote, before alias folding
        problems.append(_explain_one(err["type"], loc, value, err.get("ctx") or {}))
    problems = [_unknown_keys(list(p), unknown[p]) if isinstance(p, tuple) else p for p in problems]
    return list(dict.fromkeys(problems))  # keep order, drop repeats


def _unknown_keys(parent: list[str], names: list[str]) -> str:
    if len(names) == 1:
        return _explain_one("extra_forbidden", [*parent, names[0]], None, {})
    siblings = _siblings(parent)
    where = _("in [{table}]").format(table=".".join(parent)) if parent else _("at the top level")
    shown = ", ".join(".".join([*parent, name]) for name in names[:3])
    if len(names) > 3:
        shown += " " + _("and {count} more").format(count=len(names) - 3)
    message = _("unknown keys {keys} {where}; allowed: {allowed}")
    return message.format(keys=shown, where=where, allowed=", ".join(siblings))


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
        model = ALL_SECTIONS.get(part) if model is LabConfig else None
    return None, None


def _allowed(model: Any, name: str) -> str:
    info = model.model_fields[name]
    allowed = field_choices(model, name)
    if allowed:
        return _("one of {choices}").format(choices=", ".join(allowed))
    if name == "device":
        return _(DEVICES)
    if info.annotation is str:
        return _("a string")
    kind = _("an integer") if info.annotation is int else _("a number")
    bounds = []
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            bounds.append(f">= {literal(meta.ge)}")
        elif isinstance(meta, annotated_types.Gt):
            bounds.append(f"> {literal(meta.gt)}")
        elif isinstance(meta, annotated_types.Le):
            bounds.append(f"<= {literal(meta.le)}")
        elif isinstance(meta, annotated_types.Lt):
            bounds.append(f"< {literal(meta.lt)}")
    return kind + (" " + _(" and ").join(bounds) if bounds else "")


def field_choices(model: Any, name: str) -> tuple[str, ...]:
    """The allowed strings of a Literal field (pydantic keeps the Literal, the Annotated metadata apart)."""
    args = get_args(model.model_fields[name].annotation)
    return args if args and all(isinstance(a, str) for a in args) else ()


SHOW_MAX_CHARS = 60  # a value echoed in a message is cut here: the message stays one short line


def _show(value: Any) -> str:
    """A value as it would be written in TOML, strings quoted and escaped, lists on one line, cut to
    SHOW_MAX_CHARS with "..."."""
    shown = _show_whole(value)
    return shown if len(shown) <= SHOW_MAX_CHARS else shown[: SHOW_MAX_CHARS - 3] + "..."


def _show_whole(value: Any) -> str:
    if isinstance(value, dict):
        return _("a table")
    if isinstance(value, list):
        return "[" + ", ".join(_show_whole(v) for v in value[:SHOW_MAX_CHARS]) + "]"
    if isinstance(value, (str, bool, int, float)):
        shown = tomli_w.dumps({"v": value}).strip().removeprefix("v = ")
        # One line, always: a character that breaks a line or prints nothing (U+0085, U+2028...) as its escape
        return "".join(c if c.isprintable() else f"\\u{ord(c):04X}" for c in shown)
    return str(value)


def _explain_one(kind: str, loc: list[str], value: Any, ctx: dict[str, Any]) -> str:
    key = ".".join(loc) or _("(top level)")
    model, name = _field_info(loc)
    if kind == "extra_forbidden":
        parent = loc[:-1]
        siblings = _siblings(parent)
        hint = did_you_mean(loc[-1], siblings) if siblings else ""
        where = _("in [{table}]").format(table=".".join(parent)) if parent else _("at the top level")
        message = _("unknown key {key} {where}{hint}; allowed: {allowed}")
        return message.format(key=key, where=where, hint=hint, allowed=", ".join(siblings))
    if len(loc) == 2 and loc[0] == "translations":
        return _("{key} must be a table with title and lesson ([{key}]), got {value}").format(
            key=key, value=_show(value)
        )
    if model is None or name is None:
        return f"{key}: {ctx.get('error') or kind}"
    allowed = _allowed(model, name)
    shown = _show(value)
    if kind == "literal_error":
        hint = did_you_mean(value, field_choices(model, name)) if isinstance(value, str) else ""
        return _("{key} = {value} is not {allowed}{hint}").format(key=key, value=shown, allowed=allowed, hint=hint)
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return _("{key} must be a table ([{key}]), got {value}").format(key=key, value=shown)
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _("{key} = {value} is out of range; allowed: {allowed}").format(key=key, value=shown, allowed=allowed)
    if kind == "finite_number":
        return _("{key} = {value} is not finite; allowed: {allowed}").format(key=key, value=shown, allowed=allowed)
    if kind == "value_error":
        return _("{key} = {value} is not {allowed}").format(key=key, value=shown, allowed=allowed)
    # int_type, float_type, string_type, int_from_float, bool_type, ...
    return _("{key} = {value} has the wrong type; allowed: {allowed}").format(key=key, value=shown, allowed=allowed)


def _siblings(parent: list[str]) -> list[str]:
    if not parent:
        return list(LabConfig.model_fields)
    if len(parent) == 1 and parent[0] in ALL_SECTIONS:
        return list(ALL_SECTIONS[parent[0]].model_fields)
    if len(parent) == 2 and parent[0] == "translations":
        return list(Translation.model_fields)
    return []
