"""What comes from the terminal, and what goes to it, made safe whatever the user or a file sends.

Textual (8.2) dies on some ordinary terminal input (docs/upstream/): a byte that is not UTF-8 (0xb8 from Alt+8
with eightBitInput, a Latin-1 terminal) raises UnicodeDecodeError in the Linux driver's input thread, and a CSI
sequence with an absurd parameter (ESC[9999999999999999999A) raises OverflowError in the xterm parser; either
ends the app with a traceback. `safe_driver` wraps the driver: undecodable bytes are dropped, a sequence the
parser fails on is dropped (the parser starts afresh after it), and absurd events (an in-band resize to
100000 rows, a mouse report far off the screen) never reach the app. Pasted text loses its control characters
and escape sequences before a widget sees it.

On the way out, `PrintableOnly` is the last line of defence: no text drawn on the screen (a preset's title, a
run directory's summary, anything a widget was given) can carry an escape sequence to the terminal. The
strings themselves are cleaned where they are read (core/fmt.py `printable`), so what remains on screen reads
well; this filter only guarantees that nothing slipped through acts on the terminal.
"""

from __future__ import annotations

import os
import re
import selectors
import time
from codecs import getincrementaldecoder
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from textual import events
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.filter import LineFilter
from textual.geometry import Size

from tui_lab.core.fmt import printable

if TYPE_CHECKING:
    from textual.color import Color
    from textual.driver import Driver
    from textual.message import Message

MAX_CELLS = 2000  # a terminal wider or taller than this is a forged report, not a screen
# A terminal sends a paste's bytes back to back; a paste start with no input for this long will never end (a
# stray ESC[200~, a dropped connection's tail) and would swallow every key after it: it is dropped.
PASTE_IDLE_S = 1.5
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class PrintableOnly(LineFilter):
    """Drops control characters (ESC above all) from the text of every line drawn; they are zero cells wide,
    so the line keeps its width. Strips cache what a filter made of them: a line is looked at once."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if not any(not seg.control and _CONTROLS.search(seg.text) for seg in segments):
            return segments
        return [
            seg if seg.control or not _CONTROLS.search(seg.text) else Segment(_CONTROLS.sub("", seg.text), seg.style)
            for seg in segments
        ]


PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


class SafeXTermParser(XTermParser):
    """Textual's xterm parser that survives what it fails on: a sequence that raises is dropped and the parser
    starts afresh at the next character (the keys before and after it still arrive). Inside a bracketed paste
    no key is delivered: Textual sends an escape sequence in pasted text on as key presses (a pasted
    '\\x1b]0;pwned' pressed p, w, n, e: pause, new run, edit), the paste itself arrives whole."""

    _recent = ""  # the last characters fed, to see a paste start and end
    _in_paste = False
    _last_input = 0.0

    def feed(self, data: str) -> Iterable[Message]:
        if not data:  # the end of input
            try:
                yield from super().feed(data)
            except Exception:  # noqa: BLE001 - whatever was half-read is dropped
                pass
            return
        self._last_input = time.monotonic()
        for char in data:  # one at a time: a failure costs only the sequence it was in
            self._recent = (self._recent + char)[-len(PASTE_START) :]
            if self._recent == PASTE_START:
                self._in_paste = True
            try:
                yield from self._keys_outside_paste(super().feed(char))
            except Exception:  # noqa: BLE001 - a sequence Textual cannot parse is dropped, never a crash
                yield from self._restart()
            if self._recent == PASTE_END:
                self._in_paste = False

    def tick(self) -> Iterable[Message]:
        if self._in_paste and time.monotonic() - self._last_input > PASTE_IDLE_S:
            yield from self._restart()  # a paste that never ends: keys typed from now on arrive again
            return
        try:
            yield from self._keys_outside_paste(super().tick())
        except Exception:  # noqa: BLE001 - the escape key's timeout reissued a sequence that failed
            yield from self._restart()

    def _keys_outside_paste(self, messages: Iterable[Message]) -> Iterable[Message]:
        for message in messages:
            if not (self._in_paste and isinstance(message, events.Key)):
                yield message

    def _restart(self) -> Iterable[Message]:
        self._in_paste = False  # the new parser is outside any paste
        tokens = list(self._tokens)  # what was parsed before the failure still counts
        self._tokens.clear()
        self._gen = self.parse(self._tokens.append)
        self._awaiting = next(self._gen)
        self._timeout_time = None
        yield from tokens


def sane(message: Message) -> Message | None:
    """`message` as the app may have it: None for what no real terminal sends (an in-band resize to absurd
    sizes, a mouse report far off any screen); pasted text without control characters or escapes."""
    if isinstance(message, events.Resize):
        width, height = message.size
        return message if 1 <= width <= MAX_CELLS and 1 <= height <= MAX_CELLS else None
    if isinstance(message, events.MouseEvent):
        x, y = message.screen_x, message.screen_y
        return message if -1 <= x <= MAX_CELLS and -1 <= y <= MAX_CELLS else None
    if isinstance(message, events.Paste):
        text = printable(message.text, multiline=True)
        return message if text == message.text else events.Paste(text)
    return message


def decoder() -> Any:
    """The input's UTF-8 decoder: bytes that are not UTF-8 are dropped (a multi-byte character split between
    two reads still arrives whole)."""
    return getincrementaldecoder("utf-8")(errors="ignore").decode


def safe_driver(base: type[Driver]) -> type[Driver]:
    """`base` reading its input with `decoder` and `SafeXTermParser`, and passing on only `sane` events. Only
    Textual's Linux driver reads a terminal this way; any other (the headless one of tests, Windows') is
    returned as it is."""
    from textual.drivers.linux_driver import LinuxDriver

    if not issubclass(base, LinuxDriver) or getattr(base, "safe_input", False):
        return base

    class SafeDriver(base):  # type: ignore[misc, valid-type]
        safe_input = True

        def process_message(self, message: Message) -> None:
            if isinstance(message, events.Resize):
                message = self._real_size(message)
            checked = sane(message) if message is not None else None
            if checked is not None:
                super().process_message(checked)

        def _real_size(self, report: events.Resize) -> events.Resize | None:
            """A size report read from the input (CSI 48;rows;cols;…t, in-band resize) is believed only if the
            terminal agreed to send them, and then as the size the terminal itself has (TIOCGWINSZ): a forged
            report of 1500x1500 cells had the app lay out and repaint a screen that size, a core busy for
            minutes, keys unanswered (benchmarks/fuzz_tui.py). SIGWINCH resizes do not come this way."""
            if not getattr(self, "_in_band_window_resize", False):
                return None
            width, height = self._get_terminal_size()
            if (width, height) == tuple(report.size):
                return report
            return events.Resize(Size(width, height), Size(width, height), pixel_size=report.pixel_size)

        def run_input_thread(self) -> None:
            """Textual's LinuxDriver.run_input_thread (8.2) with the two replacements above."""
            selector = selectors.SelectSelector()
            selector.register(self.fileno, selectors.EVENT_READ)
            parser = SafeXTermParser(self._debug)
            decode = decoder()

            ended = False  # the input reached its end (stdin is /dev/null, or a pipe that closed)

            def process(selected: list[Any], final: bool = False) -> None:
                nonlocal ended
                for index, (_key, mask) in enumerate(selected):
                    if mask & selectors.EVENT_READ:
                        data = os.read(self.fileno, 1024 * 4)
                        if not data:
                            ended = True
                            break
                        text = decode(data, final=final and index == len(selected) - 1)
                        for event in parser.feed(text) if text else ():  # "" would tell the parser: end of input
                            self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)

            try:
                while not self.exit_event.is_set():
                    if ended:  # an ended input stays readable: selecting it again would spin a core forever
                        self.exit_event.wait(0.5)
                        continue
                    process(selector.select(0.1))
                selector.unregister(self.fileno)
                process(selector.select(0.1), final=True)
            finally:
                selector.close()
                try:
                    for _event in parser.feed(""):
                        pass
                except (EOFError, ParseError):
                    pass

    SafeDriver.__name__ = SafeDriver.__qualname__ = f"Safe{base.__name__}"
    return SafeDriver


def toasts_that_expire() -> None:
    """Textual (8.2) times a notification's toast from `notification.time_left`, read when the toast is made but
    used when it mounts: a toast made again for another screen (a modal opening or closing) just as its time ran
    out gets a negative delay, and a Timer with a negative interval spins forever without yielding (timer.py
    `_run`, the skip branch), the app frozen at 100% CPU (found by benchmarks/fuzz_tui.py; docs/upstream/).
    The toast's delay is kept positive; called once, when the app module is imported."""
    from textual.widgets._toast import Toast

    if getattr(Toast, "tui_lab_patched", False):
        return
    mounted = Toast._on_mount

    def _on_mount(self: Toast, event: Any) -> None:
        self._timeout = max(float(self._timeout), 0.05)
        mounted(self, event)

    Toast._on_mount = _on_mount  # type: ignore[method-assign]
    Toast.tui_lab_patched = True  # type: ignore[attr-defined]
