"""A cluster node drained the cluster's way: the choice on the evacuate page, the batch, the worker
that follows the drain (against the simulated cluster at 400x), the batch page, the resume."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from fabric.models import Host, VirtualMachine
from migrations_ui.jobs.drain import DrainFollower, resume, start_drain
from migrations_ui.models import Batch, BatchKind, JobState, MigrationJob
from migrations_ui.planning.inventory import drain_plan
from tests.migrations_ui.jobs.test_batches import evacuate_url

pytestmark = pytest.mark.django_db

NODE = "hv-new1"


@pytest.fixture
def node(demo):
    return Host.objects.select_related("cluster").get(name=NODE)


def start(client, node):
    response = client.post(evacuate_url(node), {"method": "drain"})
    assert response.status_code == 302
    return Batch.objects.get(kind=BatchKind.DRAIN)


def test_it_offers_the_drain_with_both_estimates_and_says_which_is_faster(operator_client, node):
    body = operator_client.get(evacuate_url(node)).content.decode()
    assert 'id="drain-choice"' in body and 'id="start-drain"' in body
    assert 'id="estimate-drain"' in body and 'id="estimate-console"' in body
    assert body.count("faster by the estimate") == 1


def test_viewers_see_the_choice_but_cannot_start_a_drain(viewer_client, node):
    body = viewer_client.get(evacuate_url(node)).content.decode()
    assert 'id="drain-choice"' in body and 'id="start-drain"' not in body
    assert viewer_client.post(evacuate_url(node), {"method": "drain"}).status_code == 403
    assert not Batch.objects.exists()


def test_a_standalone_host_offers_no_drain(operator_client, demo):
    host = Host.objects.get(name="hv-s1")
    assert 'id="drain-choice"' not in operator_client.get(evacuate_url(host)).content.decode()


def test_the_cluster_drains_the_node_and_the_batch_shows_each_roles_move(operator_client, node):
    roles = set(
        VirtualMachine.objects.filter(host=node, is_clustered=True, removed=False).values_list("name", flat=True)
    )
    batch = start(operator_client, node)
    node.refresh_from_db()
    assert node.maintenance
    assert set(batch.plan["drain"]["roles"].values()) == roles
    assert AuditEvent.objects.filter(action="evacuation.drain_started", target_id=str(node.pk)).exists()

    DrainFollower(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()

    batch.refresh_from_db()
    drain = batch.plan["drain"]
    assert drain["status"] in ("completed", "failed")
    jobs = MigrationJob.objects.filter(batch=batch)
    moved = {j.vm_name for j in jobs if j.state == JobState.SUCCEEDED}
    stuck = {s["vm"] for s in drain["stuck"]}
    assert moved and moved | stuck == roles and not moved & stuck
    assert drain["status"] == ("failed" if stuck else "completed")
    assert all(j.destination.cluster_id == node.cluster_id and j.destination_id != node.pk for j in jobs)
    assert all(j.source_id == node.pk for j in jobs)
    # The inventory after the drain: the moved roles run elsewhere, the others stay.
    assert set(VirtualMachine.objects.filter(host=node, is_clustered=True).values_list("name", flat=True)) == stuck
    ended = AuditEvent.objects.get(action="evacuation.drain_ended")
    assert ended.details["status"] == drain["status"] and ended.details["moved"] == len(moved)
    assert AuditEvent.objects.filter(action="migration.succeeded").count() >= len(moved)

    page = operator_client.get(batch.get_absolute_url()).content.decode()
    assert 'id="drain-status"' in page and f'data-drain="{drain["status"]}"' in page
    for job in jobs:
        assert f'id="batch-job-{job.pk}"' in page
    for name in stuck:
        assert name in page
    assert "Resume hv-new1" in page  # Move back resumes the node with failback

    response = operator_client.post(reverse("migrations_ui:batch_move_back", args=[batch.pk]))
    assert response.status_code == 302
    node.refresh_from_db()
    assert not node.maintenance
    assert AuditEvent.objects.filter(action="maintenance.ended", details__failback="immediate").exists()
    resume(batch.pk, "immediate")
    back = set(VirtualMachine.objects.filter(host=node, is_clustered=True).values_list("name", flat=True))
    assert back == roles


def test_a_viewer_cannot_resume_a_drained_node(viewer_client, node):
    plan, roles, _ = drain_plan(node)
    batch = start_drain(node, plan, clustered=roles)
    assert viewer_client.post(reverse("migrations_ui:batch_move_back", args=[batch.pk])).status_code == 403
    assert viewer_client.post(reverse("migrations_ui:host_end_maintenance", args=[node.fqdn])).status_code == 403


def test_a_second_drain_is_refused_while_the_first_runs(operator_client, node):
    batch = start(operator_client, node)
    body = operator_client.get(evacuate_url(node)).content.decode()
    assert "A drain of hv-new1 is still running." in body and 'id="start-drain"' not in body
    operator_client.post(evacuate_url(node), {"method": "drain"})
    assert Batch.objects.filter(kind=BatchKind.DRAIN).count() == 1
    DrainFollower(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()
    # Ended: End maintenance resumes the node without failback; the roles stay where they went.
    moved = set(MigrationJob.objects.filter(batch=batch, state=JobState.SUCCEEDED).values_list("vm_name", flat=True))
    operator_client.post(reverse("migrations_ui:host_end_maintenance", args=[node.fqdn]))
    node.refresh_from_db()
    assert not node.maintenance
    resume(batch.pk, "no_failback")
    assert not VirtualMachine.objects.filter(host=node, name__in=moved).exists()


class WorkerDied(Exception):
    pass


class DiesOnceMoving(DrainFollower):
    """A follower whose worker is killed once the first role's move shows as a job."""

    def _follow(self, state):
        running = super()._follow(state)
        if self.jobs:
            raise WorkerDied
        return running


def test_a_drain_whose_follower_died_gets_a_new_one_that_picks_its_jobs_up(node, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    from migrations_ui.jobs.drain import follow_drain, restart_stale_drains

    plan, roles, _ = drain_plan(node)
    batch = start_drain(node, plan, clustered=roles)
    with pytest.raises(WorkerDied):
        DiesOnceMoving(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()
    first = set(MigrationJob.objects.filter(batch=batch).values_list("host_migration_id", flat=True))
    assert first and restart_stale_drains() == []  # it beat a moment ago

    later = timezone.now() + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert restart_stale_drains(now=later) == [batch.pk]
    assert restart_stale_drains(now=later + timedelta(minutes=1)) == []  # its new follower waits for a worker
    assert DBTaskResult.objects.filter(task_path=follow_drain.module_path).count() == 1

    DrainFollower(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()
    batch.refresh_from_db()
    assert batch.plan["drain"]["status"] in ("completed", "failed")
    jobs = MigrationJob.objects.filter(batch=batch)
    assert first <= set(jobs.values_list("host_migration_id", flat=True))
    assert jobs.values("vm").distinct().count() == jobs.count()  # no role followed twice
    assert not jobs.filter(state=JobState.RUNNING).exists()


def test_the_drain_pages_are_german_throughout(admin_client, node):
    from tests.console.test_i18n import SAME_IN_GERMAN, data_words, in_language, untranslated

    batch = start(admin_client, node)
    DrainFollower(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()
    batch.refresh_from_db()
    assert batch.plan["drain"]["stuck"]  # the demo's node has roles Hyper-V will not move: their reasons too
    allowed = SAME_IN_GERMAN | data_words()
    for url in (batch.get_absolute_url(), evacuate_url(Host.objects.get(name="hv-new2"))):
        english = in_language(admin_client, "en").get(url).content.decode()
        german = in_language(admin_client, "de").get(url).content.decode()
        assert untranslated(english, german, allowed) == [], url


class DiesAfterSuspend(DrainFollower):
    """A follower whose worker is killed right after the node accepted Suspend-ClusterNode -Drain."""

    def _save(self, tell=True, **changes):
        if changes.get("status") == "in_progress":
            raise WorkerDied
        super()._save(tell, **changes)


def test_a_follower_taking_over_a_sent_drain_does_not_send_it_again(node, demo):
    plan, roles, _ = drain_plan(node)
    batch = start_drain(node, plan, clustered=roles)
    with pytest.raises(WorkerDied):
        DiesAfterSuspend(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()
    DrainFollower(Batch.objects.select_related("host").get(pk=batch.pk), poll_s=0.05).run()
    with demo.session() as fabric:
        sent = [r for r in fabric.record if r["cmdlet"] == "Suspend-ClusterNode"]
    assert len(sent) == 1
    batch.refresh_from_db()
    assert batch.plan["drain"]["status"] in ("completed", "failed")
