"""Bench of the VM list page: 100 VMs against 20,000 VMs on a temporary SQLite database.

Run from the repository root: .venv/bin/python bench/inventory.py [--repeat N]

For each fabric size it prints the median server time (test Client, in process) and the number of
queries of the VM list page (first page, a filtered page, a name search), then the ratio of the
large to the small fabric. Target: the large fabric within 1.5x of the small one, same query count.
"""

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = tempfile.mkdtemp(prefix="console-bench-")
# Before django.setup(): a throwaway database, and nothing taken from the caller's environment.
os.environ["CONSOLE_DATA_DIR"] = DATA_DIR
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["DEBUG"] = "0"
for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
    os.environ.pop(name, None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from fabric.models import Cluster, Host, SmbShare, VirtualMachine, VmState  # noqa: E402

GB = 1024**3
SIZES = (100, 20_000)
# (VMs, clusters, nodes per cluster, standalone hosts): about 15-60 VMs per host, as in a real fabric.
LAYOUT = {100: (1, 4, 2), 20_000: (40, 8, 30)}
STATES = [VmState.RUNNING] * 16 + [VmState.OFF] * 3 + [VmState.SAVED]


def build_fabric(vm_count: int) -> None:
    """Clusters of nodes plus standalone hosts, one share per cluster, VMs spread evenly."""
    VirtualMachine.objects.all().delete()
    SmbShare.objects.all().delete()
    Host.objects.all().delete()
    Cluster.objects.all().delete()
    clusters, nodes_per_cluster, standalone = LAYOUT[vm_count]
    now = timezone.now()
    made = Cluster.objects.bulk_create(
        Cluster(name=f"CLU{c:02d}", fqdn=f"clu{c:02d}.contoso.test", functional_level=10, max_parallel_migrations=2)
        for c in range(clusters)
    )
    hosts = [
        Host(fqdn=f"hv{c:02d}n{n}.contoso.test", name=f"hv{c:02d}n{n}", address=f"10.{c}.0.{n + 1}", cluster=cluster)
        for c, cluster in enumerate(made)
        for n in range(nodes_per_cluster)
    ]
    hosts += [
        Host(fqdn=f"hvs{s:03d}.contoso.test", name=f"hvs{s:03d}", address=f"10.250.{s}.1") for s in range(standalone)
    ]
    for host in hosts:
        host.memory_total_bytes, host.memory_available_bytes = 512 * GB, 200 * GB
        host.reachable, host.last_sync, host.os_version = True, now, "Windows Server 2022 Datacenter"
    hosts = Host.objects.bulk_create(hosts)
    shares = SmbShare.objects.bulk_create(
        SmbShare(unc_path=f"\\\\fs{c:02d}.contoso.test\\vms", file_server=f"fs{c:02d}.contoso.test")
        for c in range(clusters)
    )
    share_of = {cluster.pk: share for cluster, share in zip(made, shares, strict=True)}
    kinds = ["app", "web", "sql", "dc", "file", "rds", "build", "test"]
    vms = []
    for i in range(vm_count):
        host = hosts[i % len(hosts)]
        share = share_of.get(host.cluster_id)
        vms.append(
            VirtualMachine(
                guid=uuid.uuid4(),
                name=f"{kinds[i % len(kinds)]}-{i:05d}",
                host=host,
                state=STATES[i % len(STATES)],
                memory_assigned_bytes=(4 + i % 4 * 4) * GB,
                config_version="10.0",
                config_path=f"{share.unc_path}\\vm{i:05d}" if share else f"D:\\Hyper-V\\vm{i:05d}",
                share=share,
                is_clustered=share is not None,
                migrating=i % 97 == 0,
                removed=i % 50 == 0,
                last_seen=now,
            )
        )
    VirtualMachine.objects.bulk_create(vms, batch_size=2000)
    connection.cursor().execute("ANALYZE")


def use_database(path: Path) -> None:
    """Point the default connection at another SQLite file (outside the timed part)."""
    connection.close()
    connection.settings_dict["NAME"] = str(path)
    connection.ensure_connection()


def measure(client: Client, url: str, repeat: int, databases: dict[int, Path]) -> dict[int, tuple]:
    """Per fabric size: median CPU and wall milliseconds, query count and table rows of GET url.

    The request, the ORM and SQLite all run in this process, so its CPU time is the server time
    without the other processes on the machine; the wall time is printed alongside. The sizes are
    measured in turn, request by request, so a busy moment of the machine hits both alike.
    """
    samples: dict[int, tuple[list[float], list[float]]] = {size: ([], []) for size in databases}
    for path in databases.values():
        use_database(path)
        client.get(url)  # warm the caches (templates, statements)
    for _ in range(repeat):
        for size, path in databases.items():
            use_database(path)
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            client.get(url)
            samples[size][0].append((time.process_time() - started_cpu) * 1000)
            samples[size][1].append((time.perf_counter() - started_wall) * 1000)
    results = {}
    for size, path in databases.items():
        use_database(path)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        body = response.content
        rows = body.count(b"<tr") - body.count(b"<thead") - body.count(b'class="group"')
        cpu, wall = samples[size]
        results[size] = (statistics.median(cpu), statistics.median(wall), len(queries), rows)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=25, help="requests per page and size (default 25)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON (bench/run_all.py)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    password = secrets.token_urlsafe(16)
    get_user_model().objects.create_superuser("bench", password=password)  # a role: Administrator
    client = Client()
    if not client.login(username="bench", password=password):
        raise SystemExit("could not log in")
    # One database file per size, each a copy of the migrated one holding the user and the session.
    template = Path(connection.settings_dict["NAME"])
    connection.close()
    databases = {}
    for size in SIZES:
        databases[size] = template.with_name(f"fabric-{size}.sqlite3")
        shutil.copyfile(template, databases[size])
        use_database(databases[size])
        started = time.perf_counter()
        build_fabric(size)
        print(f"fabric of {size:,} VMs on {Host.objects.count()} hosts built in {time.perf_counter() - started:.1f} s")

    # Filters chosen so both fabrics fill a whole page of 50: the comparison is then about the size
    # of the fabric, not about how many rows each page happens to render.
    pages = {
        "VM list, first page": ("/vms/", False),
        "VM list, cluster + state": ("/vms/?cluster=CLU00&state=running", False),
        "VM list, name search": ("/vms/?q=-00", False),
        "VM list, htmx, state": ("/vms/?state=running", True),
        "VM list, page 2": ("/vms/?page=2", False),
    }
    # Selective filters render fewer rows on the small fabric; shown for the absolute figures.
    extra = {
        "htmx, rare state (saved)": ("/vms/?state=saved", True),
        "htmx, search 'sql'": ("/vms/?q=sql", True),
        "All Hosts (grows w/ hosts)": ("/", False),
    }
    small, large = SIZES
    results = {}
    print(f"\nmedian of {args.repeat} requests, server CPU time (wall time in brackets);")
    print("rows = table rows rendered, queries and rows as 100 VMs / 20,000 VMs")
    print(f"{'page':<28} {'100 VMs':>18} {'20,000 VMs':>19} {'ratio':>6}  {'queries':>7}  rows")
    for name, (url, htmx) in {**pages, **extra}.items():
        client.defaults.pop("HTTP_HX_REQUEST", None)
        if htmx:
            client.defaults["HTTP_HX_REQUEST"] = "true"
        by_size = measure(client, url, args.repeat, databases)
        (c_small, w_small, q_small, r_small), (c_large, w_large, q_large, r_large) = by_size[small], by_size[large]
        ratio = c_large / c_small
        flag = ""
        if name in pages and (ratio > 1.5 or q_small != q_large):
            flag = "  <-- off target"
        print(
            f"{name:<28} {c_small:>6.1f} ms ({w_small:>6.1f}) {c_large:>6.1f} ms ({w_large:>6.1f}) {ratio:>5.2f}x"
            f"  {q_small:>3} / {q_large:<3} {r_small} / {r_large}{flag}"
        )
        results[name] = {
            "url": url,
            "targeted": name in pages,
            "small_ms": c_small,
            "large_ms": c_large,
            "ratio": ratio,
            "queries": [q_small, q_large],
        }
    print("target (first five): 20,000-VM time within 1.5x of the 100-VM time, same query count")
    if args.json:
        Path(args.json).write_text(json.dumps(results))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)
