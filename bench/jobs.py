"""Progress event to websocket client latency, with 100 clients connected to the real app.

Starts `manage.py serve --workers 0` (its web server, the SQLite channel layer on its own file, the demo
fabric) on a temporary data directory and a free port, logs in over HTTP for a session cookie and
creates --jobs running jobs. Then three kinds of processes, so that none of them measures its own
saturation (the emitters' rendering, the readers' 2,000 frames a second and the web server each have a
process and a GIL of their own):

- reader processes (--readers) connect the clients to /ws/jobs/ (a minimal RFC 6455 client below:
  a client library's own cost per frame would be measured with the server's), wait for each
  client's replay, then note when each progress row arrives;
- emitter processes (--emitters, as the job workers of a deployment; `serve` starts 4) record
  progress samples for their share of the jobs through events.record(), exactly as a worker does:
  the sample is committed, then announced from events.py's background thread (a small message naming
  the job, migrations_ui.jobs.emit), reaching the web server through the channel layer only; it renders.
  Samples are spread evenly over each interval (20 events/s: one every 50 ms, job after job), each
  emitter taking its own jobs' turns.

Latency per client = arrival of the row carrying the sample (matched by job and data-sequence) - the
moment just before record(). Both moments are time.monotonic(), CLOCK_MONOTONIC on Linux: one clock
for the whole machine, so times taken in different processes compare. Prints p50/p99/max,
delivered/expected, and how long the emitter (emit.send_job_update: a query + group_send) took per update.
Everything it started is stopped at the end.

With --redis it starts its own redis-server (it must be installed) and runs the same through
channels_redis instead of the SQLite channel layer.

Then, unless --no-slots, it runs bench/slots.py: slot-free to next-job-running latency with real
job_worker processes (p50, p99).

Run from the repository root: .venv/bin/python bench/jobs.py [--clients 100] [--jobs 1] [--updates 30]
    [--interval 1.0] [--emitters 4] [--readers 1] [--redis] [--web-processes 1] [--no-slots]
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
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEQUENCE = re.compile(rb'<tr id="job-(\d+)" hx-swap-oob="true" data-sequence="(\d+)"')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1, help="running jobs, one sample each per round")
    parser.add_argument("--updates", type=int, default=30, help="rounds of samples")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds (the runner's rate)")
    parser.add_argument("--emitters", type=int, default=4, help="processes recording the samples (job workers)")
    parser.add_argument("--readers", type=int, default=1, help="processes holding the client sockets")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait for late messages")
    parser.add_argument("--timeout", type=float, default=240.0, help="bound on the whole run")
    parser.add_argument("--redis", action="store_true", help="channels_redis on a redis-server of its own")
    parser.add_argument("--web-processes", type=int, default=1, help="serve's web processes (its --web-processes)")
    parser.add_argument(
        "--deflate", action="store_true", help="the clients offer permessage-deflate, as browsers do, and inflate"
    )
    parser.add_argument("--no-slots", action="store_true", help="skip the slot-free latency part (bench/slots.py)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON (bench/run_all.py)")
    # The bench's own child processes: --role reader|emitter with their task as JSON.
    parser.add_argument("--role", choices=("reader", "emitter"), help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- the websocket clients (reader processes) ------------------------------------------------------


class WebSocket:
    """Just enough of a websocket client for the bench: handshake, read text frames, answer pings."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deflate: bool = False):
        self.reader, self.writer = reader, writer
        # permessage-deflate (RFC 7692) when the server accepted the offer: one window per connection.
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflate else None

    @classmethod
    async def connect(cls, port: int, path: str, headers: dict[str, str], deflate: bool = False) -> "WebSocket":
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
            # What browsers offer; a server that does not compress ignores it.
            *(["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"] if deflate else []),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = await reader.readuntil(b"\r\n\r\n")
        if not answer.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(answer.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer, deflate=b"permessage-deflate" in answer.lower())

    async def receive(self) -> bytes | None:
        """The next text message; None when the server closes."""
        message, compressed = b"", False
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
                compressed = compressed or bool(opcode and first & 0x40)  # RSV1 on a message's first frame
                message += payload
                if first & 0x80:
                    if compressed and self.inflater is not None:
                        return self.inflater.decompress(message + b"\x00\x00\xff\xff")
                    return message

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)  # a client masks every frame (RFC 6455 5.3)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self._send(0x8, struct.pack("!H", 1000))
        self.writer.close()


class Clients:
    """One reader process's clients: what arrived, when (monotonic), and what went wrong."""

    def __init__(self):
        self.replayed = 0
        self.arrivals: list[tuple[int, int, int, float]] = []  # (client, job, sequence, time)
        self.errors: list[str] = []
        self.stopping = False


async def listen(ws: WebSocket, number: int, clients: Clients) -> None:
    """Note when each progress row of the bench's jobs arrives; the first message is the replay."""
    first = True
    try:
        while (payload := await ws.receive()) is not None:
            now = time.monotonic()
            if first:
                first = False
                clients.replayed += 1
                continue
            match = SEQUENCE.search(payload[:200])
            if match:
                clients.arrivals.append((number, int(match.group(1)), int(match.group(2)), now))
        reason = "closed by the server"
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        reason = f"connection lost: {exc!r}"
    if not clients.stopping:
        clients.errors.append(reason)


async def read_clients(task: dict) -> dict:
    """Connect task["clients"] clients, say "ready" once all replayed, then listen until told the
    emitters are done (a line on stdin) and every expected row arrived or task["settle"] passed."""
    clients = Clients()
    headers = {"Cookie": task["cookie"], "Origin": f"http://127.0.0.1:{task['port']}"}
    sockets, listeners = [], []
    loop = asyncio.get_running_loop()
    try:
        for number in range(task["clients"]):
            sockets.append(await WebSocket.connect(task["port"], "/ws/jobs/", headers, deflate=task["deflate"]))
            listeners.append(asyncio.create_task(listen(sockets[-1], task["first"] + number, clients)))
        replay_by = time.monotonic() + 60
        while clients.replayed < task["clients"] and time.monotonic() < replay_by:
            await asyncio.sleep(0.05)
        print(f"ready {clients.replayed} {json.dumps(clients.errors[:3])}", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # the emitters are done
        settle = time.monotonic() + task["settle"]
        while len(clients.arrivals) < task["expected"] and time.monotonic() < settle:
            await asyncio.sleep(0.05)
    finally:
        clients.stopping = True
        for ws in sockets:
            ws.close()
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    return {"replayed": clients.replayed, "arrivals": clients.arrivals, "errors": clients.errors}


def reader_main(task: dict) -> None:
    result = asyncio.run(read_clients(task))
    Path(task["out"]).write_text(json.dumps(result))


# --- the samples (emitter processes) ----------------------------------------------------------------


def emitter_main(task: dict) -> None:
    """Record this emitter's samples at their turns, as a job worker does; write when each was
    recorded and how long each announcement (emit.send_job_update) took."""
    import django

    django.setup()
    from django.db import connections

    from migrations_ui.jobs import emit, events
    from migrations_ui.models import MigrationJob

    emit_s: list[float] = []
    send = emit.send_job_update

    def timed(job_id: int) -> None:  # events._send looks it up at each call
        started = time.monotonic()
        send(job_id)
        emit_s.append(time.monotonic() - started)

    emit.send_job_update = timed
    jobs = {job.pk: job for job in MigrationJob.objects.filter(pk__in=[pk for pk, _ in task["turns"]])}
    print("ready", flush=True)
    start = float(sys.stdin.readline())  # a moment on the shared monotonic clock
    sent = []
    try:
        for i in range(1, task["updates"] + 1):
            for pk, turn in task["turns"]:
                due = start + (i - 1) * task["interval"] + turn * task["spacing"]
                time.sleep(max(0.0, due - time.monotonic()))
                sent.append((pk, *sample(events, jobs[pk], i)))
        events.flush(timeout=30)  # the announcements still pending in the background thread
    finally:
        connections.close_all()
    Path(task["out"]).write_text(json.dumps({"sent": sent, "emit_s": emit_s}))


def sample(events, job, i: int) -> tuple[int, float]:
    from django.utils import timezone

    started = time.monotonic()
    event = events.record(
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
    return event.sequence, started


# --- the run (the main process) ------------------------------------------------------------------------


class Run:
    """The temporary data directory, the server and the bench's child processes."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.data_dir = tempfile.mkdtemp(prefix="console-bench-jobs-")
        self.password = secrets.token_urlsafe(16)
        self.redis_port = free_port() if args.redis else None
        self.children: list[subprocess.Popen] = []
        # Before django.setup(), and inherited by the children: the same throwaway files the server
        # uses, nothing from the caller's environment.
        os.environ.update(
            CONSOLE_DATA_DIR=self.data_dir,
            DJANGO_SUPERUSER_PASSWORD=self.password,
            DEBUG="0",
            HYPERV_DRIVER="sim",
            PYTHONUNBUFFERED="1",
        )
        for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SUPERUSER_USERNAME"):
            os.environ.pop(name, None)
        if self.redis_port:
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

    def start_redis(self, deadline: float) -> subprocess.Popen:
        redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5).close()
                return redis
            except OSError:
                time.sleep(0.1)
        redis.kill()
        raise SystemExit("redis-server did not start")

    def start_server(self, port: int, deadline: float) -> subprocess.Popen:
        """serve in its own session, so that stopping it (SIGTERM) stops the web server with it."""
        server = subprocess.Popen(
            [
                *(sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--workers", "0"),
                *("--web-processes", str(self.args.web_processes)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for line in server.stdout:
            if b"Console running at" in line:
                # Keep draining its output in the background, or a full pipe would block the server.
                threading.Thread(target=self.drain, args=(server.stdout,), daemon=True).start()
                return server
            if time.monotonic() > deadline:
                break
        stop_server(server)
        raise SystemExit(f"the server did not start (exit code {server.poll()})")

    def drain(self, stream) -> None:
        with open(os.path.join(self.data_dir, "serve.log"), "wb") as log:
            for line in stream:
                log.write(line)
                if os.environ.get("BENCH_DEBUG"):
                    sys.stdout.buffer.write(b"serve: " + line)

    def child(self, role: str, task: dict) -> subprocess.Popen:
        """A reader or emitter: this script with --role; it says "ready" on stdout when it is."""
        proc = subprocess.Popen(
            [sys.executable, __file__, "--role", role, "--task", json.dumps(task)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.children.append(proc)
        return proc

    def stop_children(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def login(base: str, password: str) -> str:
    """A session cookie, the way a browser gets one: the login form with its CSRF token."""
    import requests

    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
        timeout=10,
        allow_redirects=False,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"login failed: HTTP {answer.status_code}")
    return f"sessionid={session.cookies['sessionid']}"


def running_jobs(count: int) -> list[int]:
    """Live moves of running VMs of the demo fabric, in the running state, as a worker leaves them."""
    from django.db import connections
    from django.utils import timezone

    from fabric.models import Host, VirtualMachine
    from migrations_ui.jobs.events import change_state, record
    from migrations_ui.live import progress
    from migrations_ui.models import JobState, MigrationJob

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
        jobs.append(job.pk)
    connections.close_all()
    if len(jobs) < count:
        raise SystemExit(f"the demo fabric has only {len(jobs)} running VMs")
    return jobs


def tree_cpu_s(root: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants: the server's
    (serve runs the web server in a process group of its own, so the tree, not the group)."""
    stats = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()  # from the state on: ppid is [1]
        except OSError:
            continue  # ended meanwhile
        stats[int(path.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # utime + stime
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[pid][1] for pid in tree if pid in stats) / os.sysconf("SC_CLK_TCK")


def clients_per_web_process(root: int, port: int) -> list[int]:
    """How many connections to `port` each of serve's children holds (Linux: the inodes of
    /proc/net/tcp's established connections, found among each process's descriptors)."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(f"socket:[{fields[9]}]")
    counts = []
    for child in Path(f"/proc/{root}/task/{root}/children").read_text().split():
        held = 0
        for fd in Path(f"/proc/{child}/fd").iterdir():
            try:
                held += os.readlink(fd) in established
            except OSError:
                continue  # closed meanwhile
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)


def wait_ready(procs: list[subprocess.Popen], what: str, deadline: float) -> list[str]:
    lines = []
    for proc in procs:
        line = proc.stdout.readline()  # bounded by the children's own limits (replay: 60 s)
        if not line.startswith("ready") or time.monotonic() > deadline:
            raise SystemExit(f"a {what} process did not start: {line.strip()!r} (exit code {proc.poll()})")
        lines.append(line)
    return lines


def measure(run: Run, server: int, port: int, cookie: str, jobs: list[int], deadline: float) -> dict:
    args = run.args
    out = Path(run.data_dir)
    emitters = max(1, min(args.emitters, len(jobs)))
    readers = max(1, min(args.readers, args.clients))
    spacing = args.interval / len(jobs)
    emitter_procs = [
        run.child(
            "emitter",
            {
                # Job j's turn in each round is j * spacing; emitter e records jobs e, e + emitters, ...
                "turns": [(pk, turn) for turn, pk in enumerate(jobs) if turn % emitters == e],
                "updates": args.updates,
                "interval": args.interval,
                "spacing": spacing,
                "out": str(out / f"emitter-{e}.json"),
            },
        )
        for e in range(emitters)
    ]
    shares = [args.clients // readers + (r < args.clients % readers) for r in range(readers)]
    reader_procs = [
        run.child(
            "reader",
            {
                "port": port,
                "cookie": cookie,
                "clients": share,
                "first": sum(shares[:r]),
                "expected": share * len(jobs) * args.updates,
                "settle": args.settle,
                "deflate": args.deflate,
                "out": str(out / f"reader-{r}.json"),
            },
        )
        for r, share in enumerate(shares)
    ]
    wait_ready(emitter_procs, "emitter", deadline)
    replayed = sum(int(line.split()[1]) for line in wait_ready(reader_procs, "reader", deadline))
    if replayed < args.clients:
        raise SystemExit(f"only {replayed}/{args.clients} clients got their replay")
    spread = clients_per_web_process(server, port)
    print(
        f"{args.clients} clients in {readers} reader process(es) connected and replayed; {args.updates} rounds of"
        f" one sample on each of {len(jobs)} job(s), every {args.interval} s, from {emitters} emitter process(es)"
    )
    print(f"clients per web process: {' / '.join(map(str, spread))}")
    start = time.monotonic() + 0.5
    cpu_before = tree_cpu_s(server)
    for proc in emitter_procs:
        proc.stdin.write(f"{start}\n")
        proc.stdin.flush()
    for proc in emitter_procs:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    server_cpu_s = tree_cpu_s(server) - cpu_before
    for proc in reader_procs:
        proc.stdin.write("done\n")
        proc.stdin.flush()
    for proc in reader_procs:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    results = {"sent": {}, "emit_s": [], "arrivals": [], "errors": []}
    for e in range(emitters):
        part = json.loads((out / f"emitter-{e}.json").read_text())
        results["sent"].update({(pk, seq): at for pk, seq, at in part["sent"]})
        results["emit_s"] += part["emit_s"]
    for r in range(readers):
        part = json.loads((out / f"reader-{r}.json").read_text())
        results["arrivals"] += part["arrivals"]
        results["errors"] += part["errors"]
    results["emitters"], results["readers"] = emitters, readers
    results["server_cpu_s"] = server_cpu_s
    results["clients_per_web_process"] = spread
    return results


def report(results: dict, args, jobs: int) -> dict:
    sent = results["sent"]
    if os.environ.get("BENCH_RAW"):  # every sample and arrival, for a closer look
        raw = {"sent": [[*key, at] for key, at in sent.items()], "arrivals": results["arrivals"]}
        Path(os.environ["BENCH_RAW"]).write_text(json.dumps(raw))
    latencies = [(at - sent[(pk, seq)]) * 1000 for _, pk, seq, at in results["arrivals"] if (pk, seq) in sent]
    expected = args.updates * jobs * args.clients
    figures = {
        "clients": args.clients,
        "events_per_s": jobs / args.interval,
        "delivered": len(latencies),
        "expected": expected,
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "errors": len(results["errors"]),
        "emitters": results["emitters"],
        # The web server's CPU while the samples were sent, per frame it wrote.
        "server_cpu_us_per_frame": 1e6 * results["server_cpu_s"] / max(1, len(latencies)),
        "readers": results["readers"],
        "clients_per_web_process": results["clients_per_web_process"],
        "loadavg": loadavg(),
    }
    print(f"delivered/expected: {len(latencies)}/{expected} ({100 * len(latencies) / expected:.1f}%)")
    if latencies:
        print(
            f"event -> client latency (ms): p50 {figures['p50_ms']:.1f}  p99 {figures['p99_ms']:.1f}"
            f"  max {figures['max_ms']:.1f}  (n={len(latencies)})"
        )
    if latencies:
        # The first page to get a sample measures the emitter and the layer; the spread to the last
        # one, the web process writing the frames (and the readers reading them).
        by_sample: dict[tuple, list[float]] = {}
        for _, pk, seq, at in results["arrivals"]:
            if (pk, seq) in sent:
                by_sample.setdefault((pk, seq), []).append((at - sent[(pk, seq)]) * 1000)
        firsts = [min(v) for v in by_sample.values()]
        spreads = [max(v) - min(v) for v in by_sample.values()]
        print(
            f"first page per sample (ms): p50 {percentile(firsts, 50):.1f}  p99 {percentile(firsts, 99):.1f};"
            f" first to last page (ms): p50 {percentile(spreads, 50):.1f}  p99 {percentile(spreads, 99):.1f}"
        )
    print(
        f"web server CPU while sending: {results['server_cpu_s']:.2f} s,"
        f" {figures['server_cpu_us_per_frame']:.0f} us per frame delivered"
    )
    if results["emit_s"]:
        ms = [s * 1000 for s in results["emit_s"]]
        figures["emit_p50_ms"] = statistics.median(ms)
        print(f"emitter per update, emit.send_job_update (ms): p50 {statistics.median(ms):.1f}  max {max(ms):.1f}")
    if results["errors"]:
        print(f"connection errors: {len(results['errors'])}, first: {results['errors'][0]}")
    print(f"load average (1, 5, 15 min) at the end: {figures['loadavg']}")
    return figures


def main(args: argparse.Namespace) -> None:
    run = Run(args)
    deadline = time.monotonic() + args.timeout
    port = free_port()
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connections

    redis = run.start_redis(deadline) if run.redis_port else None
    server = None
    try:
        server = run.start_server(port, deadline)
        cookie = login(f"http://127.0.0.1:{port}", run.password)
        jobs = running_jobs(args.jobs)
        print(f"channel layer: {'channels_redis' if redis else 'channels_lite SQLiteChannelLayer'}")
        print(f"load average (1, 5, 15 min) at the start: {loadavg()}")
        figures = report(measure(run, server.pid, port, cookie, jobs, deadline), args, len(jobs))
        figures["layer"] = "redis" if redis else "sqlite"
        if args.json:
            Path(args.json).write_text(json.dumps(figures))
    finally:
        run.stop_children()
        if server is not None:
            stop_server(server)
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        connections.close_all()
        shutil.rmtree(run.data_dir, ignore_errors=True)
    if not args.no_slots:
        subprocess.run([sys.executable, str(Path(__file__).with_name("slots.py"))], check=False, timeout=900)


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.role == "reader":
        reader_main(json.loads(ARGS.task))
    elif ARGS.role == "emitter":
        sys.path.insert(0, str(ROOT))
        emitter_main(json.loads(ARGS.task))
    else:
        main(ARGS)
