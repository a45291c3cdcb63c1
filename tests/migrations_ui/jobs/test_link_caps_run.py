"""A batch keeps to its plan's link caps when it runs: where the plan found a host's link, not its
limit, the bottleneck (planning.planner.LinkCap), the admission starts no more of the batch's moves
there at once; moves of other batches, and the host's other slots, are not held by it."""

import pytest
from django.urls import reverse

from migrations_ui.jobs.scheduler import queue_decision
from migrations_ui.models import Batch, BatchKind, JobState
from tests.fabric.factories import make_host
from tests.migrations_ui.jobs.test_queue import make_job

pytestmark = pytest.mark.django_db


def capped_batch(host, cap=1):
    link = {"host": host.fqdn, "name": host.name, "limit": host.max_live_migrations, "cap": cap, "nic_gbps": 1.0}
    return Batch.objects.create(name="Evacuate", kind=BatchKind.EVACUATION, host=host, plan={"link_caps": [link]})


def test_a_batch_starts_no_more_moves_over_a_capped_link_than_its_plan_says(viewer_client):
    slow, other, third = make_host("hv-l1", max_live_migrations=4), make_host("hv-l2"), make_host("hv-l3")
    batch = capped_batch(slow)
    jobs = [make_job(slow, dest, batch=batch) for dest in (other, third, other)]
    outside = make_job(slow, third)  # not the batch's: only the host's limit of 4 holds it

    decision = queue_decision()

    assert set(decision.admit) == {jobs[0].pk, outside.pk}
    assert decision.waiting_for[jobs[1].pk] == ((slow.pk, f"link:{batch.pk}"),)
    page = viewer_client.get(reverse("migrations_ui:jobs")).content.decode()
    assert "waits for its batch's link cap on hv-l1 (0/1 at once)" in page


def test_a_running_move_of_the_batch_holds_its_link_cap_until_it_ends():
    slow, other = make_host("hv-l1", max_live_migrations=4), make_host("hv-l2", max_live_migrations=4)
    batch = capped_batch(slow, cap=2)
    make_job(slow, other, batch=batch, state=JobState.RUNNING)
    waiting = [make_job(slow, other, batch=batch) for _ in range(2)]

    assert queue_decision().admit == (waiting[0].pk,)
    waiting[0].state = JobState.SUCCEEDED
    waiting[0].save()
    batch.jobs.filter(state=JobState.RUNNING).update(state=JobState.SUCCEEDED)
    assert queue_decision().admit == (waiting[1].pk,)


def test_the_batch_page_says_where_its_plan_caps_a_link(viewer_client):
    slow = make_host("hv-l1.contoso.test", max_live_migrations=4)
    batch = capped_batch(slow)

    page = viewer_client.get(batch.get_absolute_url()).content.decode()

    assert "link is the bottleneck: one move at a time ends no later than 4 at once" in page
