"""Refusals anybody can cause are audited (anonymous, token, CSRF, locked sign-in), at most
AUDIT_REFUSALS_PER_MINUTE rows per source and action a minute, the rest counted; reads write none."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import log
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_suppressed_counts():
    log._suppressed.clear()  # per process: another test's flood is not this one's
    yield
    log._suppressed.clear()


def rows(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_an_anonymous_request_for_a_page_is_audited(client):
    response = client.get(reverse("fabric:hosts"))

    assert response.status_code == 302
    [row] = rows("anonymous_refused")
    assert (row.outcome, row.target_name, row.source_ip, row.username) == ("denied", "/", "127.0.0.1", "")


def test_anonymous_and_bad_token_api_requests_are_audited(client):
    assert client.get("/api/v1/hosts").status_code == 401
    assert client.get("/api/v1/hosts", headers={"Authorization": "Bearer hvmc_0123456789_nope"}).status_code == 401

    assert [r.target_name for r in rows("anonymous_refused")] == ["/api/v1/hosts"]
    [token] = rows("token_refused")
    assert token.outcome == "denied" and "nope" not in str(token.details)


def test_a_csrf_failure_is_audited():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "someone", "password": "x"})

    assert response.status_code == 403
    [row] = rows("csrf_refused")
    assert row.outcome == "denied" and row.details["method"] == "POST" and row.details["reason"]


def test_an_api_session_request_without_csrf_token_is_audited(operator_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    response = client.post("/api/v1/evacuations", {}, content_type="application/json")

    assert response.status_code == 403
    [row] = rows("csrf_refused")
    assert row.username == "operator"


def test_a_flood_is_capped_per_source_and_the_suppressed_are_counted(client, settings, monkeypatch):
    settings.AUDIT_REFUSALS_PER_MINUTE = 3
    for _ in range(10):
        client.get(reverse("fabric:hosts"))
    Client(REMOTE_ADDR="10.0.0.9").get(reverse("fabric:hosts"))  # another source has its own allowance

    assert [r.source_ip for r in rows("anonymous_refused")] == ["127.0.0.1"] * 3 + ["10.0.0.9"]
    assert not any("suppressed" in r.details for r in rows("anonymous_refused"))

    # A minute later the next refusal is written, with how many were left out.
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(log.timezone, "now", lambda: later)
    client.get(reverse("fabric:hosts"))
    assert rows("anonymous_refused")[-1].details["suppressed"] == 7


def test_a_locked_sign_in_is_audited_and_capped(client, operator_user, settings):
    settings.AUDIT_REFUSALS_PER_MINUTE = 2
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 5):
        client.post(reverse("login"), {"username": "operator", "password": "wrong"})

    assert len(rows("login_failed")) == settings.LOGIN_FAILURE_LIMIT  # every failure counts for the lockout
    locked = rows("login_locked")
    assert len(locked) == 2 and locked[0].username == "operator" and locked[0].outcome == "denied"


def test_reading_an_evacuation_plan_through_the_api_writes_no_audit_row(viewer_user, demo_fabric):
    from api.tokens import create_token
    from fabric.models import Host

    token = create_token(viewer_user, "reader")[1]
    host = Host.objects.order_by("fqdn").first()
    before = AuditEvent.objects.count()

    response = Client().get(f"/api/v1/hosts/{host.fqdn}/evacuation-plan", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200 and "moves" in response.json()
    assert AuditEvent.objects.count() == before


def test_failed_sign_ins_with_made_up_names_are_capped_per_source_but_not_those_of_an_account(
    client, operator_user, settings
):
    settings.AUDIT_REFUSALS_PER_MINUTE = 3
    for n in range(8):
        client.post(reverse("login"), {"username": f"nobody{n}", "password": "guess"})
    for _ in range(4):
        client.post(reverse("login"), {"username": "operator", "password": "wrong"})

    failed = [(r.username, r.outcome) for r in rows("login_failed")]
    assert failed == [(f"nobody{n}", "failure") for n in range(3)] + [("operator", "failure")] * 4
