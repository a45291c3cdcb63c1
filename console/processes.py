"""The child processes of `manage.py serve` and the supervisor that runs them as one unit.

A child is a name and an argv. `console_children()` lists them; adding a kind of child (the Hyper-V
host emulator) is one more line there. The supervisor starts them, watches them, and stops them all
together: on a stop request (Ctrl-C, SIGTERM, SIGHUP) it sends SIGTERM, waits, then SIGKILLs what is
left; if one child dies on its own it reports that and stops the rest. The emulated hosts stop last,
once the workers have: a worker following a move whose host vanished would record it failed while
the move completes (issue 17).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

MANAGE_PY = Path(__file__).resolve().parent.parent / "manage.py"

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Child:
    name: str
    argv: tuple[str, ...]
    stops_last: bool = False  # stopped only once every other child has exited
    pass_fds: tuple[int, ...] = ()  # inherited under the same numbers


def web(host: str, port: int, fd: int | None = None, name: str = "web") -> Child:
    """A web process (console.webserver: uvicorn) on host:port, or on the listening socket `fd` that
    serve bound (several web processes share it: the kernel hands each accepted connection to one
    of them)."""
    bind = ("--host", host, "--port", str(port)) if fd is None else ("--fd", str(fd))
    return Child(name, (sys.executable, "-m", "console.webserver", *bind), pass_fds=() if fd is None else (fd,))


def worker(index: int) -> Child:
    # job_worker is db_worker plus the job supervisor. --no-reload: reload defaults to DEBUG, and a
    # reloading worker forks a grandchild we don't track. Each migration holds a worker while it runs.
    return Child(
        f"worker-{index}",
        (sys.executable, str(MANAGE_PY), "job_worker", "--queue-name", "default", "--no-reload"),
    )


def emulator(ready_file: str) -> Child:
    # The Hyper-V host emulator: the simulated fabric's hosts over WinRM, reached through the psrp
    # driver like real hosts. It writes ready_file once every endpoint listens.
    return Child(
        "emulator",
        (sys.executable, str(MANAGE_PY), "hyperv_emulator", "--ready-file", ready_file),
        stops_last=True,
    )


def console_children(
    host: str,
    port: int,
    workers: int,
    emulator_ready: str | None = None,
    web_fd: int | None = None,
    web_processes: int = 1,
) -> list[Child]:
    """Everything the embedded console runs besides the serve command itself (the emulator first).
    Several web processes need the listening socket `web_fd`: a port one of them binds is its own."""
    if web_processes > 1 and web_fd is None:
        raise ValueError("several web processes need a listening socket (web_fd)")
    if web_processes == 1:
        webs = [web(host, port, web_fd)]
    else:
        webs = [web(host, port, web_fd, name=f"web-{i}") for i in range(1, web_processes + 1)]
    return [
        *([emulator(emulator_ready)] if emulator_ready else []),
        *webs,
        *(worker(i) for i in range(1, workers + 1)),
    ]


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when serve dies, even by SIGKILL.

    Children run in their own process group (so Ctrl-C reaches only serve, which stops them in
    order), which means nothing else would stop them if serve were killed outright.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died between fork and prctl; then nobody would ever signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


class Supervisor:
    """Starts children, waits until a stop is requested or one exits, then stops them all."""

    def __init__(
        self,
        children: Iterable[Child],
        *,
        stop_timeout: float = 10.0,
        out: TextIO = sys.stdout,
        env: dict[str, str] | None = None,
        poll_interval: float = 0.2,
    ):
        self.children = list(children)
        self.stop_timeout = stop_timeout
        self.out = out
        self.env = env
        self.poll_interval = poll_interval
        self.procs: dict[str, subprocess.Popen] = {}
        self._stop_signal: int | None = None

    def say(self, message: str) -> None:
        self.out.write(message + "\n")
        self.out.flush()

    def request_stop(self, signum: int, frame=None) -> None:
        # Called from a signal handler: only record it; the loop in wait() does the work.
        self._stop_signal = signum

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.request_stop)

    def start(self, only: set[str] | None = None) -> None:
        """Start the children not started yet (only those named, if given)."""
        hook = _die_with_parent_hook()
        for child in self.children:
            if child.name in self.procs or (only is not None and child.name not in only):
                continue
            # stdin: none of them reads it, and a background process group must not compete for the terminal.
            proc = subprocess.Popen(
                child.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=hook,
                pass_fds=child.pass_fds,
            )
            self.procs[child.name] = proc
            self.say(f"Started {child.name} (pid {proc.pid})")

    def exited(self) -> list[tuple[str, int]]:
        return [(name, proc.returncode) for name, proc in self.procs.items() if proc.poll() is not None]

    def wait(self, until: Callable[[], bool] | None = None) -> int | None:
        """Block until a stop is requested (returns 0), a child exits (returns 1) or `until()` is true (None)."""
        while True:
            if self._stop_signal is not None:
                self.say(f"Received {signal.Signals(self._stop_signal).name}, stopping.")
                self.stop_all()
                return 0
            dead = self.exited()
            if dead:
                name, code = dead[0]
                self.say(f"{name} exited unexpectedly (exit code {code}); stopping the others.")
                self.stop_all()
                return 1
            if until is not None and until():
                return None
            time.sleep(self.poll_interval)

    def stop_all(self) -> None:
        last = {child.name for child in self.children if child.stops_last}
        self._stop([name for name in self.procs if name not in last])
        self._stop([name for name in self.procs if name in last])
        self.say("All processes stopped.")

    def _stop(self, names: list[str]) -> None:
        """SIGTERM these children, wait up to stop_timeout, then SIGKILL what is left."""
        alive = [(name, self.procs[name]) for name in names if self.procs[name].poll() is None]
        for _name, proc in alive:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for name, proc in alive:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} (pid {proc.pid}) did not stop within {self.stop_timeout:g} s; killing it.")
                proc.kill()
                proc.wait()
