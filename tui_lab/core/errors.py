"""Errors the user can fix. The command line prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user: a config file, an override, an argument, a path.

    The message is complete and ready to print (it names the file and key); no traceback is shown.
    """


class ConfigError(UserError):
    """A configuration (file or override) that does not validate."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean relu?)' when a choice is close to `word`, else ''."""
    from tui_lab.core.i18n import _

    close = difflib.get_close_matches(str(word).lower(), list(choices), n=1, cutoff=0.6)
    return _(" (did you mean {choice}?)").format(choice=close[0]) if close else ""


def one_line(exc: BaseException) -> str:
    """'RuntimeError: the first line of its message' (or just the type's name when the message is empty)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
