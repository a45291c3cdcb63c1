"""/metrics of a running console (`manage.py serve`: the web server, four job workers, the Hyper-V host
emulator) scraped while the workers run an evacuation's moves: the counters never go back, and at
the end they are what the database says."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.api.test_live import call
from tests.console.test_metrics import samples
from tests.served import Served

pytestmark = pytest.mark.slow
TOKEN = "scrape-" + "s" * 40
COUNTERS = ("hvmc_migrations_total", "hvmc_migrations_started_total", "hvmc_migration_bytes_moved_total")
# What the database says, read by the console's own manage.py shell on its database.
DATABASE_COUNTS = """
import json
from django.db.models import Count, Sum
from migrations_ui.models import FINAL_STATES, MigrationJob
jobs = MigrationJob.objects
print(json.dumps({
    "ended": [[r["kind"], r["state"], r["n"]] for r in jobs.filter(state__in=FINAL_STATES)
              .values("kind", "state").annotate(n=Count("pk"))],
    "started": [[r["kind"], r["n"]] for r in jobs.filter(started_at__isnull=False)
                .values("kind").annotate(n=Count("pk"))],
    "bytes": [[r["kind"], r["b"]] for r in jobs.filter(state="succeeded").values("kind").annotate(b=Sum("bytes_sent"))],
    "active": jobs.exclude(state__in=FINAL_STATES).count(),
}))
"""


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    served = Served(tmp_path_factory.mktemp("console"), workers=4, env={"SIM_TIME_SCALE": "30", "METRICS_TOKEN": TOKEN})
    try:
        served.wait_until_running()
        served.token = served.manage("create_api_token", "admin", "--name", "metrics test")
        yield served
    finally:
        served.stop()


def scrape(console) -> dict[tuple, float]:
    request = urllib.request.Request(console.url("/metrics"), headers={"Authorization": f"Bearer {TOKEN}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own http://127.0.0.1 URL
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return samples(response.read().decode())


def counters(found: dict[tuple, float]) -> dict[tuple, float]:
    return {key: value for key, value in found.items() if key[0] in COUNTERS}


def test_the_counters_add_up_to_the_database_while_four_workers_run_moves(console):
    token = console.token
    status, hosts = call(console, "GET", "/hosts?limit=100", token)
    assert status == 200
    batches = []
    for host in [h["fqdn"] for h in hosts["items"]][:2]:  # two evacuations: moves queue for slots
        status, batch = call(console, "POST", "/evacuations", token, {"host": host, "move_stopped": True})
        if status == 201:
            batches.append(batch["id"])
            # The last move is still queued behind the others: cancelled, it counts as cancelled.
            assert call(console, "POST", f"/migrations/{batch['jobs'][-1]['id']}/cancel", token)[0] == 200
    assert batches, "no evacuation could start"

    previous, workers_seen, queued_seen, scrapes, started = {}, 0, 0, 0, time.monotonic()
    while True:
        found = scrape(console)
        scrapes += 1
        for key, value in counters(found).items():
            assert value >= previous.get(key, 0), (key, value, previous.get(key))  # a counter never goes back
        previous = counters(found)
        workers_seen = max(workers_seen, found.get(("hvmc_workers_alive", ()), 0))
        queued_seen = max(queued_seen, found[("hvmc_queue_depth", ())])
        for (name, labels), value in found.items():
            if name == "hvmc_host_slots_in_use":
                limit = found[("hvmc_host_slots_limit", labels)]
                assert value <= limit, (labels, value, limit)  # admission keeps to every host's limit
        finished = [call(console, "GET", f"/batches/{pk}", token)[1]["finished"] for pk in batches]
        if all(finished):
            break
        assert time.monotonic() - started < 300, "the evacuations are still running"
        time.sleep(0.5)

    database = json.loads(console.manage("shell", "-c", DATABASE_COUNTS).splitlines()[-1])
    found = scrape(console)
    ended = {(k, s): n for k, s, n in database["ended"]}
    assert sum(ended.values()) > 1 and database["active"] == 0
    assert {state for _, state in ended} >= {"succeeded", "cancelled"}, ended
    assert {
        (dict(labels)["kind"], dict(labels)["state"]): value
        for (name, labels), value in found.items()
        if name == "hvmc_migrations_total"
    } == ended
    assert {dict(labels)["kind"]: v for (n, labels), v in found.items() if n == "hvmc_migrations_started_total"} == {
        kind: n for kind, n in database["started"]
    }
    assert {dict(labels)["kind"]: v for (n, labels), v in found.items() if n == "hvmc_migration_bytes_moved_total"} == {
        kind: b for kind, b in database["bytes"]
    }
    succeeded = sum(n for (_, state), n in ended.items() if state == "succeeded")
    assert sum(v for (n, _), v in found.items() if n == "hvmc_migration_duration_seconds_count") == succeeded
    assert found[("hvmc_queue_depth", ())] == 0
    assert scrapes > 3 and workers_seen == 4, (scrapes, workers_seen)
    assert found[("hvmc_hosts", ())] == len(hosts["items"])


def websocket_clients(console) -> float:
    return sum(v for (name, _), v in scrape(console).items() if name == "hvmc_websocket_clients")


def wait_for_clients(console, expected: int) -> None:
    deadline = time.monotonic() + 20
    while websocket_clients(console) != expected:
        assert time.monotonic() < deadline, f"hvmc_websocket_clients is not {expected}"
        time.sleep(0.3)


def test_the_web_process_reports_its_websocket_clients(console):
    session = console.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; from django.test import Client; c = Client(); "
        "c.force_login(User.objects.get(username='admin')); print(c.cookies['sessionid'].value)",
    ).splitlines()[-1]  # fmt: skip
    sockets = [console.websocket("/ws/jobs/", session) for _ in range(3)]
    try:
        wait_for_clients(console, 3)
    finally:
        for sock in sockets:
            sock.close()
    wait_for_clients(console, 0)
