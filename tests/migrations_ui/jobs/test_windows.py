"""Maintenance windows: scheduled work starts when due (once, whichever supervisor ticks), a deadline
stops new starts while running moves finish, and the pages schedule, change and cancel in the
operator's time zone. The start across a worker restart is in test_workers.py."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from audit.models import AuditEvent
from fabric.models import Host
from migrations_ui.jobs import windows
from migrations_ui.models import Batch, JobState, MaintenanceWindow, MigrationJob, WindowState

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels"])


def window(host="hv-s4", **fields):
    fields.setdefault("starts_at", timezone.now() - timedelta(seconds=1))
    return MaintenanceWindow.objects.create(
        kind="evacuation", name=f"Evacuate {host}", host=Host.objects.get(name=host), **fields
    )


def test_a_due_window_starts_its_batch_once_and_a_later_one_waits(demo_fabric):
    due, later = window(), window("hv-s3", starts_at=timezone.now() + timedelta(hours=1))

    assert [w.pk for w in windows.start_due_windows()] == [due.pk]
    assert windows.start_due_windows() == []  # a second supervisor's tick finds nothing to start

    due.refresh_from_db()
    later.refresh_from_db()
    assert due.state == WindowState.STARTED and due.batch.kind == "evacuation"
    assert Host.objects.get(name="hv-s4").maintenance
    assert later.state == WindowState.SCHEDULED and later.batch is None
    assert AuditEvent.objects.get(action="window.started").details == {"window": due.pk, "batch": due.batch.pk}


def test_a_window_is_not_started_after_its_deadline_nor_for_a_host_that_does_not_answer(demo_fabric):
    missed = window(deadline=timezone.now() - timedelta(minutes=1), starts_at=timezone.now() - timedelta(hours=1))
    Host.objects.filter(name="hv-s3").update(reachable=False)
    silent = window("hv-s3")

    windows.start_due_windows()

    missed.refresh_from_db()
    silent.refresh_from_db()
    assert missed.state == silent.state == WindowState.REFUSED
    assert "passed before a worker could start the window" in missed.outcome["reason"]
    assert "does not answer" in silent.outcome["reason"]
    assert Batch.objects.count() == 0 and not Host.objects.filter(maintenance=True).exists()
    assert AuditEvent.objects.filter(action="window.refused", outcome="failure").count() == 2


def test_at_the_deadline_queued_moves_are_not_started_and_running_ones_go_on(demo_fabric, viewer_client):
    w = window("hv-s2", deadline=timezone.now() + timedelta(hours=1))
    windows.start_due_windows()
    w.refresh_from_db()
    jobs = list(w.batch.jobs.order_by("pk"))
    assert w.batch.deadline == w.deadline
    MigrationJob.objects.filter(pk=jobs[0].pk).update(state=JobState.RUNNING)
    before = dict(MigrationJob.objects.filter(batch=w.batch).values_list("pk", "state"))
    queued = [pk for pk, state in before.items() if state == JobState.QUEUED]
    assert len(queued) >= 2  # the admission started the first moves at once; the rest wait for slots

    assert windows.stop_at_deadlines() == 0  # not yet
    assert windows.stop_at_deadlines(w.deadline + timedelta(seconds=1)) == len(queued)

    after = dict(MigrationJob.objects.filter(batch=w.batch).values_list("pk", "state"))
    assert {pk: s for pk, s in after.items() if pk not in queued} == {
        pk: s for pk, s in before.items() if pk not in queued
    }
    assert {after[pk] for pk in queued} == {JobState.CANCELLED}
    late = MigrationJob.objects.get(pk=queued[0])
    assert late.error_code == "deadline" and late.finished_at is not None
    page = viewer_client.get(w.batch.get_absolute_url()).content.decode()
    assert f"{len(queued)} moves were not started: the deadline passed." in page


def test_scheduling_reads_the_operators_time_zone_and_is_audited(operator_client, demo_fabric):
    url = reverse("migrations_ui:schedule_window")
    operator_client.cookies["tz"] = "Europe/Berlin"
    form = operator_client.get(url, {"kind": "evacuation", "host": "hv-s4.contoso.test"}).content.decode()
    assert "Evacuate hv-s4" in form and "Europe/Berlin" in form

    answer = operator_client.post(
        url, {"kind": "evacuation", "host": "hv-s4.contoso.test", "starts_at": "2031-06-01T22:30"}
    )

    assert answer.status_code == 302
    scheduled = MaintenanceWindow.objects.get()
    assert scheduled.starts_at == datetime(2031, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Berlin, summer time
    assert scheduled.created_by.username == "operator" and scheduled.state == WindowState.SCHEDULED
    assert AuditEvent.objects.get(action="window.scheduled").details["starts_at"] == "2031-06-01T20:30:00+00:00"
    listing = operator_client.get(reverse("migrations_ui:windows")).content.decode()
    assert "22:30" in listing and "Times in Europe/Berlin" in listing


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"starts_at": "2001-01-01T10:00"}, "starts_at", "This time has passed"),
        ({"starts_at": "not a time"}, "starts_at", "Enter a valid date/time."),
        ({"starts_at": "2031-01-01T10:00", "deadline": "2031-01-01T09:00"}, "deadline", "must come after the start"),
    ],
)
def test_bad_times_are_refused_at_their_field_and_nothing_is_scheduled(
    operator_client, demo_fabric, data, field, message
):
    answer = operator_client.post(
        reverse("migrations_ui:schedule_window"), {"kind": "evacuation", "host": "hv-s4.contoso.test", **data}
    )
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert field in answer.context["form"].errors
    assert not MaintenanceWindow.objects.exists()


def test_an_unknown_target_is_refused_with_a_message(operator_client, demo_fabric):
    url = reverse("migrations_ui:schedule_window")
    for params in ({"kind": "reboot"}, {"kind": "evacuation", "host": "nope"}, {"kind": "selection"}):
        answer = operator_client.post(url, {**params, "starts_at": "2031-01-01T10:00"})
        assert answer.status_code == 400 and "Nothing was scheduled." in answer.content.decode(), params
    assert not MaintenanceWindow.objects.exists()


def test_a_window_can_be_changed_or_cancelled_until_it_starts(operator_client, demo_fabric):
    w = window(starts_at=timezone.now() + timedelta(days=2))
    change = reverse("migrations_ui:window", args=[w.pk])

    assert (
        operator_client.post(change, {"starts_at": "2031-03-01T08:00", "deadline": "2031-03-01T09:00"}).status_code
        == 302
    )
    w.refresh_from_db()
    assert w.starts_at == datetime(2031, 3, 1, 8, 0, tzinfo=UTC) and w.deadline.hour == 9
    assert operator_client.post(reverse("migrations_ui:cancel_window", args=[w.pk])).status_code == 302
    w.refresh_from_db()
    assert w.state == WindowState.CANCELLED
    assert operator_client.post(change, {"starts_at": "2031-03-01T08:00"}).status_code == 409
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="window.").order_by("pk")] == [
        "window.changed",
        "window.cancelled",
    ]
    windows.start_due_windows(datetime(2031, 3, 1, 8, 1, tzinfo=UTC))
    assert Batch.objects.count() == 0  # a cancelled window never starts


def test_the_list_says_it_in_german(viewer_client, demo_fabric):
    window(starts_at=timezone.now() + timedelta(days=1))
    refused = window(
        "hv-s3", deadline=timezone.now() - timedelta(minutes=1), starts_at=timezone.now() - timedelta(hours=1)
    )
    windows.start_due_windows()
    refused.refresh_from_db()
    with override("de"):
        page = viewer_client.get(reverse("migrations_ui:windows"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Wartungsfenster" in page and "Evacuate hv-s4" in page
    assert "Nicht gestartet" in page and "bevor ein Worker das Fenster starten konnte" in page
    assert "Ändern…" not in page  # a viewer changes nothing
