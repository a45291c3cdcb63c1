"""The history page: finished migrations with their figures, filters (bad ones answered at their
field, never a 500), pages, the CSV export of the filtered rows, the charts per pair of hosts."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from migrations_ui.jobs.operations import create_job
from migrations_ui.planning.estimates import MIN_SAMPLES
from migrations_ui.views.history import PER_PAGE
from tests.fabric.factories import make_cluster, make_host, make_vm
from tests.migrations_ui.past import GIB, finished_job

pytestmark = pytest.mark.django_db
URL = reverse("migrations_ui:history")
CSV_URL = reverse("migrations_ui:history_csv")
READY = {"auth_type": "kerberos", "kerberos_delegation": "configured", "use_any_network": True}


@pytest.fixture
def past(settings):
    settings.SIM_TIME_SCALE = 1
    cluster = make_cluster("CL-A")
    a, b = make_host("hv-a", cluster=cluster, **READY), make_host("hv-b", cluster=cluster, **READY)
    c = make_host("hv-c", **READY)
    web, db = make_vm("web01", host=a), make_vm("db01", host=c)
    noon = timezone.make_aware(datetime(2026, 11, 20, 12, 0))
    jobs = {
        "ab": finished_job(web, a, b, memory_gib=8, sent_gib=9, move_s=30.0, finished_at=noon),
        "ca": finished_job(db, c, a, memory_gib=16, sent_gib=20, move_s=50.0, finished_at=noon + timedelta(days=2)),
        "quick": finished_job(web, a, b, kind="quick", finished_at=noon + timedelta(days=3)),
        "failed": finished_job(db, c, b, state="failed", finished_at=noon + timedelta(days=4)),
    }
    return {"a": a, "b": b, "c": c, "web": web, "db": db, "jobs": jobs, "noon": noon}


def shown(response) -> list[int]:
    return [job.pk for job in response.context["page"]]


def test_it_lists_succeeded_migrations_with_their_figures(viewer_client, past):
    response = viewer_client.get(URL)

    assert response.status_code == 200
    jobs = past["jobs"]
    assert shown(response) == [jobs["quick"].pk, jobs["ca"].pk, jobs["ab"].pk]  # newest first, no failed one
    row = next(j for j in response.context["page"] if j.pk == jobs["ab"].pk)
    assert row.move_s == pytest.approx(30.0) and row.took_s == pytest.approx(34.0)
    assert row.rate_bytes_s == pytest.approx(9 * GIB / 30.0)
    body = response.content.decode()
    assert "8.0\xa0GB" in body and "9.0\xa0GB" in body and "120 ms" in body
    assert f"{9 * GIB / 30.0 / 1e6:.0f} MB/s" in body
    assert reverse("migrations_ui:history") in viewer_client.get(reverse("migrations_ui:jobs")).content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "failed"}, ["failed"]),
        ({"state": "all"}, ["failed", "quick", "ca", "ab"]),
        ({"source": "hv-a.contoso.test"}, ["quick", "ab"]),
        ({"source": "hv-c", "destination": "hv-a"}, ["ca"]),  # a host's short name works too
        ({"cluster": "cl-a"}, ["quick", "ca", "ab"]),  # ca ends in the cluster
        ({"cluster": "CL-A", "state": "all", "source": "hv-c"}, ["failed", "ca"]),
        ({"kind": "quick"}, ["quick"]),
        ({"kind": "live"}, ["ca", "ab"]),
        ({"since": "2026-11-22"}, ["quick", "ca"]),
        ({"until": "2026-11-22"}, ["ca", "ab"]),
        ({"since": "2026-11-21", "until": "2026-11-22"}, ["ca"]),
    ],
)
def test_it_filters(viewer_client, past, params, expected):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    assert response.context["filter"].errors == {}
    assert shown(response) == [past["jobs"][k].pk for k in expected]


def test_dates_are_days_in_the_consoles_time_zone(viewer_client, past, settings):
    """As the Jobs page's: a job finished 23:30 UTC on the 20th is on the 21st in Berlin."""
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    job = finished_job(past["web"], past["a"], past["b"], finished_at=late)
    assert job.pk in shown(viewer_client.get(URL, {"since": "2026-11-20", "until": "2026-11-20"}))
    settings.TIME_ZONE = "Europe/Berlin"
    assert job.pk not in shown(viewer_client.get(URL, {"since": "2026-11-20", "until": "2026-11-20"}))
    response = viewer_client.get(URL, {"since": "2026-11-21", "until": "2026-11-21"})
    assert job.pk in shown(response)
    assert "00:30" in response.content.decode()  # shown in the same zone


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("state", "exploded", "use one of succeeded, failed, cancelled, all"),
        ("source", "hv-nowhere", "there is no such host"),
        ("destination", "x' OR 1=1 --", "there is no such host"),
        ("cluster", "CL-ZZ", "there is no such cluster"),
        ("kind", "teleport", "use one of live, live_vsm"),
        ("since", "2026-02-30", "give a date as 2026-11-25"),
        ("until", "yesterday", "give a date as 2026-11-25"),
        ("since", "9" * 300, "give a date as 2026-11-25"),
    ],
)
def test_a_bad_filter_is_ignored_with_a_message_at_its_field(viewer_client, past, name, value, says):
    response = viewer_client.get(URL, {name: value, "kind": "live"} if name != "kind" else {name: value})

    assert response.status_code == 200
    assert says in response.context["filter"].errors[name]
    body = response.content.decode()
    assert f'id="{name}-error" role="alert"' in body and f'aria-describedby="{name}-error"' in body
    assert len(shown(response)) >= 1  # the other filters still apply, the bad one is dropped
    # The export refuses rather than hand over more than was asked for.
    refused = viewer_client.get(CSV_URL, {name: value})
    assert refused.status_code == 400 and says in refused.content.decode()


def test_the_pages(viewer_client, past):
    for _ in range(PER_PAGE + 3):
        finished_job(past["web"], past["a"], past["b"], finished_at=past["noon"] - timedelta(days=30))
    first = viewer_client.get(URL, {"source": "hv-a"})
    assert first.context["page"].paginator.count == PER_PAGE + 5
    assert 'href="?source=hv-a.contoso.test&amp;page=2"' in first.content.decode()
    second = viewer_client.get(URL, {"source": "hv-a", "page": "2"})
    assert len(second.context["page"]) == 5
    assert viewer_client.get(URL, {"page": "banana"}).status_code == 200
    assert viewer_client.get(URL, {"page": "999"}).status_code == 200


def test_the_csv_export_streams_the_filtered_rows(viewer_client, past):
    response = viewer_client.get(CSV_URL, {"kind": "live", "state": "all"})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="migration-history-')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    jobs = past["jobs"]
    assert [int(r["job"]) for r in rows] == [jobs["failed"].pk, jobs["ca"].pk, jobs["ab"].pk]
    ab = rows[-1]
    assert ab["vm"] == "web01" and ab["kind"] == "live" and ab["state"] == "succeeded"
    assert (ab["source"], ab["destination"]) == ("hv-a.contoso.test", "hv-b.contoso.test")
    assert ab["memory_bytes"] == str(8 * GIB) and ab["bytes_sent"] == str(9 * GIB)
    assert (ab["duration_s"], ab["move_s"], ab["passes"], ab["blackout_ms"]) == ("34.0", "30.0", "3", "120")
    assert ab["average_rate_bytes_s"] == f"{9 * GIB / 30.0:.0f}"
    assert ab["finished_at"] == past["noon"].isoformat()
    assert rows[0]["error_code"] == "0x80070005"


def test_the_csv_keeps_a_vm_name_that_looks_like_a_formula_as_text(viewer_client, past):
    vm = make_vm("=HYPERLINK(1)", host=past["a"])
    finished_job(vm, past["a"], past["b"])
    text = b"".join(viewer_client.get(CSV_URL).streaming_content).decode()
    assert "'=HYPERLINK(1)" in text


def test_a_chart_per_pair_with_the_planners_estimate_beside_the_moves(viewer_client, past):
    a, b = past["a"], past["b"]
    response = viewer_client.get(URL)
    charts = response.context["charts"]
    assert [(c.source.name, c.destination.name, c.moves, c.basis) for c in charts] == [
        ("hv-a", "hv-b", 1, "inventory"),
        ("hv-c", "hv-a", 1, "inventory"),
    ]
    assert '<polyline class="estimate"' in charts[0].svg and charts[0].svg.count('<circle class="move"') == 1
    assert "Estimate from the inventory&#x27;s link speed" in charts[0].svg
    for k in range(MIN_SAMPLES):
        finished_job(past["web"], a, b, memory_gib=2 + k, sent_gib=2 + k, move_s=10.0 + 2 * k)

    charts = viewer_client.get(URL, {"source": "hv-a"}).context["charts"]

    assert [(c.source.name, c.moves, c.basis, c.samples) for c in charts] == [("hv-a", 6, "measured", 6)]
    assert "Estimate from 6 past moves on this pair" in charts[0].svg
    assert charts[0].svg.count('<circle class="move"') == 6
    assert "the median move took" in charts[0].svg  # the <desc> says it in words
    assert viewer_client.get(URL, {"kind": "quick"}).context["charts"] == []  # live moves only


def test_create_job_records_the_vms_memory(operator_user):
    source, destination = make_host("hv-x", **READY), make_host("hv-y", **READY)
    vm = make_vm("app01", host=source, memory_assigned_bytes=12 * GIB)
    assert create_job(vm, destination, user=operator_user).memory_bytes == 12 * GIB


def test_viewers_see_it_and_outsiders_do_not(client, viewer_client, outsider_user, past):
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(CSV_URL).status_code == 200
    client.force_login(outsider_user)
    assert client.get(URL).status_code == 403 and client.get(CSV_URL).status_code == 403
