"""Exporting the trail: JSON Lines a reader verifies without the console, the same filters as the
page, streamed, formulas kept text in CSV, and every export audited."""

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from audit.log import record
from audit.models import AuditEvent
from tests.audit.siem import verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(operator_user):
    record("migration.requested", actor=operator_user, target_type="virtualmachine", target_name="web01")
    record("migration.failed", actor=operator_user, target_name="db01", outcome="failure", details={"code": 21})
    record("permission_denied", target_type="url", target_name="/jobs/1/cancel/", outcome="denied")
    for start in "=+-@":
        record("host.renamed", target_type="host", target_name=f"{start}cmd|' /C calc'!A0", details={"ü": "ß"})
    return list(AuditEvent.objects.order_by("id"))


def lines(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_it_exports_json_lines_a_reader_can_verify(viewer_client, trail):
    response = viewer_client.get(reverse("audit:export_jsonl"))

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("application/jsonl")
    assert (
        response["Content-Disposition"].startswith('attachment; filename="audit-')
        and ".jsonl" in response["Content-Disposition"]
    )
    records = lines(response)
    assert [r["sequence"] for r in records] == [e.pk for e in trail]
    by_action = {r["action"]: r for r in records}
    assert by_action["migration.failed"]["details"] == {"code": 21}
    assert by_action["migration.failed"]["outcome"] == "failure"
    assert by_action["migration.requested"]["username"] == "operator"
    assert by_action["migration.requested"]["role"] == "operator"
    assert records[-1]["details"] == {"ü": "ß"}
    assert verified(records)


def test_a_tampered_record_does_not_verify(viewer_client, trail):
    records = lines(viewer_client.get(reverse("audit:export_jsonl")))
    next(r for r in records if r["action"] == "migration.failed")["outcome"] = "success"
    assert not verified(records)


@pytest.mark.parametrize("name", ["audit:export_csv", "audit:export_json", "audit:export_jsonl"])
def test_every_export_honours_the_pages_filters(viewer_client, trail, name):
    response = viewer_client.get(reverse(name), {"actor": "OPERATOR", "action": "migration."})
    text = b"".join(response.streaming_content).decode("utf-8-sig")

    assert "migration.requested" in text and "migration.failed" in text
    assert "permission_denied" not in text and "host.renamed" not in text


@pytest.mark.parametrize("name", ["audit:export_csv", "audit:export_json", "audit:export_jsonl"])
def test_an_export_with_a_filter_it_cannot_read_is_refused(viewer_client, trail, name):
    response = viewer_client.get(reverse(name), {"since": "yesterday"})
    assert response.status_code == 400 and "Ignored" in response.content.decode()
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_csv_cells_that_a_spreadsheet_would_run_stay_text(viewer_client, trail):
    text = b"".join(viewer_client.get(reverse("audit:export_csv")).streaming_content).decode("utf-8-sig")
    names = [row["target_name"] for row in csv.DictReader(io.StringIO(text)) if row["action"] == "host.renamed"]
    assert names == [f"'{start}cmd|' /C calc'!A0" for start in "=+-@"]


def test_an_export_is_audited_with_who_what_and_how_far(viewer_client, trail):
    response = viewer_client.get(reverse("audit:export_jsonl"), {"outcome": "failure"})
    records = lines(response)

    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.username == "viewer" and exported.role == "viewer" and exported.target_type == "audit"
    assert exported.details == {"format": "jsonl", "filter": {"outcome": "failure"}, "through": trail[-1].pk}
    assert [r["action"] for r in records] == ["migration.failed"]


def test_an_export_ends_where_the_trail_ended_when_it_was_asked_for(viewer_client, trail):
    response = viewer_client.get(reverse("audit:export_jsonl"))
    record("written.while.streaming")  # appended after the request: not in this export
    records = lines(response)
    assert [r["sequence"] for r in records] == [e.pk for e in trail]


def test_head_exports_nothing_and_is_not_audited(viewer_client, trail):
    assert viewer_client.head(reverse("audit:export_csv")).status_code == 200
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_page_links_each_export_with_its_filter_encoded(viewer_client, trail):
    body = viewer_client.get(reverse("audit:list"), {"target": "a&b+c", "outcome": "failure"}).content.decode()
    for name in ("export_csv", "export_json", "export_jsonl"):
        assert f'href="{reverse("audit:" + name)}?target=a%26b%2Bc&amp;outcome=failure"' in body
    assert "Export JSON Lines" in body


def test_the_export_buttons_speak_german(viewer_client, trail):
    body = viewer_client.get(reverse("audit:list"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Als JSON Lines exportieren" in body and "Als CSV exportieren" in body


def test_the_export_row_reads_as_an_audit_trail_export_in_german(viewer_client, trail):
    viewer_client.get(reverse("audit:export_csv"))
    body = viewer_client.get(reverse("audit:list"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "audit.exported" in body and "Audit-Protokoll</span> audit-trail.csv" in body


def test_exports_need_a_sign_in_and_a_role(client, outsider_user, trail):
    for name in ("audit:export_csv", "audit:export_json", "audit:export_jsonl"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider_user)
    for name in ("audit:export_csv", "audit:export_json", "audit:export_jsonl"):
        assert client.get(reverse(name)).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
