"""Numbers as the lab shows them, and the finite checks behind them: one module for the headless printer,
the sweep table, the screen and the findings' messages, so a number reads the same everywhere.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from tui_lab.core.i18n import _

if TYPE_CHECKING:
    from tui_lab.core.run import Snapshot

# Terminal escape sequences (7-bit and their 8-bit C1 forms): CSI (ESC [ or 0x9b) to its final byte; OSC, DCS,
# SOS, PM, APC (ESC ] P X ^ _ or 0x9d 0x90 0x98 0x9e 0x9f) to BEL or ST, or to the end of the text when they
# never end (a terminal would swallow the rest); any other ESC and the character after it.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])(?:[^\x07\x1b\x9c]*)(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b.?",
    re.DOTALL,
)
# What is left that a terminal acts on instead of printing: C0 (but tab and newline), DEL, C1.
_CONTROL = {c: None for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)) if c not in (0x09, 0x0A)}
_ONE_LINE = {**_CONTROL, 0x09: " ", 0x0A: " ", 0x0D: " "}


def printable(text: object, multiline: bool = False) -> str:
    """`text` (from a file, a run directory or the user) safe to show on a terminal: escape sequences and
    control characters removed, so it can neither retitle nor clear the terminal nor move the cursor. One line
    unless `multiline` (then newlines and tabs stay); a carriage return ends a line (CRLF files)."""
    text = str(text).replace("\r\n", "\n")
    if multiline:
        text = text.replace("\r", "\n")
    return _SEQUENCE.sub("", text).translate(_CONTROL if multiline else _ONE_LINE)


MISSING = "–"  # a number that is not there (not measured, or not finite)
LOG_FLOOR = -12.0  # log10 of an exact zero: gradient bars and curves grow from 1e-12


def finite(x: Any) -> float | None:
    """`x` as a float when it is a finite real number, else None (None, NaN, inf, a string...)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def is_finite(x: Any) -> bool:
    return finite(x) is not None


def log10_floored(x: float | None) -> float | None:
    """log10(x); an exact zero (or a negative) is LOG_FLOOR; a missing or non-finite value is None."""
    x = finite(x)
    if x is None:
        return None
    return math.log10(x) if x > 0 else LOG_FLOOR


def sci(x: float | None, missing: str = "n/a") -> str:
    """Short and readable: '0', '0.123', '12.5', then '1e-8', '3e4' outside [0.01, 1000)."""
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    x = finite(x)
    if x is None:
        return missing
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e3:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def num(x: float | None, digits: int = 4) -> str:
    """A metric: `digits` significant figures in [1e-3, 1e4), scientific outside it."""
    x = finite(x)
    if x is None:
        return MISSING
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.2e}"


def rate(x: float) -> str:
    """812, 2.5k, 1.2M."""
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def eta(seconds: float | None) -> str:
    """m:ss, or h:mm:ss from an hour up."""
    seconds = finite(seconds)
    if seconds is None:
        return MISSING
    s = int(round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, sec = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def literal(x: float) -> str:
    """A bound as a user would type it in TOML: 100_000_000, 0.05, 1e+06."""
    if isinstance(x, int) and abs(x) >= 100_000:
        return f"{x:,}".replace(",", "_")
    return f"{x:g}"


def metrics(snap: Snapshot) -> list[str]:
    """The numbers of a snapshot: 'loss 1.099', 'acc 0.333', 'val 1.1/0.33' (validation loss/accuracy)."""
    parts = [_("loss {value}").format(value=num(snap.loss))]
    if snap.acc is not None:
        parts.append(_("acc {value}").format(value=num(snap.acc, 3)))
    if snap.val_loss is not None:
        value = num(snap.val_loss) + (f"/{num(snap.val_acc, 3)}" if snap.val_acc is not None else "")
        parts.append(_("val {value}").format(value=value))
    return parts


def speed(snap: Snapshot) -> list[str]:
    """'2.5k samples/s', 'ETA 0:21'."""
    return [_("{rate} samples/s").format(rate=rate(snap.samples_per_s)), _("ETA {time}").format(time=eta(snap.eta_s))]


def metrics_line(snap: Snapshot) -> str:
    """One progress line: 'step 11/200  loss 1.099  acc 0.333  2.5k samples/s  ETA 0:21'."""
    step = _("step {step}/{total}").format(step=snap.step + 1, total=snap.total_steps)
    return "  ".join([step, *metrics(snap), *speed(snap)])
