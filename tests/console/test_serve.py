"""`manage.py serve` as an operator runs it, and the supervisor under it."""

from __future__ import annotations

import html
import http.cookiejar
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from console.processes import Child, Supervisor, console_children
from tests.served import Served, alive, console_environ, free_port, gone_within, manage_once, wait_for_page

REPO = Path(__file__).resolve().parents[2]


def log_in(served: Served, username: str, password: str) -> urllib.request.OpenerDirector:
    """A real browser-like login: CSRF cookie from the form page, token in the POST body."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(served.url("/accounts/login/"), timeout=10) as response:
        form = response.read().decode()
    token = html.unescape(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1))
    assert any(cookie.name == "csrftoken" for cookie in jar)
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    with opener.open(served.url("/accounts/login/"), data=body.encode(), timeout=10) as response:
        assert response.status == 200
        assert "/accounts/login/" not in response.url, "login was refused"
    return opener


@pytest.mark.slow
def test_it_serves_the_console_and_stops_cleanly(tmp_path):
    port = free_port()
    served = Served(tmp_path, port)
    try:
        wait_for_page(served.url("/accounts/login/"))
        served.wait_for(r"Console running at http://127\.0\.0\.1:\d+/")
        password = served.wait_for(r"Created superuser 'admin' with password: (\S+)").group(1)

        opener = log_in(served, "admin", password)
        with opener.open(served.url("/"), timeout=10) as response:
            assert response.status == 200
            assert response.url == served.url("/")
            assert "Server" not in response.headers  # the web server does not name itself

        with opener.open(served.url("/static/django_htmx/htmx-2.min.js"), timeout=10) as response:
            assert response.status == 200
            assert b"htmx" in response.read()

        pids = served.child_pids()
        assert set(pids) == {"emulator", "web", "worker-1"}  # the Hyper-V host emulator of the embedded default
        worker_cmdline = Path(f"/proc/{pids['worker-1']}/cmdline").read_bytes().split(b"\0")
        assert b"job_worker" in worker_cmdline
        assert b"--no-reload" in worker_cmdline
        assert alive(pids["worker-1"])

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=15) == 0
        assert not [name for name, pid in pids.items() if alive(pid)]
        served.wait_for(r"All processes stopped")
    finally:
        served.stop()

    first_output = served.output
    # Same data dir again: no new admin password, no second seeding.
    again = Served(tmp_path, free_port())
    try:
        wait_for_page(again.url("/accounts/login/"))
        again.wait_for(r"Console running at")
        assert "Created superuser" not in again.output
        seeded = "seeding the demo fabric" in first_output and "seed_demo is not usable" not in first_output
        if seeded:
            assert "seeding the demo fabric" not in again.output
        assert password not in again.output

        # A child that dies on its own takes the rest down, with a non-zero exit.
        pids = again.child_pids()
        os.kill(pids["worker-1"], signal.SIGKILL)
        assert again.proc.wait(timeout=20) != 0
        again.wait_for(r"worker-1 exited unexpectedly")
        assert not alive(pids["web"])
    finally:
        again.stop()


def serve_once(data_dir, *argv: str) -> subprocess.CompletedProcess:
    """`manage.py serve ARGV` on a data directory of its own, for the tests where serve refuses to
    start (and so returns within the timeout)."""
    return manage_once(console_environ(data_dir), "serve", *argv, timeout=60)


def test_it_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = serve_once(tmp_path, "--port", str(port))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    # Refused before touching anything.
    assert not (tmp_path / "db.sqlite3").exists()


def test_it_says_running_only_once_the_web_server_answers(monkeypatch):
    """A web server slow to come up is said to be so once, and waited for: "Console running at" is
    printed only when a connection is accepted (it used to follow the 60 s notice regardless)."""
    from console.management.commands import serve

    monkeypatch.setattr(serve, "READY_TIMEOUT_S", 0)
    out = io.StringIO()
    port = free_port()
    ready = serve.Command(stdout=out)._ready_check("127.0.0.1", port)

    assert [ready(), ready(), ready()] == [False, False, False]
    assert out.getvalue().count("not answering yet after 0 s; still waiting") == 1
    with socket.socket() as web:
        web.bind(("127.0.0.1", port))
        web.listen()
        assert ready()


@pytest.mark.slow
def test_several_web_processes_share_an_ipv6_socket(tmp_path):
    """The web processes adopt the socket serve binds whatever its family (daphne's took IPv4 only)."""
    served = Served(tmp_path, workers=0, env={"HYPERV_DRIVER": "sim"}, args=("--host", "::1", "--web-processes", "2"))
    try:
        served.wait_for(r"Console running at http://\[::1\]:\d+/", timeout=120)
        assert set(served.child_pids()) == {"web-1", "web-2"}
        with socket.create_connection(("::1", served.port), timeout=10) as sock:
            sock.sendall(b"GET /accounts/login/ HTTP/1.0\r\nHost: [::1]\r\n\r\n")
            assert sock.recv(9) == b"HTTP/1.1 "
    finally:
        served.stop()
    assert served.proc.returncode == 0, served.output[-3000:]


def test_it_lists_one_web_server_and_the_workers():
    children = console_children("127.0.0.1", 8123, workers=3)
    assert [c.name for c in children] == ["web", "worker-1", "worker-2", "worker-3"]
    assert children[0].argv[1:3] == ("-m", "console.webserver")
    assert children[0].argv[children[0].argv.index("--port") + 1] == "8123"
    for child in children[1:]:
        assert child.argv[-4:] == ("job_worker", "--queue-name", "default", "--no-reload")


def test_several_web_processes_share_the_socket_serve_listens_on():
    children = console_children("127.0.0.1", 8123, workers=1, web_fd=7, web_processes=2)
    assert [c.name for c in children] == ["web-1", "web-2", "worker-1"]
    for child in children[:2]:
        assert child.argv[child.argv.index("--fd") + 1] == "7"
        assert "--port" not in child.argv
        assert child.pass_fds == (7,)
    assert children[2].pass_fds == ()
    with pytest.raises(ValueError):
        console_children("127.0.0.1", 8123, workers=1, web_processes=2)  # no socket to share


def sleeper(name: str, code: str = "import time; time.sleep(60)") -> Child:
    return Child(name, (sys.executable, "-c", code))


def test_it_stops_every_child_on_request():
    supervisor = Supervisor([sleeper("a"), sleeper("b")], out=io.StringIO(), stop_timeout=5)
    try:
        supervisor.start()
        supervisor.request_stop(signal.SIGTERM)
        assert supervisor.wait() == 0
        assert all(p.returncode == -signal.SIGTERM for p in supervisor.procs.values())
    finally:
        supervisor.stop_all()


def test_it_stops_the_others_when_one_child_dies():
    out = io.StringIO()
    supervisor = Supervisor([sleeper("steady"), sleeper("fragile", "raise SystemExit(3)")], out=out)
    try:
        supervisor.start()
        assert supervisor.wait() == 1
        assert "fragile exited unexpectedly (exit code 3)" in out.getvalue()
        assert supervisor.procs["steady"].returncode is not None
    finally:
        supervisor.stop_all()


def test_it_stops_the_workers_before_the_emulator(tmp_path):
    """A worker stopping finishes following its move; the emulated host must still answer meanwhile."""
    log = tmp_path / "stopped"
    on_sigterm = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(float(sys.argv[2]))\n"  # a worker takes a while to end its task
        "    open(sys.argv[1], 'a').write(sys.argv[3] + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop); open(sys.argv[1] + '.' + sys.argv[3], 'w'); time.sleep(60)\n"
    )
    delays = {"emulator": "0", "web": "0", "worker-1": "0.5", "worker-2": "0.3"}
    children = [
        replace(child, argv=(sys.executable, "-c", on_sigterm, str(log), delays[child.name], child.name))
        for child in console_children("127.0.0.1", 8123, workers=2, emulator_ready=str(tmp_path / "ready"))
    ]
    supervisor = Supervisor(children, out=io.StringIO(), stop_timeout=10)
    try:
        supervisor.start()
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("stopped.*"))) < len(children) and time.monotonic() < deadline:
            time.sleep(0.05)  # until every child has its handler
        supervisor.request_stop(signal.SIGTERM)
        assert supervisor.wait() == 0
    finally:
        supervisor.stop_all()

    order = log.read_text().split()
    assert sorted(order) == ["emulator", "web", "worker-1", "worker-2"]
    assert order[-1] == "emulator"


def test_it_kills_a_child_that_ignores_sigterm(tmp_path):
    flag = tmp_path / "ignoring"
    code = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    )
    stubborn = Child("stubborn", (sys.executable, "-c", code, str(flag)))
    out = io.StringIO()
    supervisor = Supervisor([stubborn], out=out, stop_timeout=0.5)
    try:
        supervisor.start()
        deadline = time.monotonic() + 10
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.request_stop(signal.SIGINT)
        started = time.monotonic()
        assert supervisor.wait() == 0
        assert time.monotonic() - started < 5
        assert supervisor.procs["stubborn"].returncode == -signal.SIGKILL
        assert "did not stop within 0.5 s; killing it" in out.getvalue()
    finally:
        supervisor.stop_all()


def test_it_takes_children_down_when_serve_itself_is_killed(tmp_path):
    """Children run in their own process group, so the kernel must end them if serve dies by SIGKILL."""
    code = (
        "import sys, time; from console.processes import Child, Supervisor;"
        "s = Supervisor([Child('c', (sys.executable, '-c', 'import time; time.sleep(60)'))]);"
        "s.start(); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    child_pid = None
    try:
        line = parent.stdout.readline()
        child_pid = int(re.search(r"pid (\d+)", line).group(1))
        assert alive(child_pid)
        parent.kill()
        parent.wait(timeout=10)
        assert gone_within(child_pid, 10)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child_pid and alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


# --- several web processes -------------------------------------------------------------------------

MAKE_JOB = """
from fabric.models import Host, VirtualMachine
from migrations_ui.models import JobState, MigrationJob
vm = VirtualMachine.objects.filter(removed=False, state="running").select_related("host").first()
job = MigrationJob.objects.create(
    kind="live", vm=vm, vm_name=vm.name, source=vm.host,
    destination=Host.objects.exclude(pk=vm.host_id).first(), state=JobState.QUEUED,
)
print(job.pk)
"""


def open_jobs_websocket(served: Served, session: str) -> socket.socket:
    """A browser's websocket on the Jobs page, once its replay arrived (the page has joined the group)."""
    sock = served.websocket("/ws/jobs/", session)
    read_frame(sock)  # the replay
    return sock


def read_frame(sock: socket.socket) -> bytes:
    """One unfragmented frame's payload (the server does not mask)."""
    head = read_exactly(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(read_exactly(sock, 2), "big")
    elif length == 127:
        length = int.from_bytes(read_exactly(sock, 8), "big")
    return read_exactly(sock, length)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed the websocket"
        data += chunk
    return data


def serving_pid(client: socket.socket, server_port: int, pids: set[int]) -> int:
    """Which of `pids` holds the server side of this TCP connection (Linux: /proc/net/tcp's socket
    inodes, then the processes' descriptors)."""
    client_port = client.getsockname()[1]
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local_port, remote_port) == (server_port, client_port):
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue  # closed meanwhile
    raise AssertionError(f"no web process holds the connection from port {client_port}")


@pytest.mark.slow
def test_with_two_web_processes_every_page_gets_a_jobs_update(tmp_path):
    """Each web process has its own fan-out subscription: a worker's message reaches the pages of both."""
    served = Served(tmp_path, workers=0, env={"HYPERV_DRIVER": "sim"}, args=("--web-processes", "2"))
    sockets = []
    try:
        served.wait_until_running()
        pids = served.child_pids()
        assert set(pids) == {"web-1", "web-2"}
        session = served.manage(
            "shell", "-c",
            "from django.contrib.auth.models import User; from django.test import Client; c = Client(); "
            "c.force_login(User.objects.get(username='admin')); print(c.cookies['sessionid'].value)",
        ).splitlines()[-1]  # fmt: skip
        job_id = int(served.manage("shell", "-c", MAKE_JOB).splitlines()[-1])

        seen: dict[int, int] = {}
        while len(seen) < 2 or len(sockets) < 6:
            assert len(sockets) < 60, f"every connection went to one web process: {seen}"
            sockets.append(open_jobs_websocket(served, session))
            pid = serving_pid(sockets[-1], served.port, set(pids.values()))
            seen[pid] = seen.get(pid, 0) + 1

        served.manage("shell", "-c", f"from migrations_ui.jobs.emit import send_job_update; send_job_update({job_id})")
        for sock in sockets:
            while f'id="job-{job_id}"'.encode() not in read_frame(sock):
                pass  # another update (the demo fabric's sync) may come first
    finally:
        for sock in sockets:
            sock.close()
        served.stop()
    assert served.proc.returncode == 0, served.output[-3000:]
