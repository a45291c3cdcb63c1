"""The Jobs page names who asked for each job and filters the finished ones by state, VM, host, user
and date (issue 19: what VMM users look for on the Jobs page)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from migrations_ui.models import JobState
from tests.fabric.factories import make_host
from tests.migrations_ui.views.test_jobs_pages import make_job

pytestmark = pytest.mark.django_db
JOBS = reverse("migrations_ui:jobs")


@pytest.fixture
def finished(operator_user, admin_user):
    a, b, c = make_host("hv-a"), make_host("hv-b"), make_host("hv-c")
    old = timezone.now() - timedelta(days=10)
    return {
        "ab": make_job(a, b, JobState.SUCCEEDED, requested_by=operator_user),
        "bc": make_job(b, c, JobState.FAILED, requested_by=admin_user, error_code="X", error_message="no"),
        "old": make_job(c, a, JobState.SUCCEEDED, requested_by=operator_user, finished_at=old),
        "queued": make_job(a, c, requested_by=admin_user),
    }


def shown(client, **params) -> list[int]:
    return [job.pk for job in client.get(JOBS, params).context["finished"]]


def test_every_job_says_who_asked_for_it(viewer_client, finished):
    body = viewer_client.get(JOBS).content.decode()
    for job in finished.values():
        row = body[body.index(f'id="job-{job.pk}"') :].split("</tr>")[0]
        assert f'<div class="muted by">by {job.requested_by.get_username()}</div>' in row


def test_finished_jobs_filter_by_host_user_and_date(viewer_client, finished):
    ab, bc, old = finished["ab"].pk, finished["bc"].pk, finished["old"].pk
    assert shown(viewer_client, host="hv-a") == [ab, old]  # as source or destination
    assert shown(viewer_client, host="hv-b.contoso") == [bc, ab]
    assert shown(viewer_client, user="OPERATOR") == [ab, old]
    today = timezone.now().date()
    assert shown(viewer_client, since=str(today)) == [bc, ab]
    assert shown(viewer_client, until=str(today - timedelta(days=1))) == [old]
    assert shown(viewer_client, host="hv-a", user="operator", since=str(today)) == [ab]


def test_a_date_that_is_none_is_dropped_and_said(viewer_client, finished):
    page = viewer_client.get(JOBS, {"since": "2026-02-30"})
    assert len(page.context["finished"]) == 3
    assert "Ignored since=&#x27;2026-02-30&#x27;: give a date as 2026-11-25." in page.content.decode()
