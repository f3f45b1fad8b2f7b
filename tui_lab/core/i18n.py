"""Which language the lab speaks, and the translation of its words (gettext).

The language is `--lang`, else the locale (LC_ALL, LC_MESSAGES, LANG), else English (`pick_language`). Lessons
and titles come in the presets themselves ([translations.pt]); every other word a user sees (panel titles,
keys, findings, progress lines, CLI help and errors) is looked up in the gettext catalogue
tui_lab/locale/<lang>/LC_MESSAGES/tui_lab.mo with `_()`. English is the identity: the source strings are the
English ones, and a string missing from a catalogue shows in English.

`set_language` is called once at start-up (the CLI, or the app when it is made) and swaps one module-level
translation object: the trainer thread, which writes the findings' text, reads it like the UI thread does.

Adding a string: wrap it, `_("{layer} gets {ratio} of out's gradient").format(layer=..., ratio=...)` (named
placeholders, so a translation may reorder them; `N_()` marks a string kept in a table and translated where
it is shown), then update and compile the catalogue (README: Languages).
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

LANGUAGES = {"en": "English", "pt": "Português (Brasil)"}
DEFAULT_LANGUAGE = "en"
DOMAIN = "tui_lab"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = DEFAULT_LANGUAGE


def normalise_language(code: str) -> str | None:
    """'pt_BR.UTF-8' -> 'pt'; 'en-US' -> 'en'; an unsupported language -> None."""
    base = code.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return base if base in LANGUAGES else None


def pick_language(requested: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    if requested:
        lang = normalise_language(requested)
        if lang is None:
            from tui_lab.core.errors import UserError

            raise UserError(
                _("--lang {value} is not supported; allowed: {allowed}").format(
                    value=repr(requested), allowed=", ".join(LANGUAGES)
                )
            )
        return lang
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value and value not in ("C", "POSIX"):
            # The first variable that is set decides, as in POSIX locale lookup.
            return normalise_language(value) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def set_language(lang: str) -> None:
    """Speak `lang` from now on ('en', 'pt'); English (or a language without a catalogue) is the identity."""
    global _translation, _language
    if lang == DEFAULT_LANGUAGE:
        translation: gettext.NullTranslations = gettext.NullTranslations()
    else:
        translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)
    _translation, _language = translation, lang  # one assignment each: a reading thread sees old or new


def language() -> str:
    """The language set last ('en' until `set_language` says otherwise)."""
    return _language


def _(message: str) -> str:
    """`message` in the current language (gettext); '' stays '' (gettext would give the catalogue's header)."""
    return _translation.gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the current language."""
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a string for the catalogue where it is defined (a table, a class attribute); `_()` translates it
    where it is shown."""
    return message
