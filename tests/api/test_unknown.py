"""A job in state unknown through the API: listed and shown as such, asked again or decided by a
mover (audited as on the pages), refused to viewers, and bad input answered in the one error shape."""

import pytest

from audit.models import AuditEvent
from migrations_ui.jobs.runner import RECOVERY_PENDING
from migrations_ui.models import JobState, MigrationJob
from tests.fabric.factories import make_host
from tests.migrations_ui.views.test_jobs_pages import make_job
from tests.migrations_ui.views.test_unknown_pages import make_unknown

pytestmark = pytest.mark.django_db


@pytest.fixture
def unknown():
    return make_unknown()


def test_an_unknown_job_is_shown_and_listed_with_its_state(apis, unknown):
    status, job = apis["viewer"].get(f"/migrations/{unknown.pk}")
    assert (status, job["state"], job["step"]) == (200, "unknown", "move")

    status, page = apis["viewer"].get("/migrations", state="unknown")
    assert status == 200 and [j["id"] for j in page["items"]] == [unknown.pk]
    status, events = apis["viewer"].get("/events", job=unknown.pk)
    became = [e["data"] for e in events["items"] if e["data"].get("state") == "unknown"]
    assert became[0]["host"] == unknown.source.fqdn and became[0]["reason"]


def test_ask_again_hands_the_job_to_recovery_and_is_audited(apis, unknown):
    status, job = apis["operator"].post(f"/migrations/{unknown.pk}/ask-again")

    assert (status, job["state"]) == (200, "unknown")
    assert MigrationJob.objects.get(pk=unknown.pk).worker == RECOVERY_PENDING
    assert AuditEvent.objects.get(action="migration.asked_again").username == "operator"
    # Again while a recovery asks them: the same answer, nothing more done.
    assert apis["operator"].post(f"/migrations/{unknown.pk}/ask-again")[0] == 200
    assert AuditEvent.objects.filter(action="migration.asked_again").count() == 1


@pytest.mark.parametrize(("outcome", "state"), [("succeeded", JobState.SUCCEEDED), ("failed", JobState.FAILED)])
def test_decide_ends_the_job_as_the_operator_says(apis, unknown, outcome, state):
    status, job = apis["admin"].post(f"/migrations/{unknown.pk}/decide", {"outcome": outcome})

    assert (status, job["state"]) == (200, state)
    assert job["finished_at"] is not None
    assert (job["error"] or {}).get("code") == ("operator" if outcome == "failed" else None)
    event = AuditEvent.objects.get(action="migration.decided")
    assert (event.username, event.details["outcome"]) == ("admin", outcome)


def test_bad_input_is_refused_in_the_error_shape(apis, unknown):
    api = apis["operator"]
    running = make_job(make_host("hv-r1"), make_host("hv-r2"), JobState.RUNNING, worker="w1")

    status, body = api.post(f"/migrations/{unknown.pk}/decide", {"outcome": "maybe"})
    assert status == 400 and body["code"] == "invalid" and "outcome" in body["errors"]
    status, body = api.post(f"/migrations/{unknown.pk}/decide", {})
    assert status == 400 and "outcome" in body["errors"]
    for path in (f"/migrations/{running.pk}/decide", f"/migrations/{running.pk}/ask-again"):
        status, body = api.post(path, {"outcome": "failed"})
        assert (status, body["code"]) == (409, "conflict"), path
        assert "is not waiting for its hosts to answer" in body["message"]
    for path in ("/migrations/424242/decide", "/migrations/424242/ask-again"):
        status, body = api.post(path, {"outcome": "failed"})
        assert (status, body["code"]) == (404, "not_found"), path

    assert MigrationJob.objects.get(pk=unknown.pk).state == JobState.UNKNOWN
    assert MigrationJob.objects.get(pk=running.pk).worker == "w1"
    assert not AuditEvent.objects.filter(action__in=["migration.decided", "migration.asked_again"]).exists()


def test_a_job_decided_meanwhile_is_a_conflict(apis, unknown):
    assert apis["operator"].post(f"/migrations/{unknown.pk}/decide", {"outcome": "failed"})[0] == 200

    status, body = apis["operator"].post(f"/migrations/{unknown.pk}/decide", {"outcome": "succeeded"})

    assert (status, body["code"]) == (409, "conflict")
    assert MigrationJob.objects.get(pk=unknown.pk).state == JobState.FAILED


@pytest.mark.parametrize(("persona", "expected"), [("viewer", 403), ("outsider", 403), ("anonymous", 401)])
def test_only_movers_may_ask_or_decide(apis, unknown, persona, expected):
    calls = [
        (f"/migrations/{unknown.pk}/ask-again", None),
        (f"/migrations/{unknown.pk}/decide", {"outcome": "succeeded"}),
    ]
    for path, data in calls:
        status, body = apis[persona].post(path, data)
        assert status == expected, (path, body)
        assert set(body) == {"code", "message", "errors"}

    job = MigrationJob.objects.get(pk=unknown.pk)
    assert (job.state, job.worker) == (JobState.UNKNOWN, "")
