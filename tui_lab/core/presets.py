"""Finding and loading presets: the bundled lessons, the user's own directory, or an explicit path.

A user preset with a bundled preset's name wins (so a student can adapt a lesson in place), and the listing
says which is which.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui_lab.core.config import LabConfig, load_config, read_limited
from tui_lab.core.errors import UserError, did_you_mean
from tui_lab.core.i18n import _

PRESETS_ENV = "TUI_LAB_PRESETS"


@dataclass(frozen=True)
class PresetRef:
    name: str
    path: Path
    source: str  # "bundled" | "user"
    overrides_bundled: bool = False


def bundled_dir() -> Path:
    """tui_lab/_presets in an installed wheel; the repository's presets/ in a source or editable checkout."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_presets"
    return packaged if packaged.is_dir() else here.parent / "presets"


def user_dir() -> Path:
    env = os.environ.get(PRESETS_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_config_path("tui-lab") / "presets"


def _scan(directory: Path, warn: Callable[[str], None] | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        entries = sorted(directory.glob("*.toml"))
    except OSError as exc:
        if warn:
            warn(_("{path}: cannot list presets ({error}); skipped").format(path=directory, error=exc.strerror or exc))
        return found
    for path in entries:
        try:
            regular = path.is_file()  # follows a symlink: one to /dev/zero or a FIFO is not a preset
        except OSError:
            regular = False
        if not regular or not os.access(path, os.R_OK):
            if warn:
                why = _("not readable") if regular else _("not a regular file")
                warn(_("{path}: {why}; skipped").format(path=path, why=why))
            continue
        found[path.stem] = path
    return found


def discover(warn: Callable[[str], None] | None = None) -> dict[str, PresetRef]:
    """All presets by name, sorted; user presets replace bundled ones of the same name."""
    bundled = _scan(bundled_dir(), warn)
    udir = user_dir()
    user = _scan(udir, warn) if udir.is_dir() else {}
    refs = {name: PresetRef(name, path, "bundled") for name, path in bundled.items()}
    for name, path in user.items():
        refs[name] = PresetRef(name, path, "user", overrides_bundled=name in bundled)
    return dict(sorted(refs.items()))


def looks_like_path(spec: str) -> bool:
    return spec.endswith(".toml") or os.sep in spec or "/" in spec or spec.startswith(".")


def resolve(spec: str, warn: Callable[[str], None] | None = None) -> tuple[str, Path]:
    """A preset name or a path -> (display name, file path). Raises UserError naming what exists."""
    if not spec.strip():
        raise UserError(_("the preset name is empty; give a name from `tui-lab presets` or a path to a TOML file"))
    if looks_like_path(spec):
        path = expand_user(spec)
        if not path.exists():
            raise UserError(_("{path}: no such file").format(path=spec))
        return path.stem, path
    refs = discover(warn)
    if spec in refs:
        return spec, refs[spec].path
    names = list(refs)
    hint = did_you_mean(spec, names)
    message = _("no preset named {name}{hint}; run `tui-lab presets` to list them ({names})")
    raise UserError(message.format(name=repr(spec), hint=hint, names=", ".join(names) if names else _("none found")))


def load_preset(spec: str, warn: Callable[[str], None] | None = None) -> tuple[str, LabConfig]:
    name, path = resolve(spec, warn)
    return name, load_config(path)


def expand_user(spec: str) -> Path:
    """`~/x.toml` -> the home directory's; `~nouser/x.toml` is the user's error, not a crash."""
    try:
        return Path(spec).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        user = spec[1:].split("/", 1)[0]
        raise UserError(_("{path}: no user named {user} for ~{user}").format(path=spec, user=user)) from None


def read_title(path: Path, lang: str = "en") -> str:
    """The preset's title in `lang` without validating the whole file (fast, for listings). A file that cannot
    be read (a FIFO, a huge file, bad UTF-8 or TOML) gives '(unreadable: why)', never an exception or a hang."""
    try:
        data = tomllib.loads(read_limited(path).decode("utf-8"))
    except UserError as exc:
        return _("(unreadable: {error})").format(error=str(exc).removeprefix(f"{path}: "))
    except RecursionError:
        return _("(unreadable: {error})").format(error=_("nested too deeply"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return _("(unreadable: {error})").format(error=exc)
    tr = data.get("translations", {})
    localized = tr.get(lang, {}) if isinstance(tr, dict) else {}
    title = (localized.get("title") if isinstance(localized, dict) else None) or data.get("title", "")
    return str(title)
