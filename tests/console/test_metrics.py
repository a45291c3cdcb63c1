"""/metrics: the collector against job, host and process rows, and who may scrape."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditEvent
from console.metrics.collector import registry
from migrations_ui.models import MigrationJob, ProcessBeat
from tests.fabric.factories import make_host, make_vm
from tests.migrations_ui.views.test_jobs_pages import make_job as job_row

pytestmark = pytest.mark.django_db
TOKEN = "t" * 40


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape() -> dict[tuple, float]:
    from prometheus_client import generate_latest

    return samples(generate_latest(registry()).decode())


def make_job(vm, source, destination, state, kind="live", seconds=None, **fields):
    """A job row in `state`, started `seconds` ago (and ended now, when it ended)."""
    if seconds is not None:
        fields["started_at"] = timezone.now() - timedelta(seconds=seconds)
    return job_row(source, destination, state, kind, vm=vm, **fields)


@pytest.fixture
def fabric():
    now = timezone.now()
    a = make_host("hv-a", reachable=True, last_sync=now - timedelta(seconds=90))
    b = make_host("hv-b", reachable=False, last_sync=None)
    return a, b


def test_it_counts_ended_and_started_migrations_by_kind_and_state_with_the_bytes_of_succeeded_ones(fabric):
    a, b = fabric
    vm = make_vm("web01", host=a)
    make_job(vm, a, b, "succeeded", seconds=20, blackout_ms=80, bytes_sent=1000)
    make_job(vm, a, b, "succeeded", seconds=400, blackout_ms=1500, bytes_sent=3000)
    make_job(vm, a, b, "failed", seconds=5, bytes_sent=77)
    make_job(vm, a, a, "cancelled", kind="storage", started_at=None)  # cancelled while queued: never started
    make_job(make_vm("db01", host=a), a, b, "running", seconds=3)

    found = scrape()
    assert found[("hvmc_migrations_total", (("kind", "live"), ("state", "succeeded")))] == 2
    assert found[("hvmc_migrations_total", (("kind", "live"), ("state", "failed")))] == 1
    assert found[("hvmc_migrations_total", (("kind", "storage"), ("state", "cancelled")))] == 1
    assert found[("hvmc_migrations_started_total", (("kind", "live"),))] == 4
    assert ("hvmc_migrations_started_total", (("kind", "storage"),)) not in found
    assert found[("hvmc_migration_bytes_moved_total", (("kind", "live"),))] == 4000


def test_it_counts_durations_and_blackouts_into_cumulative_buckets(fabric):
    a, b = fabric
    vm = make_vm("web01", host=a)
    make_job(vm, a, b, "succeeded", seconds=20, blackout_ms=80)
    make_job(vm, a, b, "succeeded", seconds=400, blackout_ms=1500)
    make_job(vm, a, b, "failed", seconds=5)  # only succeeded moves are timed

    found = scrape()
    duration = {
        dict(labels)["le"]: value
        for (name, labels), value in found.items()
        if name == "hvmc_migration_duration_seconds_bucket"
    }
    assert duration["10.0"] == 0 and duration["30.0"] == 1 and duration["300.0"] == 1 and duration["600.0"] == 2
    assert duration["+Inf"] == 2
    assert found[("hvmc_migration_duration_seconds_count", (("kind", "live"),))] == 2
    assert found[("hvmc_migration_duration_seconds_sum", (("kind", "live"),))] == pytest.approx(420, abs=1)
    blackout = {
        dict(labels)["le"]: value
        for (name, labels), value in found.items()
        if name == "hvmc_migration_blackout_seconds_bucket"
    }
    assert blackout["0.05"] == 0 and blackout["0.1"] == 1 and blackout["1.0"] == 1 and blackout["2.0"] == 2
    assert found[("hvmc_migration_blackout_seconds_sum", (("kind", "live"),))] == pytest.approx(1.58)


def test_it_reports_the_queue_slots_hosts_and_their_last_sync(fabric):
    a, b = fabric
    make_job(make_vm("web01", host=a), a, b, "running", seconds=3)
    make_job(make_vm("web02", host=a), a, b, "queued")
    make_job(make_vm("web03", host=a), a, b, "queued")

    found = scrape()
    assert found[("hvmc_queue_depth", ())] == 2
    assert found[("hvmc_migrations_active", (("state", "running"),))] == 1
    assert found[("hvmc_host_slots_in_use", (("host", a.fqdn), ("slot", "live")))] == 1
    assert found[("hvmc_host_slots_in_use", (("host", b.fqdn), ("slot", "live")))] == 1
    assert found[("hvmc_host_slots_in_use", (("host", a.fqdn), ("slot", "storage")))] == 0
    assert found[("hvmc_host_slots_limit", (("host", a.fqdn), ("slot", "live")))] == a.effective_max_live_migrations
    assert found[("hvmc_host_slots_limit", (("host", a.fqdn), ("slot", "storage")))] == a.max_storage_migrations
    assert found[("hvmc_hosts_reachable", ())] == 1 and found[("hvmc_hosts", ())] == 2
    assert found[("hvmc_host_reachable", (("host", b.fqdn),))] == 0
    assert 89 <= found[("hvmc_host_last_sync_age_seconds", (("host", a.fqdn),))] < 120
    assert ("hvmc_host_last_sync_age_seconds", (("host", b.fqdn),)) not in found  # never synced


def test_it_counts_live_workers_and_the_websocket_clients_of_live_web_processes():
    now = timezone.now()
    beat = {"started_at": now - timedelta(hours=2)}
    ProcessBeat.objects.create(kind="worker", name="m1:10", beat_at=now - timedelta(seconds=4), **beat)
    ProcessBeat.objects.create(kind="worker", name="m1:11", beat_at=now - timedelta(minutes=5), **beat)  # gone
    ProcessBeat.objects.create(kind="web", name="m1:20", beat_at=now, websocket_clients=3, **beat)
    ProcessBeat.objects.create(kind="web", name="m2:20", beat_at=now, websocket_clients=2, **beat)
    ProcessBeat.objects.create(kind="web", name="m2:21", beat_at=now - timedelta(hours=1), websocket_clients=9, **beat)

    found = scrape()
    assert found[("hvmc_workers_alive", ())] == 1
    assert 3 <= found[("hvmc_worker_heartbeat_age_seconds", (("worker", "m1:10"),))] < 10
    assert ("hvmc_worker_heartbeat_age_seconds", (("worker", "m1:11"),)) not in found
    clients = {dict(labels)["process"]: v for (name, labels), v in found.items() if name == "hvmc_websocket_clients"}
    assert clients == {"m1:20": 3, "m2:20": 2}


def test_it_answers_a_scrape_with_the_same_queries_for_many_jobs_as_for_few(fabric):
    a, b = fabric
    vm = make_vm("web01", host=a)
    make_job(vm, a, b, "succeeded", seconds=20, blackout_ms=80)
    with CaptureQueriesContext(connection) as few:
        scrape()
    MigrationJob.objects.bulk_create(
        MigrationJob(kind="live", vm=vm, vm_name="web01", source=a, destination=b, state="succeeded")
        for _ in range(300)
    )
    with CaptureQueriesContext(connection) as many:
        scrape()
    assert len(many) == len(few) <= 15


# Access: off by default, then a token and/or the scrapers' networks.


def test_it_is_off_without_a_token_or_networks(client, settings, admin_user):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", ()
    assert client.get("/metrics").status_code == 404
    client.force_login(admin_user)  # not even for a signed-in administrator
    assert client.get("/metrics").status_code == 404


def test_it_asks_for_the_token_and_compares_it(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = TOKEN, ()
    assert client.get("/metrics").status_code == 401
    refused = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert AuditEvent.objects.filter(action="metrics_refused").count() == 2

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"hvmc_queue_depth 0.0" in response.content
    assert client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


def test_it_serves_the_allowed_networks_only(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", (ipaddress.ip_network("10.1.0.0/16"),)
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_it_needs_both_when_both_are_set(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = TOKEN, (ipaddress.ip_network("127.0.0.1/32"),)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1", headers=bearer).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", headers=bearer).status_code == 200


def test_a_signed_in_user_without_a_role_still_needs_the_token(client, settings, outsider_user):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = TOKEN, ()
    client.force_login(outsider_user)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


# Settings: a bad value stops start-up naming the variable.


def test_it_reads_the_scrapers_networks():
    from console import env

    assert env.parse_networks("METRICS_ALLOW", None) == ()
    assert env.parse_networks("METRICS_ALLOW", " 127.0.0.1/32, 10.0.0.0/8,::1 ") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


@pytest.mark.parametrize("raw", ["10.0.0.1/8", "localhost", "10.0.0.0/33"])
def test_it_refuses_what_is_no_network(raw):
    from console import env

    with pytest.raises(env.ConfigError, match=r"^METRICS_ALLOW: "):
        env.parse_networks("METRICS_ALLOW", raw)


@pytest.mark.parametrize("raw", ["short", "x" * 31, "has a space in it but is long enough......"])
def test_it_refuses_a_weak_token(raw):
    from console import env

    with pytest.raises(env.ConfigError, match=r"^METRICS_TOKEN must"):
        env.parse_token("METRICS_TOKEN", raw)
    assert env.parse_token("METRICS_TOKEN", None) == "" and env.parse_token("METRICS_TOKEN", TOKEN) == TOKEN


def test_it_refuses_in_german_too(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = TOKEN, ()
    response = client.get("/metrics", headers={"Accept-Language": "de"})
    assert response.status_code == 401 and "Metrik-Token" in response.content.decode()


def test_the_grafana_dashboard_asks_only_for_metrics_the_console_exports():
    import json
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hyperv-migration-console.json"
    dashboard = json.loads(path.read_text())
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    exported = {f.name + s for f in registry().collect() for s in suffixes[f.type]}
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bhvmc_\w+", expr)}
    assert exprs and used and used <= exported, used - exported
    shown = {name.removesuffix("_total").removesuffix("_bucket") for name in used}
    assert {f.name for f in registry().collect()} <= shown  # and every metric has a panel
