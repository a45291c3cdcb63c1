"""`manage.py serve` in a subprocess on temporary files, as an operator starts it: the one way the
serve, API and browser tests start a whole console (web server, job workers, host emulator)."""

from __future__ import annotations

import base64
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The test run's own settings must not leak into the console it starts: it runs on its defaults.
SETTINGS_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "HYPERV_DRIVER",
    "SIM_TIME_SCALE",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_EMAIL",
    "DJANGO_SUPERUSER_PASSWORD",
    "METRICS_TOKEN",
    "METRICS_ALLOW",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, D, Z...) from /proc, or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    return process_state(pid) not in (None, "Z")


def gone_within(pid: int, seconds: float) -> bool:
    """Whether the process has exited (and been reaped) within that many seconds."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for_page(url: str, timeout: float = 60, server: subprocess.Popen | None = None) -> None:
    """Until the page answers 200; no longer than `server` runs, when given."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own http://127.0.0.1 URL
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            last = repr(exc)  # an HTTPError (a 500, say) too: what the server last did, for the message
        assert server is None or server.poll() is None, f"the server exited ({server.returncode}): {url} {last}"
        assert time.monotonic() < deadline, f"{url} did not answer 200 within {timeout} s (last: {last})"
        time.sleep(0.3)


def console_environ(data_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of a console process on `data_dir`: the test run's settings left out."""
    environ = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES and not k.startswith("HYPERV_")}
    environ.update(CONSOLE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **variables)
    return environ


def manage_once(
    environ: dict[str, str], *argv: str, timeout: float = 180, stdin: str = ""
) -> subprocess.CompletedProcess:
    """One manage.py command in that environment, its output captured."""
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *argv],
        cwd=REPO,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Served:
    """`manage.py serve` with its output collected line by line, and manage.py commands beside it
    on the same data directory."""

    def __init__(
        self, data_dir: Path, port: int | None = None, workers: int = 1, env: dict | None = None, args: tuple = ()
    ):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.lines: list[str] = []
        # faulthandler: a web process that hangs can be made to print its threads' stacks (SIGABRT).
        self.env = console_environ(data_dir, **{"PYTHONFAULTHANDLER": "1", **(env or {})})
        argv = ["serve", "--port", str(self.port), "--workers", str(workers), *args]
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), *argv],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def tracebacks(self) -> str:
        """The server's tracebacks so far, each to its exception line: what a failed test should
        show of the server's side."""
        found, inside = [], False
        for line in self.lines:
            inside = inside or line.startswith("Traceback")
            if inside:
                found.append(line)
                # The exception line is the first unindented one after the frames.
                inside = not line or line.startswith((" ", "Traceback"))
        return "\n".join(found[-300:])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def websocket(self, path: str, session: str) -> socket.socket:
        """A browser's websocket handshake with its session cookie, once accepted; the socket stays
        open until closed. The answer's head is read byte by byte: a first frame may follow it."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {self.url('')}\r\nCookie: sessionid={session}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(1)
            assert chunk, f"the server closed the connection: {answer!r}"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 101"), answer
        return sock

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader catch the last lines
                break
            time.sleep(0.1)
        match = re.search(pattern, self.output)
        assert match, f"no {pattern!r} in serve's output:\n{self.output[-5000:]}"
        return match

    def wait_until_running(self, timeout: float = 120) -> None:
        try:
            self.wait_for(r"Console running at", timeout)
            wait_for_page(self.url("/accounts/login/"), timeout, server=self.proc)
        except AssertionError as exc:
            # The server's side of it: a CI run leaves nothing else to read.
            states = self._dump_web_stacks()
            what = str(exc).splitlines()[0]
            raise AssertionError(f"{what}\nchildren: {states}\nserve's output:\n{self.output[-12000:]}") from None

    def _dump_web_stacks(self) -> str:
        """Each child's process state (R, S, D, Z; gone); then a web process still there is made to write
        its threads' Python stacks into serve's output (faulthandler on SIGABRT), which stops the console."""
        pids = self.child_pids()
        states = {name: process_state(pid) or "gone" for name, pid in pids.items()}
        webs = []
        for name, pid in pids.items():
            if not name.startswith("web") or not alive(pid):
                continue
            try:  # still this console's web process, not another that has its pid now
                if b"console.webserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    webs.append(pid)
            except FileNotFoundError:
                pass
        for pid in webs:
            os.kill(pid, signal.SIGABRT)
        if webs:
            time.sleep(2)  # the dump reaches serve's output through the reader thread
        return ", ".join(f"{name} {state}" for name, state in states.items())

    def child_pids(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in re.findall(r"Started (\S+) \(pid (\d+)\)", self.output)}

    def manage(self, *argv: str, stdin: str = "") -> str:
        """A manage.py command on the console's data directory; its output, stripped."""
        done = manage_once(self.env, *argv, timeout=120, stdin=stdin)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    def stop(self) -> None:
        """Never leave serve or its children behind, whatever the test did."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.child_pids().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
