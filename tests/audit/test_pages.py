import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from audit.log import record
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(operator_user):
    record("migration.requested", actor=operator_user, target_type="virtualmachine", target_name="web01")
    record("migration.failed", actor=operator_user, target_type="virtualmachine", target_name="db01", outcome="failure")
    record("permission_denied", target_type="url", target_name="/jobs/1/cancel/", outcome="denied")
    record("host.settings_changed", target_type="host", target_name="=cmd|' /C calc'!A0", details={"a": "b"})
    return list(AuditEvent.objects.order_by("id"))


def test_a_viewer_reviews_the_trail(viewer_client, trail):
    response = viewer_client.get(reverse("audit:list"))

    assert response.status_code == 200
    body = response.content.decode()
    for event in trail:
        assert event.action in body
    assert "web01" in body and "Export CSV" in body


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "migration."}, {"migration.requested", "migration.failed"}),
        ({"outcome": "denied"}, {"permission_denied"}),
        ({"actor": "OPERATOR"}, {"migration.requested", "migration.failed"}),
        ({"target": "db0"}, {"migration.failed"}),
        ({"since": "2000-01-01", "until": "2999-12-31", "action": "host."}, {"host.settings_changed"}),
        ({"until": "2000-01-01"}, set()),
    ],
)
def test_it_filters(viewer_client, trail, params, expected):
    page = viewer_client.get(reverse("audit:list"), params).context["page"]
    assert {e.action for e in page} == expected


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"outcome": "maybe"}, {"page": "x"}])
def test_it_ignores_bad_filters_with_a_notice(viewer_client, trail, params):
    response = viewer_client.get(reverse("audit:list"), params)
    assert response.status_code == 200
    if "page" not in params:
        assert "Ignored" in response.content.decode()
    assert len(response.context["page"]) == len(trail)


def test_the_detail_shows_the_hashes_and_details(viewer_client, trail):
    event = trail[-1]
    body = viewer_client.get(reverse("audit:detail", args=[event.pk])).content.decode()
    assert event.hash in body and event.prev_hash in body and "&quot;a&quot;: &quot;b&quot;" in body
    assert viewer_client.get(reverse("audit:detail", args=[99999])).status_code == 404


def test_the_csv_export_streams_one_row_per_event(viewer_client, trail):
    response = viewer_client.get(reverse("audit:export_csv"))

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    # Every event but the export's own row, written as it began.
    exported = AuditEvent.objects.exclude(action="audit.exported").order_by("id").values_list("id", flat=True)
    assert [int(r["id"]) for r in rows] == list(exported)
    forged = next(r for r in rows if r["action"] == "host.settings_changed")
    assert forged["target_name"].startswith("'=")  # a formula stays text in a spreadsheet
    assert json.loads(forged["details"]) == {"a": "b"}


def test_the_json_export_streams_the_filtered_events(viewer_client, trail):
    response = viewer_client.get(reverse("audit:export_json"), {"outcome": "failure"})

    data = json.loads(b"".join(response.streaming_content))
    assert [e["action"] for e in data] == ["migration.failed"]
    assert data[0]["hash"] == AuditEvent.objects.get(action="migration.failed").hash


def test_anonymous_users_are_sent_to_sign_in(client, trail):
    for name in ("audit:list", "audit:export_csv", "audit:export_json"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# Well-formed but impossible dates made Django's date parsers raise ValueError (a 500); an offset
# pushing the last day of year 9999 past it in UTC overflowed.
IMPOSSIBLE = [
    {"since": "2026-02-30"},
    {"until": "2026-13-01"},
    {"since": "2026-01-01T25:00"},
    {"until": "9999-12-31T23:00-05:00"},
    {"since": "0001-01-01T00:00+05:00"},
]


@pytest.mark.parametrize("params", IMPOSSIBLE)
def test_impossible_dates_are_ignored_on_the_page_with_a_notice(viewer_client, trail, params):
    response = viewer_client.get(reverse("audit:list"), params)
    assert response.status_code == 200
    assert "Ignored" in response.content.decode()
    assert len(response.context["page"]) == len(trail)


def test_a_date_it_cannot_read_is_named_at_its_field_and_kept_there(viewer_client, trail):
    # It used to be a notice above the table, and the field came back empty.
    body = viewer_client.get(reverse("audit:list"), {"since": "notadate", "until": "2999-12-31"}).content.decode()
    assert 'name="since" value="notadate" placeholder="2026-11-25" size="12" aria-invalid="true"' in body
    assert '<span class="error-text" id="since-error" role="alert">Ignored &#x27;notadate&#x27;: give a date' in body
    assert 'name="until" value="2999-12-31"' in body and 'id="until-error"' not in body


def test_a_parameter_that_is_no_filter_is_not_ignored_silently(viewer_client, trail):
    # The field is labelled From; ?from= in a hand-made URL filtered nothing, and said nothing.
    response = viewer_client.get(reverse("audit:list"), {"from": "notadate"})
    assert "Ignored from=&#x27;notadate&#x27;: there is no such filter" in response.content.decode()
    assert len(response.context["page"]) == len(trail)


@pytest.mark.parametrize("params", [*IMPOSSIBLE, {"since": "yesterday"}, {"outcome": "maybe"}, {"from": "2026-01-01"}])
@pytest.mark.parametrize("name", ["audit:export_csv", "audit:export_json"])
def test_exports_refuse_filters_they_cannot_apply(viewer_client, trail, name, params):
    # Ignoring the filter would export more of the trail than was asked for.
    response = viewer_client.get(reverse(name), params)
    assert response.status_code == 400
    assert "Ignored" in response.content.decode()


def test_until_a_day_keeps_that_day(viewer_client, trail):
    # A bare date was read as midnight, so until=TODAY left out everything of today.
    today = trail[0].time.date().isoformat()
    page = viewer_client.get(reverse("audit:list"), {"since": today, "until": today}).context["page"]
    assert len(page) == len(trail)
