"""Job control in the terminal: Ctrl-Z (SIGTSTP) and `fg` (SIGCONT), and a stop the app never heard of.

Textual's Linux driver handles SIGTSTP itself: it leaves application mode (the user's terminal as it was), stops
the process, and on SIGCONT starts application mode again. But it starts application mode on *every* SIGCONT,
also after a SIGSTOP it never saw (`kill -STOP`, a debugger, a stopped job resumed): a second input thread and a
second writer thread then run beside the first ones, input goes astray and the process can no longer exit
(the old writer thread keeps it alive). `resumable` gives the driver the difference: after its own suspend it
resumes as Textual does; after a stop it did not see, it takes the terminal back as it is (the shell may have
reset its modes and drawn over the screen meanwhile): the terminal modes again, the alternate screen, and a
full repaint, with the same threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events
from textual.geometry import Size


def resumable(driver_class: type) -> type:
    """`driver_class` (Textual's) made to tell its own suspend from a stop it did not see (module docstring).
    Drivers without POSIX job control are returned as they are."""
    if not hasattr(driver_class, "_sigcont_application"):
        return driver_class

    class Resumable(driver_class):  # type: ignore[misc, valid-type]
        _suspended = False  # application mode left by our own SIGTSTP handler

        def _sigtstp_application(self, *args: Any) -> None:
            self._suspended = True
            super()._sigtstp_application(*args)

        def _sigcont_application(self, *args: Any) -> None:
            if self._suspended:
                self._suspended = False
                super()._sigcont_application(*args)  # application mode again, the terminal's size posted
                self._repaint(resize=False)
                return
            self._take_terminal_back()

        def _take_terminal_back(self) -> None:
            """Application mode as start_application_mode sets it, on the threads already there."""
            if getattr(self, "_writer_thread", None) is None or self.exit_event.is_set():
                return  # not started yet, or leaving: nothing to take back
            try:
                import termios
                import tty
            except ImportError:
                return
            try:
                attrs = termios.tcgetattr(self.fileno)
                attrs[tty.LFLAG] = self._patch_lflag(attrs[tty.LFLAG])
                attrs[tty.IFLAG] = self._patch_iflag(attrs[tty.IFLAG])
                attrs[tty.CC][termios.VMIN] = 1
                termios.tcsetattr(self.fileno, termios.TCSANOW, attrs)
            except (OSError, termios.error):  # not a terminal (any more): no modes to set
                pass
            self.write("\x1b[?1049h")  # the alternate screen
            self._enable_mouse_support()
            self.write("\x1b[?25l")  # no cursor
            self.write("\x1b[?1004h")  # focus events
            self._enable_bracketed_paste()
            self._disable_line_wrap()
            self.flush()
            self._repaint()

        def _repaint(self, resize: bool = True) -> None:
            """The whole screen painted again, on the app's loop (nothing of the app is touched from a signal
            handler): the alternate screen came back empty, and a resize to the same size repaints nothing."""
            app = self._app
            loop = getattr(app, "_loop", None)
            if loop is None or loop.is_closed():
                return
            if resize:  # the terminal may have changed size while the app was stopped
                width, height = self._get_terminal_size()
                size = Size(width, height)
                asyncio.run_coroutine_threadsafe(app._post_message(events.Resize(size, size)), loop=loop)
            loop.call_soon_threadsafe(_repaint_all, app)

    Resumable.__name__ = Resumable.__qualname__ = f"Resumable{driver_class.__name__}"
    return Resumable


def _repaint_all(app: Any) -> None:
    if app.is_running:
        app.refresh(repaint=True, layout=True)


__all__ = ["resumable"]
