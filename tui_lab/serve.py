"""`tui-lab serve`: the lab in a browser, through textual-serve (README: In a browser).

Each browser tab opens a websocket, and each websocket starts its own `python -m tui_lab` process (textual-serve's
AppService), so every tab is its own lab with its own runs. The server is textual-serve's own, with three changes:

- Access: bound to loopback by default. Any other address requires a token (the URL's `?token=`, then a cookie for
  the page's websocket and files); without it every request gets 403. A websocket whose Origin is another site is
  refused too (a page elsewhere could otherwise open one to localhost), and so is a loopback server's request
  whose Host is not a loopback name (DNS rebinding).
- The page's websocket URL is made from the request's Host, not the bind address: `0.0.0.0` or an SSH tunnel on
  another local port still connect.
- Each app runs in its own session (a Ctrl-C typed at the server's terminal reaches the server only), with a UTF-8,
  xterm environment (the browser's terminal, whatever the server's locale is); the server ends them itself: a
  quit, then SIGTERM, then SIGKILL.

aiohttp and textual-serve are imported only here, and only for `tui-lab serve` (the optional `serve` extra).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tui_lab.core.errors import UserError
from tui_lab.core.i18n import _

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_ENV = "TUI_LAB_SERVE_TOKEN"
TOKEN_PARAM = "token"
TITLE = "tui-lab"
# How long an app has to leave after its tab closed (it stops its run and finishes its run directory), then
# after SIGTERM, before it is killed.
QUIT_GRACE_S = 5.0
TERM_GRACE_S = 3.0
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
_REMOTE_FONT = re.compile(r'<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com/[^"]*"\s*/?>')


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine: `localhost` or a loopback address (127.0.0.0/8, ::1). A name
    is not resolved: anything else counts as reachable from outside."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def app_command(lang: str, preset: str | None = None) -> str:
    """The shell command each tab runs: this interpreter's `python -m tui_lab`, in the server's language, with
    the preset. `exec`: the shell hands its process over, so the server's signals reach the app itself."""
    argv = [sys.executable, "-m", "tui_lab", "--lang", lang]
    if preset is not None:
        argv += ["--preset", preset]
    return "exec " + shlex.join(argv)


def pick_token(host: str, flag: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The token requests must carry: --token, else $TUI_LAB_SERVE_TOKEN, else a new random one when `host`
    is not loopback, else none (a loopback server is open to this machine's own users, as a terminal is)."""
    import secrets

    env = os.environ if environ is None else environ
    for where, value in (("--token", flag), (TOKEN_ENV, env.get(TOKEN_ENV))):
        if value is None or (where == TOKEN_ENV and value == ""):
            continue
        if not value.strip() or any(c.isspace() or not c.isprintable() for c in value):
            raise UserError(
                _("{where}: the token must be printable characters without spaces; leave it out to get one").format(
                    where=where
                )
            )
        return value
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open: the bound address (this machine's name for a wildcard one), with the token."""
    from urllib.parse import quote

    name = host
    if host in ("0.0.0.0", "::", ""):
        name = socket.gethostname()
    if ":" in name:  # an IPv6 address
        name = f"[{name}]"
    query = f"?{TOKEN_PARAM}={quote(token, safe='')}" if token else ""
    return f"http://{name}:{port}/{query}"


def check_port(port: int) -> int:
    if not 0 <= port <= 65535:
        raise UserError(_("--port {port}: not a port; allowed: 0 to 65535 (0 picks a free one)").format(port=port))
    return port


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    lang: str = "en",
    preset: str | None = None,
    token: str | None = None,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Serve the lab until Ctrl-C, SIGTERM or a hang-up; returns the exit code (0). A port in use or an address
    this machine cannot listen on is a UserError (one line, exit 2)."""
    try:
        import textual_serve.server  # noqa: F401 - only to know it is there
    except ImportError:
        raise UserError(
            _("`tui-lab serve` needs textual-serve: pip install 'tui-lab[serve]' (the serve extra)")
        ) from None
    check_port(port)
    server = make_server(host, port, app_command(lang, preset), token)
    return asyncio.run(_run(server, host, port, token, say, warn or say))


async def _run(
    server: Any, host: str, port: int, token: str | None, say: Callable[[str], None], warn: Callable[[str], None]
) -> int:
    from aiohttp import web

    app = await server._make_app()
    # handle_signals=False: the signals are ours (below); shutdown_timeout bounds the wait for open tabs.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=QUIT_GRACE_S + TERM_GRACE_S + 2)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise UserError(_bind_error(host, port, exc)) from None
    bound = _bound_port(runner, port)
    if not is_loopback(host):
        where = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
        warn(
            _("serving on {address}: anyone who can reach it can run code as you; the URL carries a token").format(
                address=where
            )
        )
    say(_("tui-lab serving {url}").format(url=page_url(host, bound, token)))
    say(_("each browser tab is its own lab (its own process and runs); Ctrl-C stops the server and them"))
    sys.stdout.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await server.close_all()
        await runner.cleanup()
    return 0


def _bound_port(runner: Any, asked: int) -> int:
    """The port actually bound (--port 0 asks the system for a free one)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked


def _bind_error(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return _("--port {port}: already in use on {host}; pick another port (--port 0 picks a free one)").format(
            port=port, host=host
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return _("--port {port}: permission denied (ports below 1024 need root); pick a port from 1024").format(
            port=port
        )
    reason = exc.strerror or str(exc)
    return _("--host {host}: cannot listen there ({reason}); give an address of this machine, e.g. 127.0.0.1").format(
        host=host, reason=reason
    )


# ---------------------------------------------------------------------------------------------------------
# The server: textual-serve's, with access control, Host-relative URLs and apps it ends itself.


def make_server(host: str, port: int, command: str, token: str | None) -> Any:
    """A textual-serve Server for `command` (one process per websocket), guarded as the module says."""
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    class LabAppService(AppService):
        """One tab's app: its own session, a UTF-8 xterm environment, and ended by the server if it lingers."""

        _ending: asyncio.Future[None] | None = None

        def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
            env = super()._build_environment(width, height)
            # The browser's terminal (xterm.js) is UTF-8 and xterm-like, whatever the server's own terminal is:
            # the app must not fall back to ASCII because the server runs under LANG=C or TERM=dumb.
            env["TERM"] = "xterm-256color"
            env["LC_ALL"] = "C.UTF-8"
            return env

        async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
            self._process = process = await asyncio.create_subprocess_shell(
                self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._build_environment(width=width, height=height),
                start_new_session=True,  # a Ctrl-C at the server's terminal is the server's to handle
            )
            assert process.stdin is not None
            self._stdin = process.stdin
            return process

        @property
        def pid(self) -> int | None:
            return None if self._process is None else self._process.pid

        async def end(self) -> None:
            """Quit the app (it stops its run and finishes its run directory); SIGTERM, then SIGKILL, if it
            does not leave in time. Once, however many callers ask (the tab's handler and Ctrl-C)."""
            if self._ending is None:
                self._ending = asyncio.ensure_future(self._end())
            await asyncio.shield(self._ending)

        async def _end(self) -> None:
            process = self._process
            try:
                await asyncio.wait_for(asyncio.shield(self.stop()), QUIT_GRACE_S)
            except (TimeoutError, OSError, RuntimeError):
                pass
            if process is None or process.returncode is not None:
                return
            for sig, grace in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, TERM_GRACE_S)):
                if process.returncode is not None:
                    return
                try:
                    # os.kill, not process.send_signal: Popen's polls first and may reap the child under
                    # asyncio's child watcher (which then logs "Unknown child process pid").
                    os.kill(process.pid, sig)
                    await asyncio.wait_for(process.wait(), grace)
                    return
                except ProcessLookupError:
                    return
                except TimeoutError:
                    continue

    def allowed(request: web.Request) -> str | None:
        """None when the request may go on, else why it is refused (the 403's text)."""
        if token is not None:
            given = request.query.get(TOKEN_PARAM) or request.cookies.get(cookie, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _("403: this lab needs the token printed by `tui-lab serve` (the URL's ?token=...)")
        elif not is_loopback(request.url.host or ""):  # DNS rebinding: a foreign name pointed at 127.0.0.1
            return _("403: this lab answers only to localhost; use the URL `tui-lab serve` printed")
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return _("403: a page of another site may not open this lab")
        return None

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        why = allowed(request)
        if why is not None:
            return web.Response(status=403, text=why + "\n")
        response = await handler(request)
        if token is not None and request.query.get(TOKEN_PARAM):  # the page's websocket and files carry it on
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
        return response

    # Cookies are shared by every port of a host: one name per port, so two labs do not log each other out.
    cookie = f"tui_lab_token_{port}"

    class LabServer(Server):
        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title=TITLE)
            self.services: set[LabAppService] = set()
            self.sockets: set[web.WebSocketResponse] = set()

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(guard)
            return app

        async def on_startup(self, app: web.Application) -> None:
            """textual-serve prints a banner here; `_run` prints the URL instead."""

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            # The websocket and the files at the address the browser used (bind address 0.0.0.0, an SSH tunnel
            # on another local port, a proxy): the page must reach back to where it came from.
            base = f"{request.scheme}://{request.host}"
            ws = ("wss" if request.scheme == "https" else "ws") + f"://{request.host}/ws"
            context = {
                "font_size": _to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": ws,
                "config": {"static": {"url": f"{base}/static/"}},
                "application": {"name": self.title},
            }
            response = aiohttp_jinja2.render_template("app_index.html", request, context)
            # The page asks Google Fonts for Roboto Mono; textual-serve ships the font itself. Served from here,
            # the page works in a classroom without internet and tells no third party who opened it.
            local_font = (
                '<style>@font-face { font-family: "Roboto Mono"; '
                f'src: url("{base}/static/fonts/RobotoMono-VariableFont_wght.ttf"); }}</style>'
            )
            response.text = _REMOTE_FONT.sub(local_font, response.text or "")
            return response

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            websocket = web.WebSocketResponse(heartbeat=15)
            width = _to_int(request.query.get("width", "80"), 80)
            height = _to_int(request.query.get("height", "24"), 24)
            await websocket.prepare(request)
            service = LabAppService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            self.sockets.add(websocket)
            self.services.add(service)
            try:
                await service.start(width, height)
                await self._process_messages(websocket, service)
            except (ValueError, AssertionError, TypeError, KeyError):  # a malformed message: this tab ends
                pass
            finally:
                await service.end()
                self.services.discard(service)
                self.sockets.discard(websocket)
                await websocket.close()
            return websocket

        async def close_all(self) -> None:
            """Ctrl-C: every tab's app quits (each finishes its run directory), then their websockets close."""
            await asyncio.gather(*(service.end() for service in list(self.services)), return_exceptions=True)
            await asyncio.gather(*(ws.close() for ws in list(self.sockets)), return_exceptions=True)

    return LabServer()


def _to_int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default
