"""Progress event to websocket client latency, with 100 clients connected to the real app.

Starts `manage.py serve --workers 0` (daphne, the SQLite channel layer on its own file, the demo
fabric) on a temporary data directory and a free port, logs in over HTTP for a session cookie and
connects the clients to /ws/jobs/ (a minimal RFC 6455 client below: autobahn's asyncio client cannot
load once daphne has set txaio to Twisted, and `websockets` is not installed; each client waits for
its replay). Then it records progress samples on real running jobs (--jobs, one sample each per
round) through events.record() from this process, as a worker would, so the emitter runs here and
reaches daphne through the channel layer only.
Latency per client = arrival of the row carrying the sample (matched by its data-sequence) - the
moment just before record(). Prints p50/p99/max, delivered/expected, and how long the emitter
(send_job_update: render + group_send; events.py may run it in its background thread) took per
update. Everything it started is stopped at the end.

With --redis it starts its own redis-server (it must be installed) and runs the same through
channels_redis instead of the SQLite channel layer.

Then, unless --no-slots, it runs bench/slots.py: slot-free to next-job-running latency with real
job_worker processes (p50, p99).

Run from the repository root: .venv/bin/python bench/jobs.py [--clients 100] [--jobs 1] [--updates 30]
    [--interval 1.0] [--redis] [--no-slots]
"""

import argparse
import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1, help="running jobs, one sample each per round")
    parser.add_argument("--updates", type=int, default=30, help="rounds of samples")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds (the runner's rate)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait for late messages")
    parser.add_argument("--timeout", type=float, default=240.0, help="bound on the whole run")
    parser.add_argument("--redis", action="store_true", help="channels_redis on a redis-server of its own")
    parser.add_argument("--no-slots", action="store_true", help="skip the slot-free latency part (bench/slots.py)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON (bench/run_all.py)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ARGS = parse_args()
DATA_DIR = tempfile.mkdtemp(prefix="console-bench-jobs-")
PASSWORD = secrets.token_urlsafe(16)
REDIS_PORT = free_port() if ARGS.redis else None
# Before django.setup(): the same throwaway files the server uses, nothing from the caller's environment.
os.environ.update(
    CONSOLE_DATA_DIR=DATA_DIR, DJANGO_SUPERUSER_PASSWORD=PASSWORD, DEBUG="0", HYPERV_DRIVER="sim", PYTHONUNBUFFERED="1"
)
for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SUPERUSER_USERNAME"):
    os.environ.pop(name, None)
if REDIS_PORT:
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.db import connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from fabric.models import Host, VirtualMachine  # noqa: E402
from migrations_ui import progress  # noqa: E402
from migrations_ui.events import change_state, record  # noqa: E402
from migrations_ui.models import JobState, MigrationJob  # noqa: E402

SEQUENCE = re.compile(rb'<tr id="job-(\d+)" hx-swap-oob="true" data-sequence="(\d+)"')


def start_redis(deadline: float) -> subprocess.Popen:
    redis = subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=DATA_DIR,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=0.5).close()
            return redis
        except OSError:
            time.sleep(0.1)
    redis.kill()
    raise SystemExit("redis-server did not start")


def start_server(port: int, deadline: float) -> subprocess.Popen:
    """serve in its own session, so that stopping it (SIGTERM) stops daphne with it."""
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--workers", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    for line in server.stdout:
        if b"Console running at" in line:
            # Keep draining its output in the background, or a full pipe would block the server.
            threading.Thread(target=drain, args=(server.stdout,), daemon=True).start()
            return server
        if time.monotonic() > deadline:
            break
    stop_server(server)
    raise SystemExit(f"the server did not start (exit code {server.poll()})")


def drain(stream) -> None:
    with open(os.path.join(DATA_DIR, "serve.log"), "wb") as log:
        for line in stream:
            log.write(line)
            if os.environ.get("BENCH_DEBUG"):
                sys.stdout.buffer.write(b"serve: " + line)


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def login(base: str) -> str:
    """A session cookie, the way a browser gets one: the login form with its CSRF token."""
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token},
        timeout=10,
        allow_redirects=False,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"login failed: HTTP {answer.status_code}")
    return f"sessionid={session.cookies['sessionid']}"


def running_jobs(count: int) -> list[MigrationJob]:
    """Live moves of running VMs of the demo fabric, in the running state, as a worker leaves them."""
    vms = VirtualMachine.objects.filter(removed=False, state="running").select_related("host").order_by("pk")
    jobs = []
    for vm in vms[:count]:
        destination = Host.objects.exclude(pk=vm.host_id).order_by("pk").first()
        job = MigrationJob.objects.create(
            kind="live", vm=vm, vm_name=vm.name, source=vm.host, destination=destination, state=JobState.QUEUED
        )
        record(job, "created", {"state": JobState.QUEUED, "user": "bench"})
        change_state(job, JobState.RUNNING, started_at=timezone.now(), step="move")
        # Running for a while: samples right after a state change carry whole sections, not the row.
        job.events.update(time=timezone.now() - 2 * progress.SECTIONS_AFTER_CHANGE)
        jobs.append(job)
    if len(jobs) < count:
        raise SystemExit(f"the demo fabric has only {len(jobs)} running VMs")
    return jobs


class WebSocket:
    """Just enough of a websocket client for the bench: handshake, read text frames, answer pings."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str, headers: dict[str, str]) -> "WebSocket":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = await reader.readuntil(b"\r\n\r\n")
        if not answer.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(answer.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    async def receive(self) -> bytes | None:
        """The next text message; None when the server closes."""
        message = b""
        while True:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                return None
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)  # a client masks every frame (RFC 6455 5.3)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self._send(0x8, struct.pack("!H", 1000))
        self.writer.close()


async def listen(ws: WebSocket, bench: "Bench") -> None:
    """Note when each progress row of the bench's jobs arrives; the first message is the replay."""
    first = True
    try:
        while (payload := await ws.receive()) is not None:
            now = time.monotonic()
            if first:
                first = False
                bench.replayed += 1
                continue
            match = SEQUENCE.search(payload[:200])
            if match:
                bench.arrivals.append((id(ws), (int(match.group(1)), int(match.group(2))), now))
        reason = "closed by the server"
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        reason = f"connection lost: {exc!r}"
    if not bench.stopping:
        bench.errors.append(reason)


class Bench:
    def __init__(self):
        self.replayed = 0
        self.arrivals: list[tuple[int, tuple[int, int], float]] = []  # (client, (job, sequence), time)
        self.sent: dict[tuple[int, int], float] = {}
        self.emit_s: list[float] = []
        self.errors: list[str] = []
        self.stopping = False


def send_updates(bench: Bench, jobs: list[MigrationJob], updates: int, interval: float) -> None:
    """Progress samples as workers write them; runs in a thread (the emitter's async_to_sync needs one)."""
    # Spread evenly over the interval (20 events/s: one every 50 ms), as samples from jobs in several
    # workers arrive; a burst of all of them at once would measure this one emitter's queue instead.
    spacing = interval / len(jobs)
    try:
        started = time.monotonic()
        for i in range(1, updates + 1):
            for j, job in enumerate(jobs):
                due = started + ((i - 1) * len(jobs) + j) * spacing
                time.sleep(max(0.0, due - time.monotonic()))
                sample(bench, job, i)
        time.sleep(max(0.0, started + updates * interval - time.monotonic()))
    finally:
        connections.close_all()


def sample(bench: Bench, job: MigrationJob, i: int) -> None:
    started = time.monotonic()
    event = record(
        job,
        "progress",
        {"percent": i % 100},
        percent=i % 100,
        bytes_sent=i * 2**20,
        bytes_remaining=2**34 - i * 2**20,
        pass_number=1 + i // 20,
        transfer_rate_mbps=1100.0,
        heartbeat_at=timezone.now(),
    )
    bench.sent[(job.pk, event.sequence)] = started


def timed_emitter(bench: Bench):
    emit = progress.send_job_update

    def timed(job_id: int) -> None:
        started = time.monotonic()
        emit(job_id)
        bench.emit_s.append(time.monotonic() - started)

    return timed


async def run(args, port: int, cookie: str, jobs: list[MigrationJob], deadline: float) -> Bench:
    bench = Bench()
    progress.send_job_update = timed_emitter(bench)  # events.announce looks it up at each call
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    sockets, readers = [], []
    try:
        for _ in range(args.clients):
            sockets.append(await WebSocket.connect(port, "/ws/jobs/", headers))
            readers.append(asyncio.create_task(listen(sockets[-1], bench)))
        replay_by = min(deadline, time.monotonic() + 60)
        while bench.replayed < args.clients and time.monotonic() < replay_by:
            await asyncio.sleep(0.05)
        if bench.replayed < args.clients:
            raise SystemExit(f"only {bench.replayed}/{args.clients} clients got their replay; {bench.errors[:3]}")
        print(
            f"{args.clients} clients connected and replayed; {args.updates} rounds of one sample on each of"
            f" {len(jobs)} job(s), every {args.interval} s"
        )
        expected = args.updates * len(jobs) * args.clients
        await asyncio.to_thread(send_updates, bench, jobs, args.updates, args.interval)
        settle = min(deadline, time.monotonic() + args.settle)
        while len(bench.arrivals) < expected and time.monotonic() < settle:
            await asyncio.sleep(0.05)
        return bench
    finally:
        bench.stopping = True
        for ws in sockets:
            ws.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(bench: Bench, args) -> dict:
    latencies = [(at - bench.sent[key]) * 1000 for _, key, at in bench.arrivals if key in bench.sent]
    expected = args.updates * args.jobs * args.clients
    figures = {
        "clients": args.clients,
        "events_per_s": args.jobs / args.interval,
        "delivered": len(latencies),
        "expected": expected,
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "errors": len(bench.errors),
    }
    print(f"delivered/expected: {len(latencies)}/{expected} ({100 * len(latencies) / expected:.1f}%)")
    if latencies:
        print(
            f"event -> client latency (ms): p50 {percentile(latencies, 50):.1f}  p99 {percentile(latencies, 99):.1f}"
            f"  max {max(latencies):.1f}  (n={len(latencies)})"
        )
    if bench.emit_s:
        ms = [s * 1000 for s in bench.emit_s]
        print(f"emitter per update, render + group_send (ms): p50 {statistics.median(ms):.1f}  max {max(ms):.1f}")
    if bench.errors:
        print(f"connection errors: {len(bench.errors)}, first: {bench.errors[0]}")
    return figures


def main(args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.timeout
    port = free_port()
    redis = start_redis(deadline) if REDIS_PORT else None
    server = None
    try:
        server = start_server(port, deadline)
        cookie = login(f"http://127.0.0.1:{port}")
        jobs = running_jobs(args.jobs)
        print(f"channel layer: {'channels_redis' if redis else 'channels_lite SQLiteChannelLayer'}")
        bench = asyncio.run(asyncio.wait_for(run(args, port, cookie, jobs, deadline), args.timeout))
        figures = report(bench, args)
        figures["layer"] = "redis" if redis else "sqlite"
        if args.json:
            Path(args.json).write_text(json.dumps(figures))
    finally:
        if server is not None:
            stop_server(server)
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        connections.close_all()
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    if not args.no_slots:
        subprocess.run([sys.executable, str(Path(__file__).with_name("slots.py"))], check=False, timeout=900)


if __name__ == "__main__":
    main(ARGS)
