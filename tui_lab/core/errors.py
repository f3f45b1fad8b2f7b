"""Errors the user can fix. The command line prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from tui_lab.core.i18n import N_


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


# The causes a user can act on, in their words (the OS's strerror is English only and says less).
_OS_CAUSES = {
    "ENOSPC": N_("disk full (no space left on the device)"),
    "EDQUOT": N_("disk quota exceeded"),
    "EFBIG": N_("file too large for this file system or the process's file size limit"),
    "EACCES": N_("permission denied"),
    "EPERM": N_("operation not permitted"),
    "ENAMETOOLONG": N_("name too long"),
    "ENOENT": N_("no such file or directory"),
    "ENOTDIR": N_("a part of the path is not a directory"),
    "EISDIR": N_("is a directory"),
    "EROFS": N_("read-only file system"),
    "ELOOP": N_("is a symbolic link (or too many levels of them)"),
    "EEXIST": N_("already exists"),
}


def os_cause(exc: OSError) -> str:
    """Why an OSError happened, in a few translated words ('disk full (no space left on the device)')."""
    import errno

    from tui_lab.core.i18n import _

    name = errno.errorcode.get(exc.errno or 0, "")
    cause = _OS_CAUSES.get(name)
    return _(cause) if cause else str(exc.strerror or exc)


def user_side(exc: OSError) -> bool:
    """An OSError the user can fix (space, permissions, names): not a bug of the lab."""
    import errno

    return errno.errorcode.get(exc.errno or 0, "") in _OS_CAUSES or exc.filename is not None


def os_error_line(exc: OSError, path: object = None) -> str:
    """'PATH: disk full (no space left on the device)': the path the OS named (or `path`) and the cause."""
    where = exc.filename if exc.filename is not None else path
    cause = os_cause(exc)
    return f"{where}: {cause}" if where is not None else cause
