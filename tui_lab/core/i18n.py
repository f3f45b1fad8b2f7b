"""Which language the lessons are shown in: `--lang`, else the locale (LC_ALL, LC_MESSAGES, LANG), else English."""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGUAGES = {"en": "English", "pt": "Português (Brasil)"}
DEFAULT_LANGUAGE = "en"


def normalise_language(code: str) -> str | None:
    """'pt_BR.UTF-8' -> 'pt'; 'en-US' -> 'en'; an unsupported language -> None."""
    base = code.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return base if base in LANGUAGES else None


def pick_language(requested: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    if requested:
        lang = normalise_language(requested)
        if lang is None:
            from tui_lab.core.errors import UserError

            raise UserError(f"--lang {requested!r} is not supported; allowed: {', '.join(LANGUAGES)}")
        return lang
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value and value not in ("C", "POSIX"):
            # The first variable that is set decides, as in POSIX locale lookup.
            return normalise_language(value) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE
