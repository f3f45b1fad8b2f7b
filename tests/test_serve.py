"""`tui-lab serve` (README: In a browser): the lab through textual-serve, in a real headless Chromium.

The browser test drives the page as a person would: it opens the URL the server printed, waits for the preset
picker, types a lesson's name, Enter, `r`, and waits for the gradient-flow panel to draw. xterm.js draws on a
canvas (WebGL), so there is no DOM text to read: the test reads the terminal from the very bytes the page's
websocket received, fed to a terminal emulator (pyte) at the size the page asked for; and it keeps a screenshot
of the page as an artefact ($TUI_LAB_ARTIFACTS, else tests/artifacts/, ignored by git).

Chromium is the system's (/usr/bin/chromium): the session fixture installs Debian's package when it is missing
and the tests run as root with apt-get (CI), and skips with the reason where that cannot be done. Playwright
drives it; it never downloads a browser of its own.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tui_lab.cli import main

from support import ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only (signals, /proc)")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APT_TIMEOUT_S = 300


# ---------------------------------------------------------------------------------------------------------
# Fixtures and helpers.


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The system's Chromium: Debian's package is installed when missing (as root with apt-get, as CI runs),
    else the browser tests are skipped with the reason."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip(
            f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get: `apt-get install chromium`)"
        )
    why = install_chromium(apt, tmp_path_factory.mktemp("apt") / "apt.log")
    if why is not None:
        pytest.skip(f"{CHROMIUM} is missing and `apt-get install chromium` failed: {why}")
    return CHROMIUM


def install_chromium(apt: str, log: Path, timeout: float = APT_TIMEOUT_S) -> str | None:
    """Install Debian's chromium, quietly (the output goes to `log`); None when it is there, else why not."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + timeout
    # The package lists may be empty on a fresh machine: install, else update them and install again.
    for step in (["install"], ["update", "install"]):
        try:
            with log.open("a") as out:
                for verb in step:
                    subprocess.run(
                        [apt, verb, "-y", "-q", *(["chromium"] if verb == "install" else [])],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        timeout=max(deadline - time.monotonic(), 1),
                        check=True,
                    )
        except subprocess.TimeoutExpired:
            return f"no answer within {timeout:.0f} s; log: {log}"
        except (subprocess.CalledProcessError, OSError):
            continue
        if CHROMIUM.exists():
            return None
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return f"{lines[-1] if lines else 'no output'}; log: {log}"


@pytest.fixture
def artifacts() -> Path:
    """Where the screenshots go: $TUI_LAB_ARTIFACTS, else tests/artifacts/ (ignored by git)."""
    path = Path(os.environ.get("TUI_LAB_ARTIFACTS") or ROOT / "tests" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Served:
    """A `tui-lab serve` process: its URL (from the line it printed), its output so far, and its children."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.proc = proc
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        for name, stream in (("out", proc.stdout), ("err", proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()
        self.url = self._wait_for_url()
        self.port = int(re.search(r":(\d+)/", self.url).group(1))

    def _pump(self, name: str, stream) -> None:
        for line in stream:
            (self.out if name == "out" else self.err).append(line)
            self.lines.put((name, line))

    def _wait_for_url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                name, line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"tui-lab serve ended: {''.join(self.err)}"
                continue
            found = re.search(r"http://\S+", line)
            if name == "out" and found:
                return found.group(0)
        raise AssertionError(f"tui-lab serve printed no URL in {timeout} s: {''.join(self.out + self.err)}")

    def children(self) -> list[int]:
        """The app processes (one per tab), oldest first: the server's children, read from /proc."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                found.append((int(fields[19]), int(entry.name)))  # start time, pid
        return [pid for _start, pid in sorted(found)]

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C, as at the server's terminal; its exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_lab", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
    )
    try:
        yield Served(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until(done, what: str, timeout: float, tick) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        tick()


class Terminal:
    """What a page's xterm.js shows: the bytes its websocket received, fed to pyte at the size it asked for."""

    def __init__(self, page):
        import pyte

        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.page = page
        page.on("websocket", self._watch)

    def _watch(self, websocket) -> None:
        def received(payload) -> None:
            if isinstance(payload, bytes):  # the app's output; text frames are textual-serve's own messages
                self.stream.feed(payload)

        def sent(payload) -> None:
            if isinstance(payload, str) and payload.startswith('["resize"'):
                size = json.loads(payload)[1]
                self.screen.resize(size["height"], size["width"])

        websocket.on("framereceived", received)
        websocket.on("framesent", sent)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, pattern: str | Callable[[str], bool], what: str, timeout: float = 30.0) -> None:
        """Until the screen matches `pattern` (a regex, or a test of the screen's text)."""
        done = (lambda: pattern(self.text())) if callable(pattern) else (lambda: re.search(pattern, self.text()))
        try:
            wait_until(done, what, timeout, lambda: self.page.wait_for_timeout(100))
        except AssertionError as exc:
            raise AssertionError(f"{what}: not within {timeout} s; the page shows:\n{self.text()}") from exc


def keep_local(page) -> list[str]:
    """Requests of `page` to anywhere but this machine are refused (the test sends no traffic out); the list
    of their URLs, for the test to check that there were none."""
    refused: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    page.route("**/*", route)
    return refused


def focus_terminal(page) -> None:
    # Keys go to xterm.js's hidden textarea. preventScroll: focusing it must not scroll the page.
    page.evaluate("document.querySelector('.xterm-helper-textarea').focus({preventScroll: true})")


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def websocket_handshake(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    """The status a websocket upgrade to `path` gets (101 when accepted); the connection is closed at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status = sock.recv(1024).split(b"\r\n", 1)[0]
    return int(status.split()[1])


# ---------------------------------------------------------------------------------------------------------
# The lab in Chromium.


@pytest.mark.slow
def test_a_browser_tab_trains_a_lesson_and_each_tab_is_its_own_lab(
    chromium: Path, artifacts: Path, runs_dir: Path
) -> None:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install -e '.[test]')")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )

    with serving() as served, sync_api.sync_playwright() as pw:
        assert served.url.startswith("http://127.0.0.1:") and "token" not in served.url  # localhost: no token
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)  # a fresh profile
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            elsewhere = keep_local(page)
            tab = Terminal(page)
            page.goto(served.url)
            tab.wait_for(r"Presets .* type to filter", "the preset picker")
            focus_terminal(page)
            page.keyboard.type("deep-sigmoid")
            # The filter holds what was typed, and the highlighted preset is deep-sigmoid (its one-line summary).
            tab.wait_for(
                r"type to filter.*\n.*\bdeep-sigmoid\b(.*\n)*.*mlp depth 10 width 64 · sigmoid · default · norm none",
                "the picker filtered to deep-sigmoid",
            )
            page.keyboard.press("Enter")
            tab.wait_for(r"tui-lab\s+deep-sigmoid\s+·\s+idle", "the lesson loaded")
            page.keyboard.press("r")
            tab.wait_for(r"Gradient flow .*\n(.*\n)*\W*L1\s+█+.*\de-\d+", "the gradient-flow bars", timeout=45)
            tab.wait_for(r"step [1-9]\d*/1000", "the run under way")
            page.evaluate("window.scrollTo(0, 0)")
            shot = artifacts / "serve-chromium-deep-sigmoid.png"
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
            assert shot.stat().st_size > 10_000

            assert elsewhere == []  # the page needs nothing from the internet (the font is served too)

            (first,) = served.children()
            runs = [p for p in runs_dir.iterdir() if p.is_dir()]
            assert len(runs) == 1 and "deep-sigmoid" in runs[0].name
            assert int((runs[0] / ".tui-lab.lock").read_text()) == first  # the run is this tab's process's

            second = browser.new_page(viewport={"width": 1024, "height": 600})
            other = Terminal(second)
            second.goto(served.url)
            other.wait_for(r"Presets .* type to filter", "the second tab's own picker")
            assert "deep-sigmoid" not in other.text().splitlines()[0]  # not the first tab's lab
            children = served.children()
            assert len(children) == 2 and children[0] == first, children  # a process of its own
            second.close()
            wait_until(lambda: served.children() == [first], "the closed tab's app ends", 15, lambda: time.sleep(0.2))

            code = served.stop()  # Ctrl-C with a tab open and its run going
            assert code == 0, "".join(served.err)
            assert served.children() == []
            output = "".join(served.out + served.err)  # the apps' stderr comes out here too
            assert "Traceback" not in output and "Error" not in output, output
        finally:
            browser.close()
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["steps"] > 0  # the app finished its run directory


# ---------------------------------------------------------------------------------------------------------
# Access: another address needs the token.


def test_a_non_local_address_needs_the_token(tmp_path: Path) -> None:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install -e '.[test]')")
    # 0.0.0.0 listens on every address; the requests below go to 127.0.0.1 only.
    with serving("--host", "0.0.0.0") as served:
        token = re.search(r"\?token=([\w-]+)", served.url).group(1)
        assert len(token) >= 24
        warning = "".join(served.err)
        assert "anyone who can reach it can run code as you" in warning and f"0.0.0.0:{served.port}" in warning
        assert len(warning.strip().splitlines()) == 1

        assert get(served.port, "/").status == 403
        assert get(served.port, "/?token=wrong").status == 403
        assert get(served.port, "/static/css/xterm.css").status == 403
        assert websocket_handshake(served.port, "/ws?width=80&height=24") == 403
        page = get(served.port, f"/?token={token}")
        assert page.status == 200
        cookie = page.getheader("Set-Cookie", "")
        assert token in cookie and "HttpOnly" in cookie
        # The page's files and websocket carry the token on in the cookie.
        cookie_header = {"Cookie": cookie.split(";", 1)[0]}
        assert get(served.port, "/static/css/xterm.css", cookie_header).status == 200
        foreign = {**cookie_header, "Origin": "http://evil.example"}
        assert websocket_handshake(served.port, "/ws?width=80&height=24", foreign) == 403
        assert websocket_handshake(served.port, "/ws?width=80&height=24", cookie_header) == 101
        # That tab's app starts, and ends when its connection has gone.
        wait_until(lambda: served.children() == [], "the app of a closed connection ends", 20, lambda: time.sleep(0.2))
        assert served.stop() == 0


def test_a_given_token_is_required_even_on_localhost(tmp_path: Path) -> None:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install -e '.[test]')")
    with serving(env={"TUI_LAB_SERVE_TOKEN": "s3cret"}) as served:
        assert served.url.endswith("/?token=s3cret") and served.err == []  # localhost: no warning
        assert get(served.port, "/").status == 403
        assert get(served.port, "/?token=s3cret").status == 200
        # A loopback server without a token answers to loopback names only (DNS rebinding).
    with serving() as served:
        assert get(served.port, "/").status == 200
        assert get(served.port, "/", {"Host": f"evil.example:{served.port}"}).status == 403


# ---------------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2.


def test_a_port_in_use_a_foreign_address_and_a_bad_port_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install -e '.[test]')")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"tui-lab: --port {port}: already in use on 127.0.0.1; pick another port (--port 0 picks a free one)\n"
    )

    # TEST-NET-3: an address no machine here has; nothing is sent there, the bind fails at once.
    assert main(["serve", "--host", "203.0.113.7", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tui-lab: --host 203.0.113.7: cannot listen there (") and err.count("\n") == 1

    assert main(["serve", "--port", "70000"]) == 2
    assert capsys.readouterr().err == "tui-lab: --port 70000: not a port; allowed: 0 to 65535 (0 picks a free one)\n"
    assert main(["serve", "no-such-lesson"]) == 2
    assert "no-such-lesson" in capsys.readouterr().err
    assert main(["serve", "--token", "two words"]) == 2
    assert capsys.readouterr().err.startswith("tui-lab: --token: the token must be printable characters without spaces")


def test_without_textual_serve_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "textual_serve", None)  # as if not installed: importing it fails
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == "tui-lab: `tui-lab serve` needs textual-serve: pip install 'tui-lab[serve]' (the serve extra)\n"


def test_each_tab_runs_the_lab_in_the_servers_language_with_the_preset() -> None:
    from tui_lab.serve import app_command, is_loopback

    command = app_command("pt", "deep-sigmoid")
    assert command.startswith("exec ") and command.endswith("-m tui_lab --lang pt --preset deep-sigmoid")
    assert "--preset" not in app_command("en")
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.com", ""))
