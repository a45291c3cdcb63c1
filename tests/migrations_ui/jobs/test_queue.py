"""Queue control: reorder queued jobs, pause and resume a host's queue, cancel several at once."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from migrations_ui.jobs.scheduler import queue_decision, queue_order
from migrations_ui.models import JobState, MigrationJob
from tests.fabric.factories import make_host, make_vm

pytestmark = pytest.mark.django_db

JOBS = reverse("migrations_ui:jobs")


def make_job(source, destination, state=JobState.QUEUED, **fields) -> MigrationJob:
    vm = make_vm(host=source)
    return MigrationJob.objects.create(
        kind="live", vm=vm, vm_name=vm.name, source=source, destination=destination, state=state, **fields
    )


@pytest.fixture
def hosts():
    return {name: make_host(name, max_live_migrations=1) for name in ("hv-q1", "hv-q2", "hv-q3")}


@pytest.fixture
def queued(hosts):
    """Three jobs waiting, oldest first."""
    return [make_job(hosts["hv-q1"], hosts["hv-q2"]) for _ in range(3)]


def order() -> list[int]:
    return list(queue_order().values_list("pk", flat=True))


def move(client, job, direction, **extra):
    return client.post(reverse("migrations_ui:move_job", args=[job.pk]), {"direction": direction}, **extra)


def test_it_moves_a_queued_job_up_and_down(operator_client, queued):
    a, b, c = queued
    assert move(operator_client, c, "up").status_code == 302
    assert order() == [a.pk, c.pk, b.pk]
    move(operator_client, a, "down")
    assert order() == [c.pk, a.pk, b.pk]
    assert AuditEvent.objects.filter(action="queue.moved", target_id=str(a.pk)).exists()


def test_new_jobs_queue_after_a_reordered_queue(operator_client, hosts, queued):
    a, b, c = queued
    move(operator_client, b, "up")
    newer = make_job(hosts["hv-q1"], hosts["hv-q2"])
    assert order() == [b.pk, a.pk, c.pk, newer.pk]


def test_moving_past_a_higher_priority_takes_its_place(operator_client, hosts):
    urgent = make_job(hosts["hv-q1"], hosts["hv-q2"], priority=5)
    usual = make_job(hosts["hv-q1"], hosts["hv-q2"])
    move(operator_client, usual, "up")
    assert order() == [usual.pk, urgent.pk]


@pytest.mark.parametrize(
    ("which", "direction", "message"),
    [(0, "up", "already first"), (2, "down", "already last"), (1, "sideways", "Unknown direction")],
)
def test_it_refuses_a_move_it_cannot_make_and_changes_nothing(operator_client, queued, which, direction, message):
    before = order()
    response = move(operator_client, queued[which], direction, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert message in response.content.decode()
    assert order() == before
    assert not AuditEvent.objects.filter(action="queue.moved").exists()


def test_a_job_that_is_not_queued_cannot_be_reordered(operator_client, hosts, queued):
    running = make_job(hosts["hv-q3"], hosts["hv-q2"], state=JobState.RUNNING)
    response = move(operator_client, running, "up", follow=True)
    assert "is not queued" in response.content.decode()


def test_the_jobs_page_offers_the_order_controls_to_operators(operator_client, queued):
    body = operator_client.get(JOBS).content.decode()
    assert reverse("migrations_ui:move_job", args=[queued[1].pk]) in body
    assert 'form="bulk-cancel"' in body and "Cancel selected" in body


def test_a_paused_host_queue_starts_nothing_touching_it(operator_client, hosts):
    paused = make_job(hosts["hv-q1"], hosts["hv-q2"])
    other = make_job(hosts["hv-q3"], hosts["hv-q1"])
    response = operator_client.post(reverse("migrations_ui:host_queue", args=[hosts["hv-q2"].fqdn]), {"paused": "1"})
    assert response.status_code == 302
    hosts["hv-q2"].refresh_from_db()
    assert hosts["hv-q2"].queue_paused
    decision = queue_decision()
    assert paused.pk not in decision.admit and other.pk in decision.admit
    assert decision.paused == {paused.pk: ("hv-q2",)}
    assert "waits: queue of hv-q2 paused" in operator_client.get(JOBS).content.decode()
    assert AuditEvent.objects.filter(action="queue.paused", target_name=hosts["hv-q2"].fqdn).exists()

    operator_client.post(reverse("migrations_ui:host_queue", args=[hosts["hv-q2"].fqdn]), {"paused": "0"})
    assert paused.pk in queue_decision().admit
    assert AuditEvent.objects.filter(action="queue.resumed").exists()


def test_resuming_a_queue_that_is_not_paused_writes_no_audit_row(operator_client, hosts):
    url = reverse("migrations_ui:host_queue", args=[hosts["hv-q2"].fqdn])
    for _ in range(3):
        operator_client.post(url, {"paused": "0"})
    assert not AuditEvent.objects.filter(action="queue.resumed").exists()

    operator_client.post(url, {"paused": "1"})
    operator_client.post(url, {"paused": "1"})  # paused already: nothing changes, nothing recorded
    operator_client.post(url, {"paused": "0"})
    actions = AuditEvent.objects.filter(action__startswith="queue.").order_by("id").values_list("action", flat=True)
    assert list(actions) == ["queue.paused", "queue.resumed"]


def test_a_paused_job_does_not_hold_a_slot_in_line(operator_client, hosts):
    # hv-q1 has one live slot: the first job would be first in line for it, but its other host is paused.
    first = make_job(hosts["hv-q1"], hosts["hv-q2"])
    second = make_job(hosts["hv-q1"], hosts["hv-q3"])
    operator_client.post(reverse("migrations_ui:host_queue", args=[hosts["hv-q2"].fqdn]), {"paused": "1"})
    assert queue_decision().admit == (second.pk,)
    assert first.pk in queue_decision().paused


def test_a_job_its_plan_holds_back_keeps_no_slot_until_its_time(operator_client, hosts):
    # hv-q1 has one live slot; the first job is held by its batch's plan for a minute: the second
    # takes the slot meanwhile, as the plan's timeline has it (planning.ordering.hold_back).
    until = timezone.now() + timedelta(minutes=1)
    first = make_job(hosts["hv-q1"], hosts["hv-q2"], not_before=until)
    second = make_job(hosts["hv-q1"], hosts["hv-q3"])
    decision = queue_decision()
    assert decision.admit == (second.pk,)
    assert decision.held == {first.pk: until}
    assert first.pk not in decision.position
    page = operator_client.get(JOBS).content.decode()
    assert f"held by its batch's plan until {timezone.localtime(until):%H:%M:%S}" in page

    MigrationJob.objects.filter(pk=first.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    decision = queue_decision()
    assert decision.admit == (first.pk,) and not decision.held  # its time has come: first in line again


def test_a_bad_pause_value_changes_nothing(operator_client, hosts):
    response = operator_client.post(
        reverse("migrations_ui:host_queue", args=[hosts["hv-q2"].fqdn]), {"paused": "maybe"}, follow=True
    )
    assert "nothing changed" in response.content.decode()
    hosts["hv-q2"].refresh_from_db()
    assert not hosts["hv-q2"].queue_paused


def test_the_host_page_shows_pause_and_resume_to_operators(operator_client, hosts):
    url = hosts["hv-q2"].get_absolute_url()
    assert "Pause queue" in operator_client.get(url).content.decode()


def test_the_host_page_hides_queue_controls_from_viewers(viewer_client, hosts):
    assert "Pause queue" not in viewer_client.get(hosts["hv-q2"].get_absolute_url()).content.decode()


def test_it_cancels_several_jobs_with_a_result_for_each(operator_client, hosts, queued):
    done = make_job(hosts["hv-q3"], hosts["hv-q2"], state=JobState.SUCCEEDED)
    ids = [queued[0].pk, queued[1].pk, done.pk]
    response = operator_client.post(reverse("migrations_ui:cancel_jobs"), {"job": ids}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Job {queued[0].pk} ({queued[0].vm_name}) cancelled" in body
    assert f"Job {done.pk} has already ended" in body
    assert 'id="jobs-queued"' in body  # the sections are redrawn
    states = dict(MigrationJob.objects.values_list("pk", "state"))
    assert [states[queued[0].pk], states[queued[1].pk], states[queued[2].pk]] == ["cancelled", "cancelled", "queued"]


@pytest.mark.parametrize(("data", "message"), [({}, "Select at least one job"), ({"job": ["1", "x"]}, "numbers")])
def test_a_bad_bulk_cancel_changes_nothing(operator_client, queued, data, message):
    response = operator_client.post(reverse("migrations_ui:cancel_jobs"), data, follow=True)
    assert message in response.content.decode()
    assert not MigrationJob.objects.filter(state=JobState.CANCELLED).exists()


def test_the_jobs_page_lists_the_head_of_a_long_queue_and_counts_the_rest(operator_client, hosts, monkeypatch):
    from migrations_ui.live import progress

    monkeypatch.setattr(progress, "QUEUE_SHOWN", 3)
    jobs = [make_job(hosts["hv-q1"], hosts["hv-q2"]) for _ in range(5)]

    response = operator_client.get(JOBS)

    assert [j.pk for j in response.context["queued"]] == [j.pk for j in jobs[:3]]
    page = response.content.decode()
    assert 'Queued <span class="muted">(5)</span>' in page
    assert "… and 2 more jobs waiting behind these." in page
    assert f'id="job-{jobs[3].pk}"' not in page


@pytest.mark.parametrize("back", ["/jobs/?state=queued", "jobs", "https://evil.example/", "//evil.example/x", ""])
def test_after_a_move_the_browser_goes_back_only_to_a_path_of_the_console(operator_client, queued, back):
    # "jobs" once reached django's redirect() as a view name, which failed with a 500.
    first = queued[0]
    response = operator_client.post(
        reverse("migrations_ui:move_job", args=[first.pk]), {"direction": "down", "next": back}
    )
    assert response.status_code == 302
    assert response["Location"] == (back if back.startswith("/jobs/") else JOBS)
