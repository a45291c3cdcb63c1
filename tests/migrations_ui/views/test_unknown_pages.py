"""A job whose host stopped answering after the move was sent (state unknown), on the pages: the
explanation, its place among the running jobs, and an operator's three actions (ask the hosts
again, mark succeeded, mark failed), refused to viewers and to bad input without a 500."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from migrations_ui.jobs.events import change_state
from migrations_ui.jobs.runner import RECOVERY_PENDING
from migrations_ui.live.progress import render_job_state
from migrations_ui.models import JobState, MigrationJob
from tests.fabric.factories import make_host, make_vm
from tests.migrations_ui.views.test_jobs_pages import JOBS, make_job

pytestmark = pytest.mark.django_db

REASON = "WinRM: the operation timed out"


def make_unknown(source=None, destination=None, name="web01", asked_ago=timedelta(seconds=4)) -> MigrationJob:
    """A live move that was running when its source stopped answering, as the runner leaves it."""
    source = source or make_host("hv-u1")
    destination = destination or make_host("hv-u2")
    job = make_job(
        source,
        destination,
        JobState.RUNNING,
        vm=make_vm(name, host=source),
        step="move",
        percent=37,
        move_requested_at=timezone.now() - timedelta(seconds=60),
        events=[("state", {"state": "running"})],
    )
    asked = timezone.now() - asked_ago
    change_state(
        job, JobState.UNKNOWN, {"host": source.fqdn, "reason": REASON, "step": "move"}, worker="", heartbeat_at=asked
    )
    job.refresh_from_db()
    return job


def ask_url(pk):
    return reverse("migrations_ui:ask_hosts_again", args=[pk])


def decide_url(pk):
    return reverse("migrations_ui:decide_job", args=[pk])


HTMX = {"HTTP_HX_REQUEST": "true"}
CHECKED = {"checked": "yes"}


@pytest.fixture
def unknown():
    return make_unknown()


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


# --- shown ------------------------------------------------------------------------------------------


def test_the_job_page_explains_an_unknown_job_and_offers_an_operator_the_three_actions(operator_client, unknown):
    page = operator_client.get(unknown.get_absolute_url()).content.decode()

    assert '<span class="badge job-state job-unknown">Unknown</span>' in page
    assert "hv-u1.contoso.test stopped answering at" in page
    assert "how the move ended is not known" in page
    assert f"<code>{REASON}</code>" in page
    assert "keeps its migration slots" in page
    assert "Nothing is sent to the hosts again" in page
    assert "asks the hosts again every 10 seconds" in page
    assert f"Last asked at {timezone.localtime(unknown.heartbeat_at):%Y-%m-%d %H:%M:%S}" in page
    assert f'action="{ask_url(unknown.pk)}"' in page
    assert page.count(f'action="{decide_url(unknown.pk)}"') == 2
    assert 'name="outcome" value="succeeded"' in page and 'name="outcome" value="failed"' in page
    assert page.count('name="checked" value="yes" required') == 2
    assert "Hyper-V Manager or Failover Cluster Manager" in page
    assert "It moved: mark succeeded" in page and "It did not move: mark failed" in page
    # Its move may have happened: it cannot be cancelled, it is decided.
    assert reverse("migrations_ui:cancel_job", args=[unknown.pk]) not in page
    assert 'class="step-unknown" data-step="move"' in page
    assert f"Unknown: hv-u1.contoso.test stopped answering after the move was sent ({REASON})" in page


def test_a_viewer_reads_the_explanation_without_any_action(viewer_client, unknown):
    page = viewer_client.get(unknown.get_absolute_url()).content.decode()

    assert "hv-u1.contoso.test stopped answering at" in page
    assert ask_url(unknown.pk) not in page and decide_url(unknown.pk) not in page
    assert "mark succeeded" not in page


def test_the_pushed_status_carries_the_actions_for_the_page_to_hide_from_viewers(unknown):
    # Over the websocket there is no user: the forms come marked needs-migrate (hidden for viewers).
    html = render_job_state(unknown)

    assert "stopped answering at" in html
    assert 'class="unknown-actions needs-migrate"' in html and ask_url(unknown.pk) in html


def test_an_unknown_job_is_listed_with_the_running_ones_without_a_cancel_button(operator_client, unknown):
    page = operator_client.get(JOBS).content.decode()
    running = page[page.index('id="jobs-running"') : page.index('id="jobs-queued"')]

    assert "web01" in running and "job-unknown" in running
    assert "Host not answering: see the job" in running
    assert reverse("migrations_ui:cancel_job", args=[unknown.pk]) not in running


def test_the_batch_page_counts_an_unknown_job_as_not_finished(admin_client):
    from migrations_ui.models import Batch

    job = make_unknown()
    move = {"vm": "web01", "vm_id": str(job.vm.guid), "destination": job.destination.fqdn}
    move |= {"transfer_type": "live", "start_s": 0, "end_s": 60}
    batch = Batch.objects.create(name="Selection", kind="selection", plan={"moves": [move]})
    MigrationJob.objects.filter(pk=job.pk).update(batch=batch)

    page = admin_client.get(batch.get_absolute_url()).content.decode()

    assert "job-unknown" in page and "1 unknown" in page and "1 move not finished" in page


def test_the_cancel_page_action_refuses_an_unknown_job(operator_client, unknown):
    response = operator_client.post(reverse("migrations_ui:cancel_job", args=[unknown.pk]), **HTMX)

    assert response.status_code == 409 and "cannot be cancelled" in response.content.decode()
    unknown.refresh_from_db()
    assert unknown.state == JobState.UNKNOWN


# --- ask the hosts again ----------------------------------------------------------------------------


def test_ask_the_hosts_again_hands_the_job_to_recovery_and_is_audited(operator_client, unknown):
    response = operator_client.post(ask_url(unknown.pk), **HTMX)

    assert response.status_code == 200
    assert f"The hosts of job {unknown.pk} are asked again now" in response.content.decode()
    unknown.refresh_from_db()
    assert unknown.state == JobState.UNKNOWN and unknown.worker == RECOVERY_PENDING
    event = AuditEvent.objects.get(action="migration.asked_again")
    assert (event.username, event.details["job"], event.outcome) == ("operator", unknown.pk, "success")

    # Asked again while a recovery holds it: nothing more happens, and the operator is told so.
    again = operator_client.post(ask_url(unknown.pk), **HTMX)
    assert again.status_code == 200 and "right now" in again.content.decode()
    assert AuditEvent.objects.filter(action="migration.asked_again").count() == 1


def test_a_plain_ask_goes_back_to_the_job_page_with_the_message(operator_client, unknown):
    response = operator_client.post(ask_url(unknown.pk), follow=True)

    assert response.redirect_chain[-1][0] == unknown.get_absolute_url()
    assert "are asked again now" in response.content.decode()


def test_ask_again_refuses_a_job_that_is_not_unknown_or_not_there(operator_client):
    running = make_job(make_host("hv-r1"), make_host("hv-r2"), JobState.RUNNING, worker="w1")

    refused = operator_client.post(ask_url(running.pk), **HTMX)
    missing = operator_client.post(ask_url(424242), **HTMX)

    assert refused.status_code == 409 and "its outcome is known" in refused.content.decode()
    assert missing.status_code == 404 and "There is no job 424242." in missing.content.decode()
    running.refresh_from_db()
    assert running.worker == "w1"
    assert not AuditEvent.objects.filter(action="migration.asked_again").exists()


# --- decide -----------------------------------------------------------------------------------------


def test_it_moved_ends_the_job_succeeded_frees_its_slots_and_is_audited(operator_client, unknown):
    response = operator_client.post(decide_url(unknown.pk), {"outcome": "succeeded", **CHECKED}, **HTMX)

    assert response.status_code == 200
    assert f"Job {unknown.pk} marked succeeded: web01 moved" in response.content.decode()
    unknown.refresh_from_db()
    assert unknown.state == JobState.SUCCEEDED and unknown.finished_at is not None
    assert not MigrationJob.objects.filter(state__in=[JobState.UNKNOWN]).exists()
    last = unknown.events.order_by("-sequence").first()
    assert last.data == {"state": "succeeded", "decided_by": "operator"}
    page = operator_client.get(unknown.get_absolute_url()).content.decode()
    assert "Succeeded: decided by operator, who checked the hosts" in page
    event = AuditEvent.objects.get(action="migration.decided")
    assert (event.username, event.details["outcome"]) == ("operator", "succeeded")


def test_it_did_not_move_ends_the_job_failed_with_the_operators_reason(operator_client, unknown):
    response = operator_client.post(decide_url(unknown.pk), {"outcome": "failed", **CHECKED}, **HTMX)

    assert response.status_code == 200 and "marked failed: web01 did not move" in response.content.decode()
    unknown.refresh_from_db()
    assert (unknown.state, unknown.error_code) == (JobState.FAILED, "operator")
    assert AuditEvent.objects.get(action="migration.decided").details["outcome"] == "failed"
    # The job page now shows it failed, with the operator's decision as the error.
    page = operator_client.get(unknown.get_absolute_url()).content.decode()
    assert "job-failed" in page and "An operator decided that the move did not happen" in page
    assert decide_url(unknown.pk) not in page


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        ({"outcome": "succeeded"}, 400, "confirm that you checked the VM"),  # the box not ticked
        ({"outcome": "maybe", **CHECKED}, 400, "Unknown outcome &#x27;maybe&#x27;"),
        ({**CHECKED}, 400, "say succeeded or failed"),
    ],
)
def test_a_bad_decision_changes_nothing(operator_client, unknown, data, status, text):
    response = operator_client.post(decide_url(unknown.pk), data, **HTMX)

    assert response.status_code == status and text in response.content.decode()
    unknown.refresh_from_db()
    assert unknown.state == JobState.UNKNOWN
    assert not AuditEvent.objects.filter(action="migration.decided").exists()


def test_a_decision_on_a_job_that_is_not_unknown_or_not_there_is_refused(operator_client, unknown):
    operator_client.post(decide_url(unknown.pk), {"outcome": "failed", **CHECKED}, **HTMX)

    twice = operator_client.post(decide_url(unknown.pk), {"outcome": "succeeded", **CHECKED}, **HTMX)
    missing = operator_client.post(decide_url(424242), {"outcome": "succeeded", **CHECKED}, **HTMX)
    plain = operator_client.post(decide_url(unknown.pk), {"outcome": "succeeded", **CHECKED}, follow=True)

    assert twice.status_code == 409 and "is not waiting for a decision" in twice.content.decode()
    assert missing.status_code == 404 and "There is no job 424242." in missing.content.decode()
    assert "is not waiting for a decision" in plain.content.decode()
    unknown.refresh_from_db()
    assert unknown.state == JobState.FAILED
    assert AuditEvent.objects.filter(action="migration.decided").count() == 1


def test_viewers_may_not_ask_or_decide(viewer_client, unknown):
    assert viewer_client.post(ask_url(unknown.pk), **HTMX).status_code == 403
    assert viewer_client.post(decide_url(unknown.pk), {"outcome": "succeeded", **CHECKED}).status_code == 403

    unknown.refresh_from_db()
    assert (unknown.state, unknown.worker) == (JobState.UNKNOWN, "")
    assert AuditEvent.objects.filter(action="permission_denied", username="viewer").count() == 2


def test_the_actions_are_posts_with_the_csrf_token(operator_user, unknown):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)

    assert client.get(ask_url(unknown.pk)).status_code == 405
    assert client.get(decide_url(unknown.pk)).status_code == 405
    assert client.post(ask_url(unknown.pk)).status_code == 403
    assert client.post(decide_url(unknown.pk), {"outcome": "succeeded", **CHECKED}).status_code == 403
    unknown.refresh_from_db()
    assert (unknown.state, unknown.worker) == (JobState.UNKNOWN, "")


# --- in German --------------------------------------------------------------------------------------


def test_the_unknown_job_page_is_translated(admin_client, unknown):
    from tests.console.test_i18n import SAME_IN_GERMAN, data_words, in_language, untranslated

    url = unknown.get_absolute_url()
    english = in_language(admin_client, "en").get(url).content.decode()
    german = in_language(admin_client, "de").get(url).content.decode()

    assert untranslated(english, german, SAME_IN_GERMAN | data_words()) == []
    assert '<span class="badge job-state job-unknown">Unbekannt</span>' in german
    assert "Hosts erneut fragen" in german and "Ergebnis unbekannt" in german


def test_the_answers_to_an_action_are_translated(operator_client, unknown):
    from tests.console.test_i18n import in_language

    german = in_language(operator_client, "de")
    refused = german.post(decide_url(unknown.pk), {"outcome": "maybe", **CHECKED}, **HTMX).content.decode()
    decided = german.post(decide_url(unknown.pk), {"outcome": "failed", **CHECKED}, **HTMX).content.decode()
    twice = german.post(decide_url(unknown.pk), {"outcome": "failed", **CHECKED}, **HTMX).content.decode()
    page = german.get(unknown.get_absolute_url()).content.decode()

    assert "Unbekanntes Ergebnis" in refused
    assert f"Auftrag {unknown.pk} als fehlgeschlagen markiert" in decided
    assert "wartet auf keine Entscheidung" in twice
    assert "Ein Operator hat entschieden, dass die Verschiebung nicht stattfand" in page
